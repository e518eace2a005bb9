#!/usr/bin/env bash
# A whole scale-out deployment on loopback, for tests, benches and operators' trials:
#
#   scripts/cluster.sh up DIR      # VAR=value … scripts/cluster.sh up DIR passes VAR to the engine nodes
#   scripts/cluster.sh down DIR
#   scripts/cluster.sh node DIR N  # starts engine node N (1|2) again, same port and settings; prints its pid
#
# up starts ZooKeeper (Debian's `zookeeper`, one node), four clickhouse-server processes — cluster
# `puraify`, 2 shards × 2 replicas, ReplicatedMergeTree through ZooKeeper — a fresh PostgreSQL database
# on 127.0.0.1:5432 (trust auth) and two engine nodes (MONITORING_CLICKHOUSE_URL on the first
# replica of each shard, MONITORING_CLICKHOUSE_CLUSTER=puraify, MONITORING_DATABASE_URL), every one on a free
# loopback port; installs zookeeper / clickhouse-server when missing; waits until each part answers and
# writes DIR/cluster.json:
#   {"nodes": [url, url], "admin_token": "…", "clickhouse": [url ×4], "postgres": "postgres://…",
#    "pids": {"nodes": [..], "clickhouse": [..], "zookeeper": N}, "clickhouse_dirs": [..], …}
# down stops every process up started (by the pids it wrote), waits for them, and drops the database.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CH_SCRIPT="$ROOT/scripts/clickhouse-server.sh"
PG_ADMIN_URL=${PURAIFY_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CLUSTER=puraify

usage() {
  echo "usage: $0 up DIR | down DIR | node DIR N" >&2
  exit 2
}

log() { echo "cluster: $*" >&2; }

install_missing() {
  local need=()
  [ -r /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
  command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server clickhouse-client)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# n distinct free loopback ports (the kernel's choice, then released; taken again within seconds)
free_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]); const socks = []; const ports = [];
    (async () => {
      for (let i = 0; i < n; i++) {
        const s = net.createServer();
        await new Promise((r) => s.listen(0, "127.0.0.1", r));
        socks.push(s); ports.push(s.address().port);
      }
      for (const s of socks) s.close();
      console.log(ports.join(" "));
    })();' "$1"
}

tcp_say() { # port text → the reply (bash /dev/tcp: no nc/curl needed)
  (exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf '%s' "$2" >&3
    timeout 2 cat <&3) 2>/dev/null
}

http_ok() { # port path
  local reply
  reply=$(tcp_say "$1" "GET $2 HTTP/1.0"$'\r\n'"Host: 127.0.0.1"$'\r\n\r\n') || return 1
  [[ "$reply" == *" 200 "* ]]
}

wait_for() { # what seconds command…
  local what=$1 secs=$2
  shift 2
  for _ in $(seq 1 $((secs * 10))); do
    local rc=0
    "$@" || rc=$?
    [ $rc -eq 0 ] && return 0
    [ $rc -eq 2 ] && return 1
    sleep 0.1
  done
  log "$what did not answer within $secs s"
  return 1
}

