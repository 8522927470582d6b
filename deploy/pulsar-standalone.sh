#!/usr/bin/env bash
# Install, start, stop and inspect a local Apache Pulsar standalone with the
# functions worker and function state (BookKeeper table service on port 4181).
#
# Usage: deploy/pulsar-standalone.sh install|start|stop|status|restart|reset|logs
#
#   start   starts on the data of the previous run (topics, subscriptions, function
#           state, deployed functions survive a stop/start or a crash); the first start
#           begins with an empty data directory
#   reset   stops Pulsar if it runs and deletes its data directory: the next start is fresh
#
# Every listener it can configure is bound to 127.0.0.1: the broker (6650) and its web
# service (8080), the bookie (3181), and the gRPC and metrics ports of each Python
# function instance. ZooKeeper (2181) and the table service (4181) bind all interfaces
# in the standalone whatever the configuration says; `start` warns about them (see
# docs/pulsar-setup.md).
#
# Environment (all optional):
#   PULSAR_VERSION        Pulsar release to use (default below; 4.0 LTS line)
#   PULSAR_HOME_DIR       where the distribution is unpacked
#                         (default $HOME/.cache/pulsarflow/pulsar)
#   PULSAR_VENV           Python venv whose python3 runs the function instances
#                         (default $HOME/.cache/pulsarflow/pulsar-venv)
#   PULSARFLOW_SRC        directory with a setup.py/pyproject.toml to pip install
#                         into the venv (skipped when absent); a plain install
#                         is a copy: run install again after changing the code
#   PULSARFLOW_EDITABLE   1 = install PULSARFLOW_SRC with pip install -e
#   PULSAR_READY_TIMEOUT  seconds to wait for readiness on start (default 240)
#   PULSAR_DATA_DIR       ZooKeeper and BookKeeper data (default $PULSAR_HOME_DIR/data);
#                         kept across stop/start, deleted by reset
#   PULSAR_MEM, PULSAR_GC JVM settings (defaults tuned for 2 cores below)
#   PULSAR_MARK_DELETE_RATE_LIMIT  writes per second of each subscription's acknowledged
#                         position (managedLedgerDefaultMarkDeleteRateLimit; default below)
#   PULSAR_BROKER_PORT, PULSAR_WEB_PORT, PULSAR_ZK_PORT, PULSAR_BOOKIE_PORT,
#   PULSAR_STATE_PORT     ports (default 6650, 8080, 2181, 3181, 4181): a second
#                         standalone next to the first needs its own PULSAR_HOME_DIR too
set -euo pipefail

# 4.0.14 (and 4.0.9-4.0.15) are not served by the Maven registry reachable
# here; of the 4.0 line only 4.0.4, 4.0.6 and 4.0.8 carry the server
# distribution. 4.0.8 is the newest of those.
PULSAR_VERSION="${PULSAR_VERSION:-4.0.8}"
PULSAR_HOME_DIR="${PULSAR_HOME_DIR:-$HOME/.cache/pulsarflow/pulsar}"
PULSAR_VENV="${PULSAR_VENV:-$HOME/.cache/pulsarflow/pulsar-venv}"
PULSAR_READY_TIMEOUT="${PULSAR_READY_TIMEOUT:-240}"

# Python packages for the function instances of Pulsar 4.0.x.
# The 4.0.8 python instance (instances/python-instance/*_pb2*.py) was generated
# with protoc 31 / "Protobuf Python Version: 6.31.0" and grpcio-tools 1.73.1
# (GRPC_GENERATED_VERSION in InstanceCommunication_pb2_grpc.py). It has no
# ValidateProtobufRuntimeVersion call, but it does import
# google.protobuf.runtime_version and uses _loaded_options, so protobuf 3.x
# (which pulsar-client<=3.7 forces) cannot load it. pulsar-client 3.8.0 is the
# client the 4.0.x release pins (pulsar.client.python.version in its pom) and
# no longer caps protobuf, so pin the runtime to the generator's versions.
PY_REQUIREMENTS=(
  "pulsar-client[functions,avro]==3.8.0"
  "protobuf==6.31.1"
  "grpcio==1.73.1"
  "requests"
)

