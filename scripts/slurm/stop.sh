#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start.sh started (by their pid files only), then remove its directory
# unless CEL_SLURM_KEEP=1.
set -uo pipefail
D=${CEL_SLURM_DIR:-/tmp/cel-slurm}
stop() {   # stop PIDFILE NAME
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $2 ($pid)"
  fi
  rm -f "$1"
}
stop "$D/slurmd.pid" slurmd
stop "$D/slurmctld.pid" slurmctld
stop "$D/slurmdbd.pid" slurmdbd
stop "$D/mariadb.pid" mariadbd
stop "$D/munge/munged.pid" munged
[ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$D/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
[ "${CEL_SLURM_KEEP:-0}" = 1 ] || rm -rf "$D"