start_zookeeper() { # dir port
  local dir=$1 port=$2
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
  (cd "$dir" && exec setsid java -Xmx256m -Dzookeeper.log.dir="$dir" -cp "$dir:/usr/share/java/zookeeper.jar" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" >"$dir/out.log" 2>&1 </dev/null) &
  echo $! >"$dir/pid"
  wait_for "ZooKeeper on $port" 30 zk_ok "$port"
}

node_ready() { # pid port: fails the wait at once when the node exited
  alive "$1" || { log "engine node (pid $1) exited"; return 2; }
  http_ok "$2" /ready
}

zk_ok() { [[ "$(tcp_say "$1" ruok)" == imok ]]; }

ch_cluster_ok() { # http_port: the server answers and has the cluster's 4 replicas configured
  local reply
  reply=$(tcp_say "$1" "GET /?query=SELECT%20count()%20FROM%20system.clusters%20WHERE%20cluster%3D'$CLUSTER' HTTP/1.0"$'\r\n'"Host: 127.0.0.1"$'\r\n\r\n') || return 1
  [[ "$reply" == *" 200 "* ]] && [[ "$reply" == *$'\n4'* ]]
}

steady_clickhouse() { # server_dir http_port: 5 answers in a row, 200 ms apart, within 30 s
  local d=$1 port=$2 ok=0
  for _ in $(seq 1 150); do
    if [ -f "$d/pid" ] && alive "$(cat "$d/pid")" && ch_cluster_ok "$port"; then
      ok=$((ok + 1))
      [ $ok -ge 5 ] && return 0
    else
      ok=0
      [ -f "$d/pid" ] && alive "$(cat "$d/pid")" || return 1
    fi
    sleep 0.2
  done
  return 1
}

ch_log_tail() { # server_dir: why a server went away, for the test's output
  tail -n 15 "$1/log/error.log" "$1/log/stdout.log" >&2 2>/dev/null || true
}

# The cluster part of every server's config: read from conf.d/ beside the main config (18.16 merges it).
cluster_xml() { # zk_port shard replica interserver_port tcp_ports(4)
  local zk=$1 shard=$2 replica=$3 inter=$4 t1=$5 t2=$6 t3=$7 t4=$8
  cat <<EOF
<?xml version="1.0"?>
<yandex>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>$inter</interserver_http_port>
  <zookeeper>
    <node><host>127.0.0.1</host><port>$zk</port></node>
    <session_timeout_ms>6000</session_timeout_ms>
  </zookeeper>
  <macros><cluster>$CLUSTER</cluster><shard>$shard</shard><replica>r$replica</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <remote_servers>
    <$CLUSTER>
      <shard><internal_replication>true</internal_replication>
        <replica><host>127.0.0.1</host><port>$t1</port></replica>
        <replica><host>127.0.0.1</host><port>$t2</port></replica>
      </shard>
      <shard><internal_replication>true</internal_replication>
        <replica><host>127.0.0.1</host><port>$t3</port></replica>
        <replica><host>127.0.0.1</host><port>$t4</port></replica>
      </shard>
    </$CLUSTER>
  </remote_servers>
</yandex>
EOF
}

engine_cli() {
  node "$ROOT/scripts/build-if-needed.mjs" >&2
  echo "$ROOT/dist/src/cli.js"
}

up() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/cluster.json" ]; then log "$dir/cluster.json exists: run '$0 down $dir' first"; exit 1; fi
  # what a previous cluster in DIR left (its data is bound to a ZooKeeper that is gone)
  rm -rf "$dir/zookeeper" "$dir"/clickhouse[1-4] "$dir"/node[12]
  trap 'log "up failed: stopping what started"; down "$dir"' ERR
  install_missing
  local cli
  cli=$(engine_cli)
  read -r -a p <<<"$(free_ports 15)"
  local zk=${p[0]}
  local -a http=("${p[1]}" "${p[2]}" "${p[3]}" "${p[4]}") tcp=("${p[5]}" "${p[6]}" "${p[7]}" "${p[8]}")
  local -a inter=("${p[9]}" "${p[10]}" "${p[11]}" "${p[12]}") nodeport=("${p[13]}" "${p[14]}")
  : >"$dir/pids" # every pid started, as it starts: down can stop a half-made cluster too

  log "ZooKeeper on $zk"
  start_zookeeper "$dir/zookeeper" "$zk"
  echo "$(cat "$dir/zookeeper/pid")" >>"$dir/pids"

  local i chpids=() churls=()
  for i in 0 1 2 3; do
    local d="$dir/clickhouse$((i + 1))"
    mkdir -p "$d/conf.d"
    cluster_xml "$zk" $((i / 2 + 1)) $((i % 2 + 1)) "${inter[$i]}" "${tcp[@]}" >"$d/conf.d/cluster.xml"
  done
  # the four start together (each waits for its own SELECT 1)
  local starters=()
  for i in 0 1 2 3; do
    bash "$CH_SCRIPT" start "$dir/clickhouse$((i + 1))" "${http[$i]}" "${tcp[$i]}" >/dev/null &
    starters+=($!)
  done
  for i in 0 1 2 3; do wait "${starters[$i]}"; done
  # one SELECT 1 is not enough: a server has been seen answering it and then refusing connections.
  # Each must answer several pings in a row, its cluster config included; one that does not is
  # started again, once.
  for i in 0 1 2 3; do
    steady_clickhouse "$dir/clickhouse$((i + 1))" "${http[$i]}" && continue
    log "clickhouse-server $((i + 1)) did not stay up; starting it again"
    ch_log_tail "$dir/clickhouse$((i + 1))"
    bash "$CH_SCRIPT" stop "$dir/clickhouse$((i + 1))" >/dev/null || true
    bash "$CH_SCRIPT" start "$dir/clickhouse$((i + 1))" "${http[$i]}" "${tcp[$i]}" >/dev/null
    steady_clickhouse "$dir/clickhouse$((i + 1))" "${http[$i]}" || { ch_log_tail "$dir/clickhouse$((i + 1))"; false; }
  done
  for i in 0 1 2 3; do
    chpids+=("$(cat "$dir/clickhouse$((i + 1))/pid")")
    churls+=("http://127.0.0.1:${http[$i]}")
    echo "${chpids[$i]}" >>"$dir/pids"
  done
  log "clickhouse-server ×4 on ${http[*]} (shard 1: 1,2; shard 2: 3,4)"

  local db
  db="pm_cluster_$(date +%s)_$$"
  psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
  echo "$db" >"$dir/database"
  local pgurl="${PG_ADMIN_URL%/*}/$db"
  log "PostgreSQL database $db"

  local token
  # MONITORING_ADMIN_TOKEN given to up is used; else a random one
  token=${MONITORING_ADMIN_TOKEN:-$(node -e 'console.log(require("node:crypto").randomBytes(24).toString("hex"))')}
  # node 1 enters the cluster through server 1 (shard 1), node 2 through server 3 (shard 2): the first
  # replica of each shard, where every node reads and writes while it is up (load_balancing=in_order)
  local entry=(0 2) nodepids=() nodeurls=()
  for i in 0 1; do
    local d="$dir/node$((i + 1))"
    mkdir -p "$d"
    # what `node DIR N` needs to start this node again
    printf 'port=%q\nclickhouse=%q\npostgres=%q\ntoken=%q\n' "${nodeport[$i]}" "${churls[${entry[$i]}]}" "$pgurl" "$token" >"$d/settings"
    start_node "$d" "$cli"
    nodepids+=("$(cat "$d/pid")")
    echo "${nodepids[$i]}" >>"$dir/pids"
    nodeurls+=("http://127.0.0.1:${nodeport[$i]}")
  done
  for i in 0 1; do
    wait_node "$dir/node$((i + 1))" && continue
    # a node that exited during its start (its first migration) gets one more try once its
    # ClickHouse entry answers steadily again
    local n=$((i + 1)) e=${entry[$i]}
    alive "$(cat "$dir/node$n/pid")" && { down "$dir"; exit 1; }
    log "engine node $n exited during start; trying once more"
    ch_log_tail "$dir/clickhouse$((e + 1))"
    if ! steady_clickhouse "$dir/clickhouse$((e + 1))" "${http[$e]}"; then
      bash "$CH_SCRIPT" stop "$dir/clickhouse$((e + 1))" >/dev/null || true
      bash "$CH_SCRIPT" start "$dir/clickhouse$((e + 1))" "${http[$e]}" "${tcp[$e]}" >/dev/null || { down "$dir"; exit 1; }
      steady_clickhouse "$dir/clickhouse$((e + 1))" "${http[$e]}" || { down "$dir"; exit 1; }
      chpids[$e]=$(cat "$dir/clickhouse$((e + 1))/pid")
      echo "${chpids[$e]}" >>"$dir/pids"
    fi
    start_node "$dir/node$n" "$cli"
    nodepids[$i]=$(cat "$dir/node$n/pid")
    echo "${nodepids[$i]}" >>"$dir/pids"
    wait_node "$dir/node$n" || { down "$dir"; exit 1; }
  done

  node -e '
    const [file, token, pg, db, zk, zkpid, dir, tcp, ...rest] = process.argv.slice(1);
    const nodes = rest.slice(0, 2), nodePids = rest.slice(2, 4).map(Number), ch = rest.slice(4, 8), chPids = rest.slice(8, 12).map(Number);
    const out = { nodes, admin_token: token, clickhouse: ch, postgres: pg, cluster: "'$CLUSTER'",
      pids: { nodes: nodePids, clickhouse: chPids, zookeeper: Number(zkpid) },
      zookeeper: "127.0.0.1:" + zk, database: db,
      clickhouse_dirs: [1, 2, 3, 4].map((i) => dir + "/clickhouse" + i), node_dirs: [dir + "/node1", dir + "/node2"],
      zookeeper_dir: dir + "/zookeeper", clickhouse_tcp_ports: tcp.split(" ").map(Number) };
    require("node:fs").writeFileSync(file, JSON.stringify(out, null, 2) + "\n");' \
    "$dir/cluster.json" "$token" "$pgurl" "$db" "$zk" "$(cat "$dir/zookeeper/pid")" "$dir" "${tcp[*]}" \
    "${nodeurls[@]}" "${nodepids[@]}" "${churls[@]}" "${chpids[@]}"
  trap - ERR
  log "up: ${nodeurls[*]} (cluster.json in $dir)"
}

