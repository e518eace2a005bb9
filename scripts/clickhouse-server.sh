#!/usr/bin/env bash
# A throwaway ClickHouse server for tests and local trials of the server transport.
#
#   scripts/clickhouse-server.sh start <dir> <http_port> [tcp_port]   # prints the HTTP url
#   scripts/clickhouse-server.sh stop <dir>
#
# start writes a minimal config into <dir> (loopback only, the given ports, data/tmp/logs under
# <dir>, users from /etc/clickhouse-server/users.xml, and a one-shard cluster `puraify_single`
# pointing at this server so the Distributed schema can be tried), starts Debian's
# clickhouse-server in the background, waits (bounded) until `SELECT 1` answers and writes its pid
# to <dir>/pid. stop kills that pid only, and waits for it to exit.
# clickhouse-server 18.16 runs as root without complaint; it needs no `--` options here.
set -euo pipefail

usage() {
  echo "usage: $0 start <dir> <http_port> [tcp_port] | stop <dir>" >&2
  exit 2
}

find_server() {
  local c
  for c in "${CLICKHOUSE_SERVER_BIN:-}" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  if command -v clickhouse-server >/dev/null 2>&1; then command -v clickhouse-server; return 0; fi
  if [ -x /usr/bin/clickhouse ]; then echo "/usr/bin/clickhouse server"; return 0; fi
  return 1
}

alive() {
  [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null
}

ping_http() {
  # no curl dependency: bash's /dev/tcp is enough for one HTTP request
  local port=$1 reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET /?query=SELECT%%201 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 2 cat <&3) 2>/dev/null) || return 1
  [[ "$reply" == *" 200 "* ]] && [[ "$reply" == *$'\n1'* ]]
}

cmd=${1:-}
case "$cmd" in
  start)
    [ $# -ge 3 ] || usage
    dir=$2 http_port=$3 tcp_port=${4:-}
    [[ "$http_port" =~ ^[0-9]+$ ]] || { echo "http_port must be a number" >&2; exit 2; }
    if [ -z "$tcp_port" ]; then tcp_port=$((http_port + 1)); fi
    [[ "$tcp_port" =~ ^[0-9]+$ ]] || { echo "tcp_port must be a number" >&2; exit 2; }
    server=$(find_server) || {
      echo "clickhouse-server is not installed: run 'bash scripts/install-system-deps.sh'" >&2
      exit 3
    }
    users=/etc/clickhouse-server/users.xml
    [ -r "$users" ] || { echo "$users is missing: run 'bash scripts/install-system-deps.sh'" >&2; exit 3; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if alive "$dir"; then echo "a server already runs from $dir (pid $(cat "$dir/pid"))" >&2; exit 1; fi
    mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/format_schemas"
    # not named config.xml: chDB reads ./config.xml from its working directory
    cat >"$dir/clickhouse-config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <http_port>$http_port</http_port>
  <tcp_port>$tcp_port</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$users</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <remote_servers>
    <puraify_single>
      <shard>
        <replica><host>127.0.0.1</host><port>$tcp_port</port></replica>
      </shard>
    </puraify_single>
  </remote_servers>
</yandex>
EOF
    # shellcheck disable=SC2086 # $server may be "clickhouse server"
    (cd "$dir" && exec setsid $server --config-file="$dir/clickhouse-config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$dir/pid"
    for _ in $(seq 1 300); do
      if ping_http "$http_port"; then
        echo "http://127.0.0.1:$http_port"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "clickhouse-server exited during start:" >&2
        tail -n 20 "$dir/log/stdout.log" "$dir/log/error.log" >&2 2>/dev/null || true
        rm -f "$dir/pid"
        exit 1
      fi
      sleep 0.1
    done
    echo "clickhouse-server did not answer on port $http_port within 30 s:" >&2
    tail -n 20 "$dir/log/error.log" >&2 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
    exit 1
    ;;
  stop)
    [ $# -ge 2 ] || usage
    dir=$2
    [ -f "$dir/pid" ] || exit 0
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/pid"
    ;;
  *)
    usage
    ;;
esac
