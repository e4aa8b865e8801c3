#!/usr/bin/env bash
# The README's first command: on a fresh Debian machine, installs what it needs and runs the main job
# for real on embedded defaults (a throwaway MariaDB, a local S3, local disk), then prints a summary.
# Arguments go to `mysql-archiver demo`, e.g. `bash scripts/demo.sh --work-dir /tmp/demo --keep`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages mariadb-server mariadb-client zstd
install_node_modules

# --openssl-legacy-provider: the in-process s3rver's paginated listings use DES (see notes)
NODE_OPTIONS=--openssl-legacy-provider AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
  exec node bin/mysql-archiver.js demo "$@"