DIST_DIR="$PULSAR_HOME_DIR/apache-pulsar-$PULSAR_VERSION"
RUN_DIR="$PULSAR_HOME_DIR/run"
DATA_DIR="${PULSAR_DATA_DIR:-$PULSAR_HOME_DIR/data}"
CONF_FILE="$RUN_DIR/standalone.conf"
WORKER_CONF_FILE="$RUN_DIR/functions_worker.yml"
LOG_FILE="$RUN_DIR/standalone.out"
PID_FILE="$RUN_DIR/standalone.pid"
BROKER_PORT="${PULSAR_BROKER_PORT:-6650}"
WEB_PORT="${PULSAR_WEB_PORT:-8080}"
ZK_PORT="${PULSAR_ZK_PORT:-2181}"
BOOKIE_PORT="${PULSAR_BOOKIE_PORT:-3181}"
STATE_PORT="${PULSAR_STATE_PORT:-4181}"
WEB_URL="http://127.0.0.1:$WEB_PORT"

log() { echo "[pulsar-standalone] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------
pick_python() {
  local p
  for p in python3.11 python3.12 python3.10 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import venv' >/dev/null 2>&1; then
      echo "$p"; return 0
    fi
  done
  return 1
}

install_distribution() {
  if [[ -x "$DIST_DIR/bin/pulsar" ]]; then
    log "distribution already unpacked: $DIST_DIR"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install -y maven)"
  local artifact="org.apache.pulsar:pulsar-server-distribution:$PULSAR_VERSION:tar.gz:bin"
  log "fetching $artifact with Maven"
  if ! mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.11.0:get \
        -Dartifact="$artifact" -Dtransitive=false </dev/null; then
    die "could not fetch $artifact; the 4.0 versions served here are 4.0.4, 4.0.6, 4.0.8 (set PULSAR_VERSION)"
  fi
  local m2="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"
  local tarball="$m2/org/apache/pulsar/pulsar-server-distribution/$PULSAR_VERSION/pulsar-server-distribution-$PULSAR_VERSION-bin.tar.gz"
  [[ -f "$tarball" ]] || die "downloaded file not found at $tarball"
  mkdir -p "$PULSAR_HOME_DIR"
  local tmp="$PULSAR_HOME_DIR/.unpack.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "unpacking $(du -h "$tarball" | cut -f1) into $PULSAR_HOME_DIR"
  tar -xzf "$tarball" -C "$tmp"
  [[ -d "$tmp/apache-pulsar-$PULSAR_VERSION" ]] || die "unexpected tarball layout in $tarball"
  mv "$tmp/apache-pulsar-$PULSAR_VERSION" "$DIST_DIR"
  rmdir "$tmp"
}

install_venv() {
  local py
  py="$(pick_python)" || die "no python3 with the venv module found"
  if [[ ! -x "$PULSAR_VENV/bin/python3" ]]; then
    log "creating venv $PULSAR_VENV with $($py --version 2>&1)"
    "$py" -m venv "$PULSAR_VENV"
  fi
  local pip=("$PULSAR_VENV/bin/python3" -m pip --disable-pip-version-check)
  if "$PULSAR_VENV/bin/python3" - "${PY_REQUIREMENTS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
want = {"pulsar-client": "3.8.0", "protobuf": "6.31.1", "grpcio": "1.73.1"}
for req in sys.argv[1:]:
    name = req.split("[")[0].split("==")[0]
    if name in want and version(name) != want[name]:
        sys.exit(1)
import requests, fastavro, bookkeeper, prometheus_client, ratelimit  # noqa
EOF
  then
    log "venv already has the pinned packages"
  else
    log "installing ${PY_REQUIREMENTS[*]} into $PULSAR_VENV"
    "${pip[@]}" install -q "${PY_REQUIREMENTS[@]}" </dev/null
  fi
  check_python_instance
  if [[ -n "${PULSARFLOW_SRC:-}" ]]; then
    if [[ -f "$PULSARFLOW_SRC/setup.py" || -f "$PULSARFLOW_SRC/pyproject.toml" ]]; then
      local src=("$PULSARFLOW_SRC")
      [[ "${PULSARFLOW_EDITABLE:-0}" == 1 ]] && src=(-e "$PULSARFLOW_SRC")
      log "installing ${src[*]} into the venv"
      # Keep the pins above: the library must not drag protobuf/grpcio along.
      "${pip[@]}" install -q "${src[@]}" "${PY_REQUIREMENTS[@]}" </dev/null
    else
      log "PULSARFLOW_SRC=$PULSARFLOW_SRC has no setup.py/pyproject.toml yet; skipping"
    fi
  fi
}

