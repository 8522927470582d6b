#!/usr/bin/env bash
# A second, secured Pulsar standalone for tests: token authentication, authorization and
# TLS on, on loopback ports of its own, next to the plain one of deploy/pulsar-standalone.sh.
#
# Usage: deploy/pulsar-secured.sh start|stop|status|logs
#
#   start   makes the credentials (once), then starts on fresh data and waits until the
#           TLS admin endpoint answers for the admin token
#   stop    stops it (only the processes it started: its own process group)
#
# It runs the distribution installed by deploy/pulsar-standalone.sh install, through a
# shadow directory (bin/, conf/ and instances/ copied, lib/ linked) so the plain standalone's
# stop never mistakes these processes for its own. RocksDB metadata (no ZooKeeper, whose
# standalone form listens on every interface) and no table service (it does too): the
# broker, its web service, a bookie and the functions worker, all on 127.0.0.1. The worker
# connects over TLS with a token of its own (role worker, a super-user) and hands both to
# every function instance; Python functions have no function state here (use state: redis).
# The instances' gRPC and metrics servers are bound to 127.0.0.1 in the shadow's copy of
# instances/python-instance, and run with the python3 of $PULSAR_VENV (or the PATH's).
#
# Everything it makes is under $PULSAR_SECURED_DIR (default ~/.cache/pulsarflow/pulsar-secured):
#   certs/   ca.cert.pem (the test CA), broker.{cert,key}.pem (CN localhost, SAN 127.0.0.1),
#            client.{cert,key}.pem (CN tls-client: a role for mTLS), other-ca.cert.pem
#            (a CA that signed nothing here: for the "wrong CA" tests)
#   tokens/  secret.key (HS256, from bin/pulsar tokens create-secret-key) and one token per
#            role: admin (super-user), worker (the functions worker's, a super-user), client,
#            executor, engine, nobody (no permissions);
#            expired.token (expired a second after it was made), forged.token (signed by
#            another key)
#   client.conf  the admin's client.conf (TLS URLs, token file, CA): pulsar-admin and
#            pulsarflow.pulsar.connection.from_client_conf read it as is
# Files holding keys or tokens are 0600.
#
# Environment (all optional):
#   PULSAR_HOME_DIR       where deploy/pulsar-standalone.sh unpacked the distribution
#   PULSAR_VERSION        its version (default 4.0.8)
#   PULSAR_SECURED_DIR    see above
#   SECURED_BROKER_PORT (6660), SECURED_BROKER_TLS_PORT (6661), SECURED_WEB_PORT (8090),
#   SECURED_WEB_TLS_PORT (8453), SECURED_BOOKIE_PORT (3191; with RocksDB metadata the bookie
#                         picks a free loopback port of its own instead)
#   PULSAR_READY_TIMEOUT  seconds to wait on start (default 180)
#   PULSAR_VENV           the venv whose python3 runs function instances (default
#                         ~/.cache/pulsarflow/pulsar-venv; the python3 on PATH when absent)
#   SECURED_FUNCTIONS_WORKER  0 starts no functions worker (default 1)
set -euo pipefail

PULSAR_VERSION="${PULSAR_VERSION:-4.0.8}"
PULSAR_HOME_DIR="${PULSAR_HOME_DIR:-$HOME/.cache/pulsarflow/pulsar}"
SECURED_DIR="${PULSAR_SECURED_DIR:-$HOME/.cache/pulsarflow/pulsar-secured}"
PULSAR_READY_TIMEOUT="${PULSAR_READY_TIMEOUT:-180}"
BROKER_PORT="${SECURED_BROKER_PORT:-6660}"
BROKER_TLS_PORT="${SECURED_BROKER_TLS_PORT:-6661}"
WEB_PORT="${SECURED_WEB_PORT:-8090}"
WEB_TLS_PORT="${SECURED_WEB_TLS_PORT:-8453}"
BOOKIE_PORT="${SECURED_BOOKIE_PORT:-3191}"
PULSAR_VENV="${PULSAR_VENV:-$HOME/.cache/pulsarflow/pulsar-venv}"
FUNCTIONS_WORKER="${SECURED_FUNCTIONS_WORKER:-1}"

