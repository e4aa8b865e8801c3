#!/usr/bin/env bash
# Our dump and load vs mariadb-dump | zstd, mydumper and myloader: wall time, MB/s, peak RSS, on one
# throwaway MariaDB with sysbench data, in the same run. BENCH_TABLE_ROWS=100000 for a quicker run,
# BENCH_REPEAT=3 for medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages mariadb-server mariadb-client mydumper sysbench zstd time
install_node_modules
# the child runs the built dist/: build it from the current sources
npm run --silent build
exec node --import tsx scripts/bench/dump.ts "$@"
