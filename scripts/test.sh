#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs, then runs every test
# against real parts (throwaway mariadbd, in-process s3rver, fake Dropbox/RDS HTTP servers).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages mariadb-server mariadb-client zstd
install_node_modules

npm run --silent typecheck
# --openssl-legacy-provider: s3rver's paginated listings use DES for continuation tokens (see notes)
NODE_OPTIONS=--openssl-legacy-provider AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
  npx vitest run "$@"