DIST_DIR="$PULSAR_HOME_DIR/apache-pulsar-$PULSAR_VERSION"
SHADOW="$SECURED_DIR/apache-pulsar-$PULSAR_VERSION"
CERTS="$SECURED_DIR/certs"
TOKENS="$SECURED_DIR/tokens"
RUN_DIR="$SECURED_DIR/run"
CONF_FILE="$RUN_DIR/standalone.conf"
WORKER_CONF_FILE="$RUN_DIR/functions_worker.yml"
LOG_FILE="$RUN_DIR/standalone.out"
PID_FILE="$RUN_DIR/standalone.pid"
ROLES=(admin worker client executor engine nobody)

log() { echo "[pulsar-secured] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read_pid() { pid_in "$PID_FILE"; }
is_running() { alive_in "$PID_FILE"; }


make_shadow() {
  [[ -x "$DIST_DIR/bin/pulsar" ]] || die "no distribution in $DIST_DIR: run deploy/pulsar-standalone.sh install"
  if [[ ! -x "$SHADOW/bin/pulsar" ]]; then
    mkdir -p "$SHADOW"
    cp -r "$DIST_DIR/bin" "$DIST_DIR/conf" "$SHADOW/"
    ln -sfn "$DIST_DIR/lib" "$SHADOW/lib"
  fi
  if [[ ! -d "$SHADOW/instances" ]]; then
    cp -r "$DIST_DIR/instances" "$SHADOW/"
  fi
  confine_python_instance_in "$SHADOW/instances/python-instance"
}

# A certificate signed by the test CA: sign NAME CN SAN
sign() {
  local name="$1" cn="$2" san="$3"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$CERTS/$name.key.pem" 2>/dev/null
  openssl req -new -key "$CERTS/$name.key.pem" -subj "/CN=$cn" -out "$CERTS/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$CERTS/$name.ext"
  openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/ca.cert.pem" -CAkey "$CERTS/ca.key.pem" \
    -CAcreateserial -days 3650 -sha256 -extfile "$CERTS/$name.ext" -out "$CERTS/$name.cert.pem" 2>/dev/null
  rm -f "$CERTS/$name.csr" "$CERTS/$name.ext"
}

make_certs() {
  [[ -f "$CERTS/client.cert.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
  log "making a test CA and certificates in $CERTS"
  mkdir -p "$CERTS"; chmod 700 "$CERTS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=pulsarflow test CA" \
    -keyout "$CERTS/ca.key.pem" -out "$CERTS/ca.cert.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=pulsarflow other CA" \
    -keyout "$CERTS/other-ca.key.pem" -out "$CERTS/other-ca.cert.pem" 2>/dev/null
  sign broker localhost "DNS:localhost,IP:127.0.0.1"
  sign client tls-client "DNS:tls-client"
  chmod 600 "$CERTS"/*.key.pem
}

make_tokens() {
  local pulsar="$SHADOW/bin/pulsar" role
  if [[ -f "$TOKENS/forged.token" ]]; then  # made before: add the tokens of roles added since
    for role in "${ROLES[@]}"; do
      [[ -f "$TOKENS/$role.token" ]] && continue
      log "making the token of role $role"
      (umask 077; "$pulsar" tokens create --secret-key "file://$TOKENS/secret.key" --subject "$role" >"$TOKENS/$role.token")
    done
    return 0
  fi
  log "making a secret key and tokens in $TOKENS"
  mkdir -p "$TOKENS"; chmod 700 "$TOKENS"
  (umask 077
   "$pulsar" tokens create-secret-key --output "$TOKENS/secret.key" >/dev/null
   for role in "${ROLES[@]}"; do
     "$pulsar" tokens create --secret-key "file://$TOKENS/secret.key" --subject "$role" >"$TOKENS/$role.token"
   done
   "$pulsar" tokens create --secret-key "file://$TOKENS/secret.key" --subject client --expiry-time 1s \
     >"$TOKENS/expired.token"
   "$pulsar" tokens create-secret-key --output "$TOKENS/other.key" >/dev/null
   "$pulsar" tokens create --secret-key "file://$TOKENS/other.key" --subject admin >"$TOKENS/forged.token"
   rm -f "$TOKENS/other.key")
}

write_client_conf() {
  (umask 077
   cat >"$SECURED_DIR/client.conf" <<EOF
# The secured test standalone, as its admin (deploy/pulsar-secured.sh)
webServiceUrl=https://127.0.0.1:$WEB_TLS_PORT/
brokerServiceUrl=pulsar+ssl://127.0.0.1:$BROKER_TLS_PORT/
authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken
authParams=file://$TOKENS/admin.token
tlsAllowInsecureConnection=false
tlsEnableHostnameVerification=true
tlsTrustCertsFilePath=$CERTS/ca.cert.pem
EOF
  )
}

write_conf() {
  mkdir -p "$RUN_DIR"
  cp "$DIST_DIR/conf/standalone.conf" "$CONF_FILE"
  local c="$CONF_FILE"
  set_conf "$c" bindAddress 127.0.0.1
  set_conf "$c" advertisedAddress 127.0.0.1
  [[ -e /sys/class/net/lo ]] && set_conf "$c" listeningInterface lo
  set_conf "$c" httpServerEnabled false
  set_conf "$c" brokerServicePort "$BROKER_PORT"
  set_conf "$c" brokerServicePortTls "$BROKER_TLS_PORT"
  set_conf "$c" webServicePort "$WEB_PORT"
  set_conf "$c" webServicePortTls "$WEB_TLS_PORT"
  set_conf "$c" tlsCertificateFilePath "$CERTS/broker.cert.pem"
  set_conf "$c" tlsKeyFilePath "$CERTS/broker.key.pem"
  set_conf "$c" tlsTrustCertsFilePath "$CERTS/ca.cert.pem"
  set_conf "$c" tlsAllowInsecureConnection false
  set_conf "$c" tlsRequireTrustedClientCertOnConnect false
  set_conf "$c" authenticationEnabled true
  set_conf "$c" authenticationProviders \
    "org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls"
  set_conf "$c" tokenSecretKey "file://$TOKENS/secret.key"
  set_conf "$c" authorizationEnabled true
  set_conf "$c" superUserRoles admin,worker
  # The broker's own client, which the functions worker inherits (and hands to every
  # function instance): TLS to this broker, the worker's token.
  set_conf "$c" brokerClientAuthenticationPlugin org.apache.pulsar.client.impl.auth.AuthenticationToken
  set_conf "$c" brokerClientAuthenticationParameters "file://$TOKENS/worker.token"
  set_conf "$c" brokerClientTlsEnabled true
  set_conf "$c" brokerClientTrustCertsFilePath "$CERTS/ca.cert.pem"
  set_conf "$c" brokerDeleteInactiveTopicsEnabled false
  set_conf "$c" numIOThreads 1
  set_conf "$c" numHttpServerThreads 8
  set_conf "$c" bookkeeperClientNumWorkerThreads 1
  set_conf "$c" numOrderedExecutorThreads 1
  set_conf "$c" managedLedgerCacheSizeMB 32
  set_conf "$c" delayedDeliveryTickTimeMillis 100
}

# The functions worker's own settings (the broker gives it its ports, id, authentication
# and authorization settings, its broker-client token and CA): the TLS URLs of this broker
# (the distribution's file names the plain standalone's 6650/8080), TLS for the instances'
# client, a dead instance noticed in 5 s.
write_worker_conf() {
  sed -e 's|^workerHostname:.*|workerHostname: 127.0.0.1|' \
    -e 's|^useTls:.*|useTls: true|' \
    -e "s|^pulsarServiceUrl:.*|pulsarServiceUrl: pulsar+ssl://127.0.0.1:$BROKER_TLS_PORT|" \
    -e "s|^pulsarWebServiceUrl:.*|pulsarWebServiceUrl: https://127.0.0.1:$WEB_TLS_PORT|" \
    -e "s|^tlsTrustCertsFilePath:.*|tlsTrustCertsFilePath: $CERTS/ca.cert.pem|" \
    -e 's|^tlsEnableHostnameVerification:.*|tlsEnableHostnameVerification: true|' \
    -e 's|^instanceLivenessCheckFreqMs:.*|instanceLivenessCheckFreqMs: 5000|' \
    -e 's|^configurationMetadataStoreUrl:.*|configurationMetadataStoreUrl:|' \
    "$DIST_DIR/conf/functions_worker.yml" >"$WORKER_CONF_FILE"
  printf '\nbrokerClientTrustCertsFilePath: %s\n' "$CERTS/ca.cert.pem" >>"$WORKER_CONF_FILE"
}

admin_code() {
  curl -s -o /dev/null -m 5 -w '%{http_code}' --cacert "$CERTS/ca.cert.pem" \
    -H "Authorization: Bearer $(cat "$TOKENS/admin.token")" "https://127.0.0.1:$WEB_TLS_PORT/$1" 2>/dev/null || true
}

wait_ready() {
  local deadline=$((SECONDS + PULSAR_READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    is_running || { log "it exited during startup"; tail -n 40 "$LOG_FILE" >&2; return 1; }
    if [[ "$(admin_code admin/v2/namespaces/public)" == 200 ]] && port_open "$BROKER_TLS_PORT"; then
      [[ "$FUNCTIONS_WORKER" == 1 ]] || return 0
      # the worker serves function calls once it leads (before, a create answers 503)
      grep -q "done becoming leader" "$LOG_FILE" 2>/dev/null \
        && [[ "$(admin_code admin/v3/functions/public/default)" == 200 ]] && return 0
    fi
    sleep 1
  done
  log "not ready after ${PULSAR_READY_TIMEOUT}s"; tail -n 40 "$LOG_FILE" >&2
  return 1
}

cmd_start() {
  if is_running; then
    log "already running (pid $(read_pid))"
    wait_ready; return
  fi
  local port
  for port in "$BROKER_PORT" "$BROKER_TLS_PORT" "$WEB_PORT" "$WEB_TLS_PORT" "$BOOKIE_PORT"; do
    port_open "$port" && die "port $port is already in use by another process"
  done
  make_shadow
  make_certs
  make_tokens
  write_conf
  write_client_conf
  local worker_args=(--no-functions-worker)
  if [[ "$FUNCTIONS_WORKER" == 1 ]]; then
    write_worker_conf
    worker_args=(--functions-worker-conf "$WORKER_CONF_FILE")
    # The worker launches each Python instance with the python3 found on PATH.
    if [[ -x "$PULSAR_VENV/bin/python3" ]]; then
      export PATH="$PULSAR_VENV/bin:$PATH" VIRTUAL_ENV="$PULSAR_VENV"
    fi
    python3 -c 'import pulsar.functions, fastavro, bookkeeper, prometheus_client, ratelimit' 2>/dev/null \
      || die "the python3 on PATH ($(command -v python3)) cannot run function instances: set PULSAR_VENV to the venv of deploy/pulsar-standalone.sh install"
    rm -rf "$SHADOW/packages-storage" "$SHADOW/download"  # the packages of functions of a previous run
  fi
  default_java_home
  export PULSAR_MEM="${SECURED_PULSAR_MEM:--Xms128m -Xmx768m -XX:MaxDirectMemorySize=512m}"
  export PULSAR_GC="-XX:+UseG1GC -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -XX:+PerfDisableSharedMem -XX:TieredStopAtLevel=1"
  export PULSAR_GC_LOG=" "
  export PULSAR_STANDALONE_CONF="$CONF_FILE"
  export PULSAR_LOG_DIR="$RUN_DIR/logs"
  unset PULSAR_STANDALONE_USE_ZOOKEEPER
  local t0=$SECONDS
  log "starting on https://127.0.0.1:$WEB_TLS_PORT, pulsar+ssl://127.0.0.1:$BROKER_TLS_PORT (log: $LOG_FILE)"
  setsid "$SHADOW/bin/pulsar" standalone --wipe-data "${worker_args[@]}" --no-stream-storage \
    --bookkeeper-dir "$RUN_DIR/data/bookkeeper" --metadata-dir "$RUN_DIR/data/metadata" \
    --bookkeeper-port "$BOOKIE_PORT" \
    >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  if wait_ready; then
    log "ready in $((SECONDS - t0))s (pid $(read_pid)); admin client.conf: $SECURED_DIR/client.conf"
  else
    cmd_stop || true
    exit 1
  fi
}

cmd_stop() {
  local pid i
  pid="$(read_pid)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping pid $pid"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 1 40); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  if is_running; then
    echo "running (pid $(read_pid)): https://127.0.0.1:$WEB_TLS_PORT (admin answers $(admin_code admin/v2/clusters))"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) tail -n "${2:-100}" "$LOG_FILE" ;;
  *) echo "usage: $0 start|stop|status|logs [lines]" >&2; exit 2 ;;
esac
