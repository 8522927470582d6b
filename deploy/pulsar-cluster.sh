#!/usr/bin/env bash
# A local multi-broker Apache Pulsar cluster on 127.0.0.1, from the same distribution as
# deploy/pulsar-standalone.sh (which installs it): one ZooKeeper, one bookie, two brokers,
# each broker running a functions worker. Small heaps, so it fits a 2-core machine next to
# a running standalone (whose ports it leaves alone).
#
# Usage: deploy/pulsar-cluster.sh install|start|stop|status|reset|kill-broker N|start-broker N|logs NAME
#
#   start          starts ZooKeeper, the bookie and both brokers (initialising the cluster's
#                  metadata on the first start) and waits until both workers serve functions
#   stop           stops everything it started (function instances included)
#   kill-broker N  kill -9 broker N (1 or 2) and the function instances it launched, as a
#                  lost machine would (used by tests/integration/test_cluster_failover.py)
#   start-broker N starts broker N again
#   reset          stop, then delete the cluster's data
#
# Function state: the brokers' workers are not given a table service (the standalone's
# stream storage is not started here), so apps on this cluster use `state: redis`.
#
# Environment (all optional):
#   PULSAR_HOME_DIR, PULSAR_VERSION, PULSAR_VENV   as for deploy/pulsar-standalone.sh
#   PULSAR_CLUSTER_DIR    configuration, data and logs (default $PULSAR_HOME_DIR/cluster)
#   PULSAR_CLUSTER_ZK_PORT (2281), PULSAR_CLUSTER_BOOKIE_PORT (3281),
#   PULSAR_CLUSTER_BROKER1_PORT (6751), PULSAR_CLUSTER_WEB1_PORT (8181),
#   PULSAR_CLUSTER_BROKER2_PORT (6752), PULSAR_CLUSTER_WEB2_PORT (8182)
#   PULSAR_CLUSTER_READY_TIMEOUT seconds to wait for readiness (default 300)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PULSAR_VERSION="${PULSAR_VERSION:-4.0.8}"
PULSAR_HOME_DIR="${PULSAR_HOME_DIR:-$HOME/.cache/pulsarflow/pulsar}"
PULSAR_VENV="${PULSAR_VENV:-$HOME/.cache/pulsarflow/pulsar-venv}"
SOURCE_DIST="$PULSAR_HOME_DIR/apache-pulsar-$PULSAR_VERSION"
CLUSTER_DIR="${PULSAR_CLUSTER_DIR:-$PULSAR_HOME_DIR/cluster}"
# The cluster runs from a hard-linked copy of the distribution: its processes and their
# function logs are then its own, and the standalone's stop (which ends every process
# started from its distribution directory) leaves them alone.
DIST_DIR="$CLUSTER_DIR/apache-pulsar-$PULSAR_VERSION"
READY_TIMEOUT="${PULSAR_CLUSTER_READY_TIMEOUT:-300}"
CLUSTER_NAME=pulsarflow-cluster
ZK_PORT="${PULSAR_CLUSTER_ZK_PORT:-2281}"
BOOKIE_PORT="${PULSAR_CLUSTER_BOOKIE_PORT:-3281}"
BROKER_PORTS=("" "${PULSAR_CLUSTER_BROKER1_PORT:-6751}" "${PULSAR_CLUSTER_BROKER2_PORT:-6752}")
WEB_PORTS=("" "${PULSAR_CLUSTER_WEB1_PORT:-8181}" "${PULSAR_CLUSTER_WEB2_PORT:-8182}")
ZK_URL="zk:127.0.0.1:$ZK_PORT"

