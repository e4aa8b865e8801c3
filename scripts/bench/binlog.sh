#!/usr/bin/env bash
# Binlog archiver vs mariadb-binlog --raw (catch-up throughput, peak RSS) and archive lag under
# sysbench oltp_write_only, on one throwaway MariaDB in the same run. Prints ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/install-deps.sh
. scripts/lib/install-deps.sh
install_debian_packages mariadb-server mariadb-client sysbench time
install_node_modules
exec node --import tsx scripts/bench/binlog.ts "$@"
