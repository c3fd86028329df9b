#!/usr/bin/env bash
# PostgreSQL (Debian's package, a data dir of its own, 127.0.0.1 only) with two databases,
# `mlflow` and `optuna`, and an `mlflow server` using the first as its backend store and a local
# artifact root. Everything under $CEL_SERVICES_DIR (default /tmp/cel-services); `source
# $CEL_SERVICES_DIR/env.sh` sets MLFLOW_TRACKING_URI and CEL_OPTUNA_STORAGE for the workflow.
# Stop with scripts/services/stop.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${CEL_SERVICES_DIR:-/tmp/cel-services}
PG_PORT=${CEL_PG_PORT:-15432}
MLFLOW_PORT=${CEL_MLFLOW_PORT:-15000}
BIN=${BIN:-.venv/bin}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
id postgres >/dev/null 2>&1 || useradd --system --home "$D" postgres
mkdir -p "$D/pg" "$D/artifacts" "$D/log"
chown postgres "$D" "$D/pg" "$D/log"
as_pg() { runuser -u postgres -- "$@"; }
[ -f "$D/pg/PG_VERSION" ] || as_pg "$PGBIN/initdb" -D "$D/pg" -A trust -U postgres >"$D/log/initdb.log"
if ! as_pg "$PGBIN/pg_ctl" -D "$D/pg" status >/dev/null 2>&1; then
  as_pg "$PGBIN/pg_ctl" -D "$D/pg" -l "$D/log/postgresql.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $D -c max_connections=200" start >/dev/null
fi
for db in mlflow optuna; do
  as_pg psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
    as_pg psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $db"
done
PG=postgresql://postgres@127.0.0.1:$PG_PORT
if ! { [ -f "$D/mlflow.pid" ] && kill -0 "$(cat "$D/mlflow.pid")" 2>/dev/null; }; then
  setsid "$BIN/mlflow" server --backend-store-uri "$PG/mlflow" --artifacts-destination "$D/artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 >"$D/log/mlflow.log" 2>&1 &
  echo $! >"$D/mlflow.pid"
fi
for _ in $(seq 240); do
  curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null 2>&1 && break
  kill -0 "$(cat "$D/mlflow.pid")" 2>/dev/null || { echo "mlflow server died:"; tail -20 "$D/log/mlflow.log"; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null || { echo "mlflow server not healthy"; exit 1; }
cat >"$D/env.sh" <<ENV
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export CEL_OPTUNA_STORAGE=$PG/optuna
export CEL_PG_URL=$PG
ENV
echo "services up: PostgreSQL $PG (databases mlflow, optuna), MLflow http://127.0.0.1:$MLFLOW_PORT; source $D/env.sh"