# The worker runs instances/python-instance/python_instance_main.py with the
# python3 on its PATH: make sure that interpreter can import every module.
check_python_instance() {
  [[ -d "$DIST_DIR/instances/python-instance" ]] || return 0
  log "checking the python instance imports with the venv's python3"
  (cd "$DIST_DIR/instances/python-instance" && "$PULSAR_VENV/bin/python3" -c '
import Function_pb2, InstanceCommunication_pb2, InstanceCommunication_pb2_grpc
import python_instance, contextimpl, state_context, server, util, log
import pulsar
print("python instance imports OK")' </dev/null) || die "the venv cannot import the python instance modules"
}

cmd_install() {
  install_distribution
  install_venv
  log "installed: $DIST_DIR, venv $PULSAR_VENV"
}

# --------------------------------------------------------------------------
# start / stop / status
# --------------------------------------------------------------------------
read_pid() { pid_in "$PID_FILE"; }
is_running() { alive_in "$PID_FILE"; }

http_code() {
  curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true
}


write_conf() {
  cp "$DIST_DIR/conf/standalone.conf" "$CONF_FILE"
  # Loopback only: the broker and web service bind bindAddress; the bookie binds the
  # address of listeningInterface (its advertised address, 127.0.0.1) instead of all.
  set_conf "$CONF_FILE" bindAddress 127.0.0.1
  set_conf "$CONF_FILE" advertisedAddress 127.0.0.1
  if [[ -e /sys/class/net/lo ]]; then
    set_conf "$CONF_FILE" listeningInterface lo
  fi
  set_conf "$CONF_FILE" httpServerEnabled false
  set_conf "$CONF_FILE" brokerServicePort "$BROKER_PORT"
  set_conf "$CONF_FILE" webServicePort "$WEB_PORT"
  # Delayed delivery: check every 100 ms and never deliver early.
  set_conf "$CONF_FILE" delayedDeliveryTickTimeMillis 100
  set_conf "$CONF_FILE" isDelayedDeliveryDeliverAtTimeStrict true
  # Tests create topics and expect them to stay.
  set_conf "$CONF_FILE" brokerDeleteInactiveTopicsEnabled false
  # Fewer threads on a 2-core machine.
  set_conf "$CONF_FILE" numIOThreads 2
  set_conf "$CONF_FILE" bookkeeperClientNumWorkerThreads 2
  set_conf "$CONF_FILE" numOrderedExecutorThreads 2
  set_conf "$CONF_FILE" managedLedgerCacheSizeMB 64
  # A consumer that has caught up hears of a new entry after this delay (default 10 ms):
  # each hop of a workflow waited ~5 ms on average for it (docs/pulsar-setup.md).
  set_conf "$CONF_FILE" managedLedgerNewEntriesCheckDelayInMillis 1
  # Acknowledgements: the broker writes a subscription's acknowledged position to
  # BookKeeper at most this often per second. The distribution's standalone.conf has 0.1
  # (one write per 10 s): after kill -9 of the broker every task of the last 10 s ran
  # again. 0 writes every change: 4-19% ran again (docs/pulsar-setup.md).
  set_conf "$CONF_FILE" managedLedgerDefaultMarkDeleteRateLimit "${PULSAR_MARK_DELETE_RATE_LIMIT:-0}"

  # Functions worker: notice a dead function instance after 5 s instead of
  # 30 s. (With parallelism > 1 the instances of a new function race to
  # create its state table and the loser exits; the worker restarts it on
  # its next liveness check.)
  sed -e 's|^instanceLivenessCheckFreqMs:.*|instanceLivenessCheckFreqMs: 5000|' \
    -e 's|^workerHostname:.*|workerHostname: 127.0.0.1|' \
    -e "s|^pulsarServiceUrl:.*|pulsarServiceUrl: pulsar://127.0.0.1:$BROKER_PORT|" \
    -e "s|^pulsarWebServiceUrl:.*|pulsarWebServiceUrl: http://127.0.0.1:$WEB_PORT|" \
    -e "s|^configurationMetadataStoreUrl:.*|configurationMetadataStoreUrl: zk:127.0.0.1:$ZK_PORT|" \
    "$DIST_DIR/conf/functions_worker.yml" >"$WORKER_CONF_FILE"
}

# Ports our processes listen on at an address other than loopback.
# (/proc/net/tcp{,6}: field 4 is the state, 0A = LISTEN; field 2 the hex address:port;
# field 10 the socket inode, matched against the sockets our processes hold.)
open_listeners() {
  local pid fd link sockets=" " local_address state inode rest addr
  for pid in $(our_pids); do
    for fd in /proc/"$pid"/fd/*; do
      link="$(readlink "$fd" 2>/dev/null || true)"
      [[ "$link" == socket:* ]] && sockets+="${link//[!0-9]/} "
    done
  done
  for file in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "$file" ]] || continue
    while read -r _ local_address _ state _ _ _ _ _ inode rest; do
      [[ "$state" == 0A && "$sockets" == *" $inode "* ]] || continue
      addr="${local_address%%:*}"
      case "$addr" in  # 127.0.0.1, ::1, ::ffff:127.0.0.1
        0100007F | 00000000000000000000000001000000 | 0000000000000000FFFF00000100007F) continue ;;
      esac
      echo "$((16#${local_address##*:}))"
    done <"$file"
  done | sort -un
}

warn_open_listeners() {
  local port open
  open="$(open_listeners | tr '\n' ' ')"
  for port in $open; do
    case "$port" in
      "$ZK_PORT") log "note: ZooKeeper listens on all interfaces (port $port; the standalone takes no bind address for it)" ;;
      "$STATE_PORT") log "note: the table service listens on all interfaces (port $port; the standalone takes no bind address for it)" ;;
      *) log "WARNING: port $port listens on all interfaces" ;;
    esac
  done
}

print_log_tail() {
  log "---- last 60 lines of $LOG_FILE ----"
  tail -n 60 "$LOG_FILE" >&2 2>/dev/null || true
  log "---- end of log ----"
}

wait_ready() {
  local deadline=$((SECONDS + PULSAR_READY_TIMEOUT))
  local clusters="" state_ok=0 worker_ok=0 leader_ok=0 fn_code=""
  while ((SECONDS < deadline)); do
    if ! is_running; then
      log "Pulsar exited during startup"
      print_log_tail
      return 1
    fi
    clusters="$(curl -s -m 5 "$WEB_URL/admin/v2/clusters" 2>/dev/null || true)"
    if [[ "$clusters" == *standalone* ]]; then
      state_ok=0; worker_ok=0; leader_ok=0
      port_open "$STATE_PORT" && state_ok=1
      [[ "$(http_code "$WEB_URL/admin/v2/worker/cluster")" == 200 ]] && worker_ok=1
      fn_code="$(http_code "$WEB_URL/admin/v3/functions/public/default")"
      # Function create/update/delete answer 503 "Leader not yet ready" until
      # the worker leader has taken over the function metadata topic, about
      # a second after /admin/v2/worker/cluster/leader already answers 200.
      # No REST call exposes that moment; this log line marks it.
      grep -q 'FunctionMetaDataManager done becoming leader' "$LOG_FILE" && leader_ok=1
      if ((state_ok && worker_ok && leader_ok)) && [[ "$fn_code" == 200 ]]; then
        return 0
      fi
    fi
    sleep 2
  done
  log "not ready after ${PULSAR_READY_TIMEOUT}s: clusters='${clusters}' port${STATE_PORT}=${state_ok}" \
    "worker/cluster=${worker_ok} worker-leader=${leader_ok} functions-list=${fn_code:-none}"
  print_log_tail
  return 1
}

cmd_start() {
  [[ -x "$DIST_DIR/bin/pulsar" ]] || die "Pulsar $PULSAR_VERSION not installed in $DIST_DIR; run: $0 install"
  [[ -x "$PULSAR_VENV/bin/python3" ]] || die "venv $PULSAR_VENV missing; run: $0 install"
  if is_running; then
    log "already running (pid $(read_pid))"
    wait_ready || die "running Pulsar is not ready"
    return 0
  fi
  local port
  for port in "$BROKER_PORT" "$WEB_PORT" "$ZK_PORT" "$BOOKIE_PORT" "$STATE_PORT"; do
    if port_open "$port"; then
      die "port $port is already in use by another process; stop it first"
    fi
  done
  mkdir -p "$RUN_DIR" "$DATA_DIR"
  write_conf
  confine_python_instance_in "$DIST_DIR/instances/python-instance"  # gRPC and metrics on 127.0.0.1 (lib.sh)

  default_java_home
  # One JVM runs ZooKeeper, a bookie, the table service, the broker and the
  # functions worker. The distribution defaults (-Xms2g/-Xmx2g, 4g direct
  # memory, ZGC with AlwaysPreTouch) are sized for servers.
  export PULSAR_MEM="${PULSAR_MEM:--Xms256m -Xmx1536m -XX:MaxDirectMemorySize=1g}"
  export PULSAR_GC="${PULSAR_GC:--XX:+UseG1GC -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -XX:+PerfDisableSharedMem}"
  export PULSAR_GC_LOG="${PULSAR_GC_LOG:- }"
  export PULSAR_STANDALONE_CONF="$CONF_FILE"
  export PULSAR_STANDALONE_USE_ZOOKEEPER=1
  export PULSAR_LOG_DIR="$RUN_DIR/logs"
  # The worker launches each Python instance with the python3 found on PATH.
  export PATH="$PULSAR_VENV/bin:$PATH"
  export VIRTUAL_ENV="$PULSAR_VENV"

  # Data of the previous run is kept (reset deletes it). The directories are given
  # explicitly: the defaults are relative to the distribution.
  local args=(standalone --functions-worker-conf "$WORKER_CONF_FILE"
    --zookeeper-dir "$DATA_DIR/zookeeper" --bookkeeper-dir "$DATA_DIR/bookkeeper"
    --zookeeper-port "$ZK_PORT" --bookkeeper-port "$BOOKIE_PORT" --stream-storage-port "$STATE_PORT")
  if [[ -d "$DATA_DIR/zookeeper" ]]; then
    log "starting Pulsar $PULSAR_VERSION on the data in $DATA_DIR (reset deletes it; log: $LOG_FILE)"
  else
    log "starting Pulsar $PULSAR_VERSION with no data yet, kept in $DATA_DIR (log: $LOG_FILE)"
  fi
  local t0=$SECONDS
  # setsid: own process group, so stop can end the JVM and the function
  # instances it spawned together.
  setsid "$DIST_DIR/bin/pulsar" "${args[@]}" >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  if wait_ready; then
    log "ready in $((SECONDS - t0))s (pid $(read_pid)): $WEB_URL, pulsar://127.0.0.1:$BROKER_PORT, state bk://127.0.0.1:$STATE_PORT"
    warn_open_listeners
  else
    log "start failed; stopping"
    cmd_stop || true
    exit 1
  fi
}

# Processes whose command line mentions our distribution directory
# (the JVM and the python/java function instances it launched).
our_pids() {
  local d cmd
  for d in /proc/[0-9]*; do
    cmd="$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null || true)"
    if [[ "$cmd" == *"$DIST_DIR"* ]] && [[ "$cmd" == *java* || "$cmd" == *python_instance_main* ]]; then
      echo "${d#/proc/}"
    fi
  done
  return 0
}

cmd_stop() {
  local pid i
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping pid $pid"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "still running after 30s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Anything left from this installation (e.g. orphaned function instances).
  local left
  left="$(our_pids | tr '\n' ' ')"
  if [[ -n "${left// /}" ]]; then
    log "killing leftover processes: $left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 1
  fi
  rm -f "$PID_FILE"
  left="$(our_pids | tr '\n' ' ')"
  [[ -z "${left// /}" ]] || die "processes still alive: $left"
  log "stopped"
}

cmd_reset() {
  cmd_stop
  if [[ -d "$DATA_DIR" ]]; then
    log "deleting the data in $DATA_DIR"
    rm -rf "$DATA_DIR"
  fi
  log "reset: the next start begins with no data"
}

cmd_status() {
  if is_running; then
    echo "running (pid $(read_pid)), version $PULSAR_VERSION"
    echo "clusters:        $(curl -s -m 5 "$WEB_URL/admin/v2/clusters" || echo unreachable)"
    echo "worker cluster:  $(curl -s -m 5 "$WEB_URL/admin/v2/worker/cluster" || echo unreachable)"
    echo "functions (public/default): $(curl -s -m 5 "$WEB_URL/admin/v3/functions/public/default" || echo unreachable)"
    if port_open "$STATE_PORT"; then echo "state storage:   port $STATE_PORT open"; else echo "state storage:   port $STATE_PORT closed"; fi
    echo "data:            $DATA_DIR"
    echo "not on 127.0.0.1: $(open_listeners | tr '\n' ' ')"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  reset) cmd_reset ;;
  status) cmd_status ;;
  logs) tail -n "${2:-100}" "$LOG_FILE" ;;
  *)
    echo "usage: $0 install|start|stop|restart|reset|status|logs [lines]" >&2
    exit 2
    ;;
esac
