#!/usr/bin/env bash
# A local redis-server for pulsarflow's Redis state backend (developers and CI).
#
#   deploy/redis.sh install   apt-get install redis-server (Debian; needs root) if missing
#   deploy/redis.sh start     start on 127.0.0.1:$REDIS_PORT with append-only persistence, wait for PING
#   deploy/redis.sh stop      graceful shutdown (the append-only file is flushed first)
#   deploy/redis.sh status    running or not, and where its data lives
#
# Environment: REDIS_PORT (6379), REDIS_HOME_DIR (~/.cache/pulsarflow/redis: data/, redis.log,
# redis.pid), REDIS_APPENDFSYNC (everysec; "always" makes every acknowledged write survive a
# crash of the server, at a cost per write).
set -euo pipefail

REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_HOME_DIR="${REDIS_HOME_DIR:-$HOME/.cache/pulsarflow/redis}"
REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-everysec}"
DATA_DIR="$REDIS_HOME_DIR/data"
PID_FILE="$REDIS_HOME_DIR/redis.pid"
LOG_FILE="$REDIS_HOME_DIR/redis.log"

log() { echo "[redis] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ping() {
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_install() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    log "already installed: $(redis-server --version)"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and there is no apt-get; install Redis 6+ yourself"
  log "installing redis-server with apt-get"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server </dev/null >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server </dev/null >/dev/null
  fi
  log "installed: $(redis-server --version)"
}

cmd_start() {
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found; run: $0 install"
  if our_pid >/dev/null; then
    log "already running (pid $(our_pid)) on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  if ping; then
    die "another Redis already answers on 127.0.0.1:$REDIS_PORT; stop it or set REDIS_PORT"
  fi
  mkdir -p "$DATA_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$DATA_DIR" --appendonly yes --appendfsync "$REDIS_APPENDFSYNC" --save "" \
    --daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" </dev/null
  local i
  for i in $(seq 1 100); do
    if ping; then
      log "ready on redis://127.0.0.1:$REDIS_PORT/0 (pid $(cat "$PID_FILE" 2>/dev/null), data $DATA_DIR)"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$LOG_FILE" >&2 || true
  die "redis-server did not answer PING within 10 s"
}

cmd_stop() {
  local pid i
  if ! pid="$(our_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 10 s; killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    echo "running (pid $pid) on redis://127.0.0.1:$REDIS_PORT/0, data in $DATA_DIR"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info persistence 2>/dev/null | grep -E '^aof_enabled|^aof_last_write_status' || true
    return 0
  fi
  if ping; then
    echo "a Redis not started by this script answers on 127.0.0.1:$REDIS_PORT"
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
  status) cmd_status ;;
  *)
    echo "usage: $0 install|start|stop|restart|status" >&2
    exit 2
    ;;
esac