start_node() { # node_dir cli: the environment given to this script reaches the node
  local d=$1 cli=$2 port clickhouse postgres token
  # shellcheck disable=SC1091
  . "$d/settings"
  (cd "$d" && MONITORING_HOST=127.0.0.1 MONITORING_PORT="$port" MONITORING_DATA_DIR="$d/data" \
    MONITORING_ADMIN_TOKEN="$token" MONITORING_CLICKHOUSE_URL="$clickhouse" \
    MONITORING_CLICKHOUSE_CLUSTER=$CLUSTER MONITORING_CLICKHOUSE_DATABASE="${MONITORING_CLICKHOUSE_DATABASE:-puraify}" \
    MONITORING_DATABASE_URL="$postgres" MONITORING_LOG_LEVEL="${MONITORING_LOG_LEVEL:-warn}" \
    MONITORING_FLUSH_INTERVAL_MS="${MONITORING_FLUSH_INTERVAL_MS:-150}" \
    exec setsid node "$cli" serve >>"$d/out.log" 2>&1 </dev/null) &
  echo $! >"$d/pid"
}

wait_node() { # node_dir
  local d=$1 port
  port=$(. "$d/settings" && echo "$port")
  wait_for "engine node $d (log: $d/out.log)" 120 node_ready "$(cat "$d/pid")" "$port" || {
    tail -n 30 "$d/out.log" >&2
    return 1
  }
}

