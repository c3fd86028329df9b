#!/usr/bin/env bash
# Stop what scripts/services/start.sh started (the mlflow server by its pid's process group,
# PostgreSQL by pg_ctl), then remove the directory unless CEL_SERVICES_KEEP=1.
set -uo pipefail
D=${CEL_SERVICES_DIR:-/tmp/cel-services}
if [ -f "$D/mlflow.pid" ]; then
  pid=$(cat "$D/mlflow.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -- -"$pid" 2>/dev/null || kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 -- -"$pid"
    echo "stopped mlflow server ($pid)"
  fi
  rm -f "$D/mlflow.pid"
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -f "$D/pg/postmaster.pid" ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/pg" -m fast -w stop >/dev/null && echo "stopped postgresql"
fi
[ "${CEL_SERVICES_KEEP:-0}" = 1 ] || rm -rf "$D"