log() { echo "[pulsar-cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


pid_of() { pid_in "$CLUSTER_DIR/run/$1.pid"; }
alive() { alive_in "$CLUSTER_DIR/run/$1.pid"; }

# ---------------------------------------------------------------------------- configuration

write_zookeeper_conf() {
  local c="$CLUSTER_DIR/conf/zookeeper.conf"
  cp "$DIST_DIR/conf/zookeeper.conf" "$c"
  set_conf "$c" dataDir "$CLUSTER_DIR/data/zookeeper"
  set_conf "$c" clientPort "$ZK_PORT"
  set_conf "$c" clientPortAddress 127.0.0.1
  set_conf "$c" admin.enableServer false
  set_conf "$c" metricsProvider.httpHost 127.0.0.1
  set_conf "$c" metricsProvider.httpPort "$((ZK_PORT + 10))"
}

write_bookie_conf() {
  local c="$CLUSTER_DIR/conf/bookkeeper.conf"
  cp "$DIST_DIR/conf/bookkeeper.conf" "$c"
  set_conf "$c" bookiePort "$BOOKIE_PORT"
  set_conf "$c" advertisedAddress 127.0.0.1
  set_conf "$c" allowLoopback true
  [[ -e /sys/class/net/lo ]] && set_conf "$c" listeningInterface lo
  set_conf "$c" metadataServiceUri "zk+hierarchical://127.0.0.1:$ZK_PORT/ledgers"
  set_conf "$c" zkServers "127.0.0.1:$ZK_PORT"
  set_conf "$c" journalDirectory "$CLUSTER_DIR/data/bookie/journal"
  set_conf "$c" ledgerDirectories "$CLUSTER_DIR/data/bookie/ledgers"
  set_conf "$c" httpServerEnabled false
  set_conf "$c" enableStatistics false
  set_conf "$c" prometheusStatsHttpAddress 127.0.0.1
  set_conf "$c" prometheusStatsHttpPort "$((BOOKIE_PORT + 10))"
  set_conf "$c" journalMaxSizeMB 256
  set_conf "$c" dbStorage_writeCacheMaxSizeMb 32
  set_conf "$c" dbStorage_readAheadCacheMaxSizeMb 32
  set_conf "$c" dbStorage_rocksDB_blockCacheSize 16777216
  set_conf "$c" numAddWorkerThreads 1
  set_conf "$c" numReadWorkerThreads 1
  set_conf "$c" numJournalCallbackThreads 1
}

write_broker_conf() {
  local n="$1" c="$CLUSTER_DIR/conf/broker-$n.conf" w="$CLUSTER_DIR/conf/functions_worker-$n.yml"
  cp "$DIST_DIR/conf/broker.conf" "$c"
  set_conf "$c" clusterName "$CLUSTER_NAME"
  set_conf "$c" metadataStoreUrl "$ZK_URL"
  set_conf "$c" configurationMetadataStoreUrl "$ZK_URL"
  set_conf "$c" bindAddress 127.0.0.1
  set_conf "$c" advertisedAddress 127.0.0.1
  set_conf "$c" brokerServicePort "${BROKER_PORTS[$n]}"
  set_conf "$c" webServicePort "${WEB_PORTS[$n]}"
  set_conf "$c" functionsWorkerEnabled true
  # One bookie: every ledger on it.
  set_conf "$c" managedLedgerDefaultEnsembleSize 1
  set_conf "$c" managedLedgerDefaultWriteQuorum 1
  set_conf "$c" managedLedgerDefaultAckQuorum 1
  # A killed broker's topics move once its ZooKeeper session expires: keep that short.
  set_conf "$c" metadataStoreSessionTimeoutMillis 8000
  # As the standalone (deploy/pulsar-standalone.sh): timers, topics, acknowledgements.
  set_conf "$c" delayedDeliveryTickTimeMillis 100
  set_conf "$c" isDelayedDeliveryDeliverAtTimeStrict true
  set_conf "$c" brokerDeleteInactiveTopicsEnabled false
  set_conf "$c" managedLedgerDefaultMarkDeleteRateLimit 0
  set_conf "$c" managedLedgerNewEntriesCheckDelayInMillis 1
  set_conf "$c" numIOThreads 2
  set_conf "$c" bookkeeperClientNumWorkerThreads 2
  set_conf "$c" numOrderedExecutorThreads 2
  set_conf "$c" managedLedgerCacheSizeMB 32
  # The worker is told its broker's URLs, id and port by the broker itself; the rest here.
  # A worker that is gone for rescheduleTimeoutMs has its instances moved to the others.
  sed -e 's|^instanceLivenessCheckFreqMs:.*|instanceLivenessCheckFreqMs: 5000|' \
    -e 's|^failureCheckFreqMs:.*|failureCheckFreqMs: 3000|' \
    -e 's|^rescheduleTimeoutMs:.*|rescheduleTimeoutMs: 10000|' \
    -e "s|^pulsarFunctionsCluster:.*|pulsarFunctionsCluster: $CLUSTER_NAME|" \
    -e "s|^downloadDirectory:.*|downloadDirectory: $CLUSTER_DIR/data/download-$n|" \
    -e "s|^configurationMetadataStoreUrl:.*|configurationMetadataStoreUrl: $ZK_URL|" \
    -e 's|^workerHostname:.*|workerHostname: 127.0.0.1|' \
    "$DIST_DIR/conf/functions_worker.yml" >"$w"
}

# ---------------------------------------------------------------------------- processes

launch() {  # launch NAME COMMAND MEM: bin/pulsar COMMAND in its own process group
  local name="$1" command="$2" mem="$3" conf_var="$4" conf="$5"
  mkdir -p "$CLUSTER_DIR/logs/$name"
  (
    export PULSAR_MEM="$mem"
    export PULSAR_GC="-XX:+UseG1GC -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1"
    export PULSAR_LOG_DIR="$CLUSTER_DIR/logs/$name"
    export "$conf_var=$conf"
    # The worker launches each Python instance with the python3 found on PATH.
    export PATH="$PULSAR_VENV/bin:$PATH" VIRTUAL_ENV="$PULSAR_VENV"
    cd "$DIST_DIR"
    exec setsid "$DIST_DIR/bin/pulsar" "$command" >"$CLUSTER_DIR/logs/$name.out" 2>&1 </dev/null
  ) &
  echo $! >"$CLUSTER_DIR/run/$name.pid"
}

wait_until() {  # wait_until WHAT NAME CONDITION...
  local what="$1" name="$2"; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@"; do
    alive "$name" || { tail -n 40 "$CLUSTER_DIR/logs/$name.out" >&2; die "$name exited while starting ($what)"; }
    ((SECONDS < deadline)) || { tail -n 40 "$CLUSTER_DIR/logs/$name.out" >&2; die "timed out waiting for $what"; }
    sleep 1
  done
}

worker_ready() {  # both workers in the cluster and the leader serving function calls
  local web="http://127.0.0.1:$1" members code
  members="$(curl -s -m 5 "$web/admin/v2/worker/cluster" 2>/dev/null || true)"
  [[ "$(grep -o workerId <<<"$members" | wc -l)" -ge "$2" ]] || return 1
  code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$web/admin/v3/functions/public/default" 2>/dev/null || true)"
  [[ "$code" == 200 ]]
}

start_broker() {
  local n="$1"
  alive "broker-$n" && { log "broker $n already runs"; return 0; }
  write_broker_conf "$n"
  log "starting broker $n (pulsar://127.0.0.1:${BROKER_PORTS[$n]}, http://127.0.0.1:${WEB_PORTS[$n]})"
  launch "broker-$n" broker "-Xms128m -Xmx384m -XX:MaxDirectMemorySize=256m" PULSAR_BROKER_CONF \
    "$CLUSTER_DIR/conf/broker-$n.conf"
}

cmd_start() {
  [[ -x "$SOURCE_DIST/bin/pulsar" ]] || die "no distribution at $SOURCE_DIST: run deploy/pulsar-cluster.sh install"
  mkdir -p "$CLUSTER_DIR/conf" "$CLUSTER_DIR/run" "$CLUSTER_DIR/data" "$CLUSTER_DIR/logs"
  if [[ ! -x "$DIST_DIR/bin/pulsar" ]]; then
    log "linking the distribution into $DIST_DIR"
    cp -al "$SOURCE_DIST" "$DIST_DIR.tmp" && mv "$DIST_DIR.tmp" "$DIST_DIR"
    rm -rf "$DIST_DIR/logs" "$DIST_DIR/download" "$DIST_DIR/data"
  fi
  local t0=$SECONDS
  if ! alive zookeeper; then
    write_zookeeper_conf
    log "starting ZooKeeper on 127.0.0.1:$ZK_PORT"
    launch zookeeper zookeeper "-Xms64m -Xmx128m" PULSAR_ZK_CONF "$CLUSTER_DIR/conf/zookeeper.conf"
  fi
  wait_until "ZooKeeper" zookeeper port_open "$ZK_PORT"
  if [[ ! -f "$CLUSTER_DIR/data/initialized" ]]; then
    log "initialising the metadata of cluster $CLUSTER_NAME"
    PULSAR_MEM="-Xmx128m" "$DIST_DIR/bin/pulsar" initialize-cluster-metadata --cluster "$CLUSTER_NAME" \
      --metadata-store "$ZK_URL" --configuration-metadata-store "$ZK_URL" \
      --web-service-url "http://127.0.0.1:${WEB_PORTS[1]},127.0.0.1:${WEB_PORTS[2]}" \
      --broker-service-url "pulsar://127.0.0.1:${BROKER_PORTS[1]},127.0.0.1:${BROKER_PORTS[2]}" \
      >"$CLUSTER_DIR/logs/initialize.out" 2>&1 || { tail -n 30 "$CLUSTER_DIR/logs/initialize.out" >&2; die "metadata initialisation failed"; }
    touch "$CLUSTER_DIR/data/initialized"
  fi
  if ! alive bookie; then
    write_bookie_conf
    log "starting the bookie on 127.0.0.1:$BOOKIE_PORT"
    launch bookie bookie "-Xms64m -Xmx256m -XX:MaxDirectMemorySize=256m" PULSAR_BOOKKEEPER_CONF \
      "$CLUSTER_DIR/conf/bookkeeper.conf"
  fi
  wait_until "the bookie" bookie port_open "$BOOKIE_PORT"
  # One after the other: two functions workers starting at once on a new cluster can both
  # claim its coordination subscription, and one then exits ("Failed to fence subscription").
  start_broker 1
  wait_until "broker 1" broker-1 port_open "${WEB_PORTS[1]}"
  wait_until "the worker of broker 1" broker-1 worker_ready "${WEB_PORTS[1]}" 1
  start_broker 2
  wait_until "broker 2" broker-2 port_open "${WEB_PORTS[2]}"
  wait_until "both functions workers" broker-1 worker_ready "${WEB_PORTS[1]}" 2
  log "ready in $((SECONDS - t0))s: http://127.0.0.1:${WEB_PORTS[1]} and :${WEB_PORTS[2]}," \
    "pulsar://127.0.0.1:${BROKER_PORTS[1]},127.0.0.1:${BROKER_PORTS[2]}"
}

cmd_start_broker() {
  start_broker "$1"
  wait_until "broker $1" "broker-$1" port_open "${WEB_PORTS[$1]}"
  wait_until "the worker of broker $1" "broker-$1" worker_ready "${WEB_PORTS[$1]}" 2
  log "broker $1 ready"
}

stop_one() {  # TERM the process group, KILL it if it lingers
  local name="$1" signal="${2:-TERM}" pid i
  pid="$(pid_of "$name")"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid, SIG$signal)"
    kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid" 2>/dev/null || true
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$CLUSTER_DIR/run/$name.pid"
}