# Starts engine node N of a running cluster again (after a test killed it), on its port and settings.
restart_node() {
  local dir=$1 n=$2
  dir=$(cd "$dir" && pwd)
  local d="$dir/node$n"
  [ -f "$d/settings" ] || { log "no node $n in $dir"; exit 1; }
  if [ -f "$d/pid" ]; then
    # a node just SIGKILLed may take a moment to be gone
    for _ in $(seq 1 50); do alive "$(cat "$d/pid")" || break; sleep 0.1; done
    if alive "$(cat "$d/pid")"; then log "node $n already runs (pid $(cat "$d/pid"))"; exit 1; fi
  fi
  # the build up made (no rebuild: a node comes back as the code it ran)
  start_node "$d" "$ROOT/dist/src/cli.js"
  wait_node "$d"
  cat "$d/pid"
}

# running, not merely an unreaped zombie (a SIGKILLed process whose parent has not waited yet)
alive() {
  [ -r "/proc/$1/stat" ] || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

stop_pid() {
  local pid=$1
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  local dir=$1
  [ -d "$dir" ] || exit 0
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/pids" ]; then
    # newest first: engine nodes, then the servers, ZooKeeper last
    local pids
    pids=$(tac "$dir/pids")
    for pid in $pids; do stop_pid "$pid" & done
    wait
  fi
  # a server or node a test restarted writes its new pid beside its data
  for f in "$dir"/clickhouse*/pid "$dir"/node*/pid "$dir"/zookeeper/pid; do
    [ -f "$f" ] && stop_pid "$(cat "$f")"
    rm -f "$f"
  done
  if [ -f "$dir/database" ]; then
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $(cat "$dir/database") WITH (FORCE)" >/dev/null || true
  fi
  rm -f "$dir/pids" "$dir/database" "$dir/cluster.json"
  log "down: $dir"
  return 0
}

case "${1:-}" in
  up) [ $# -eq 2 ] || usage; up "$2" ;;
  down) [ $# -eq 2 ] || usage; down "$2" ;;
  node) [ $# -eq 3 ] || usage; restart_node "$2" "$3" ;;
  *) usage ;;
esac
