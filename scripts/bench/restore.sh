#!/usr/bin/env bash
# Single-table restore vs the manual runbook, and binlog replay throughput vs mariadb-binlog | mariadb,
# on one throwaway MariaDB in the same run. BENCH_TABLE_ROWS and BENCH_WORKLOAD_SECONDS tune it.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages mariadb-server mariadb-client sysbench time
install_node_modules
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node --import tsx scripts/bench/restore.ts "$@"
