#!/usr/bin/env bash
# Installs what the test suite needs from Debian: Chromium (dashboard tests, driven by playwright-core)
# clickhouse-server (the server transport's tests) and ZooKeeper (npm run test:cluster: replicated
# tables through scripts/cluster.sh). Idempotent; needs root (CI runs as root).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/bin/clickhouse ] || need+=(clickhouse-server clickhouse-client)
[ -r /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "system deps: $(chromium --version 2>/dev/null | head -1); clickhouse-server at $(command -v clickhouse-server)"
