#!/usr/bin/env bash
# Put/get throughput and peak RSS per storage driver for a 1 GiB object, with `aws s3 cp` against the
# same s3rver as the anchor. BENCH_OBJECT_MIB=256 for a quicker run.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages awscli time
install_node_modules
# s3rver runs in this process; DES for its listing tokens needs the legacy provider (see notes)
export NODE_OPTIONS=--openssl-legacy-provider AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx tsx scripts/bench/storage.ts "$@"