cmd_kill_broker() {
  local n="$1" pid
  pid="$(pid_of "broker-$n")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || die "broker $n does not run"
  log "kill -9 broker $n (process group $pid: the JVM and its function instances)"
  kill -KILL -- "-$pid"
  rm -f "$CLUSTER_DIR/run/broker-$n.pid"
}

cmd_stop() {
  stop_one broker-2; stop_one broker-1; stop_one bookie; stop_one zookeeper
  log "stopped"
}

cmd_status() {
  local name any=0
  for name in zookeeper bookie broker-1 broker-2; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; any=1; else echo "$name: not running"; fi
  done
  ((any)) || return 3
  echo "brokers: $(curl -s -m 5 "http://127.0.0.1:${WEB_PORTS[2]}/admin/v2/brokers/$CLUSTER_NAME" \
    || curl -s -m 5 "http://127.0.0.1:${WEB_PORTS[1]}/admin/v2/brokers/$CLUSTER_NAME" || echo unreachable)"
  echo "data: $CLUSTER_DIR/data"
}

case "${1:-}" in
  install) PULSAR_HOME_DIR="$PULSAR_HOME_DIR" PULSAR_VERSION="$PULSAR_VERSION" PULSAR_VENV="$PULSAR_VENV" \
    bash "$ROOT/deploy/pulsar-standalone.sh" install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_stop; rm -rf "$CLUSTER_DIR/data"; log "data deleted" ;;
  kill-broker) cmd_kill_broker "${2:?broker number}" ;;
  start-broker) cmd_start_broker "${2:?broker number}" ;;
  logs) tail -n 100 "$CLUSTER_DIR/logs/${2:-broker-1}.out" ;;
  *) echo "usage: $0 install|start|stop|status|reset|kill-broker N|start-broker N|logs NAME" >&2; exit 2 ;;
esac
