#!/usr/bin/env bash
# A single-node SLURM cluster on loopback, everything under $CEL_SLURM_DIR (default /tmp/cel-slurm):
# munged (munge's default socket), MariaDB (own data dir, 127.0.0.1:$PORT_DB), slurmdbd, slurmctld, slurmd.
# Clients find the cluster through SLURM_CONF=$CEL_SLURM_DIR/slurm.conf (`source $CEL_SLURM_DIR/env.sh`)
# and, inside jobs, through a link /etc/slurm/slurm.conf -> it (made only if no slurm.conf exists;
# removed by scripts/slurm/stop.sh). Stop everything with scripts/slurm/stop.sh.
set -euo pipefail
export PATH=$PATH:/usr/sbin
D=${CEL_SLURM_DIR:-/tmp/cel-slurm}
PORT_BASE=${CEL_SLURM_PORT_BASE:-16817}
PORT_CTLD=$PORT_BASE; PORT_D=$((PORT_BASE + 1)); PORT_DBD=$((PORT_BASE + 2)); PORT_DB=$((PORT_BASE + 3))
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=${CEL_SLURM_MEM_MB:-8000}
mkdir -p "$D"/{munge,ctld,spool,db,log}
chmod 755 "$D/munge"

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "start.sh: $what did not come up (logs in $D/log)" >&2; return 1
}

# munge: the key Debian's package generated, on munge's default socket (sacctmgr's persistent
# connection to slurmdbd ignores AuthInfo=socket=..., so a private socket does not work)
MSOCK=/run/munge/munge.socket.2
mkdir -p /run/munge && chmod 755 /run/munge
if ! munge -n >/dev/null 2>&1; then
  munged --force --socket="$MSOCK" --pid-file="$D/munge/munged.pid" \
         --log-file="$D/log/munged.log" --seed-file="$D/munge/munge.seed" --key-file=/etc/munge/munge.key
fi
wait_for 10 munged munge -n

# MariaDB for the accounting store (loopback only, own data dir)
if [ ! -d "$D/db/mysql" ]; then
  mariadb-install-db --user=root --datadir="$D/db" --auth-root-authentication-method=normal >"$D/log/mariadb-install.log" 2>&1
fi
if ! [ -f "$D/mariadb.pid" ] || ! kill -0 "$(cat "$D/mariadb.pid")" 2>/dev/null; then
  setsid mariadbd --user=root --datadir="$D/db" --socket="$D/mariadb.sock" --port=$PORT_DB --bind-address=127.0.0.1 \
           --pid-file="$D/mariadb.pid" --log-error="$D/log/mariadb.log" --skip-name-resolve \
           --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
fi
wait_for 60 mariadb mariadb --socket="$D/mariadb.sock" -uroot -e "select 1"
mariadb --socket="$D/mariadb.sock" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

cat >"$D/slurm.conf" <<CONF
ClusterName=celtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT_CTLD
SlurmdPort=$PORT_D
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$PORT_DBD
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=2
MinJobAge=600
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
cat >"$D/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$PORT_DBD
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$PORT_DB
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
chmod 600 "$D/slurmdbd.conf"
printf 'export SLURM_CONF=%s/slurm.conf\nexport PATH=$PATH:/usr/sbin\n' "$D" >"$D/env.sh"
# Jobs cannot rely on SLURM_CONF: snakemake-executor-plugin-slurm deletes every SLURM_* variable
# inside a job before its `srun`, which then looks for /etc/slurm/slurm.conf (as on a real
# cluster). Link ours there unless a slurm.conf exists already; stop.sh removes only our link.
if [ ! -e /etc/slurm/slurm.conf ]; then
  mkdir -p /etc/slurm && ln -s "$D/slurm.conf" /etc/slurm/slurm.conf
fi
export SLURM_CONF=$D/slurm.conf

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
alive "$D/slurmdbd.pid" || setsid slurmdbd
wait_for 60 slurmdbd sacctmgr -i list cluster
sacctmgr -i add cluster celtest >/dev/null 2>&1 || true
sacctmgr -i add account cel Description=cel Organization=cel >/dev/null 2>&1 || true
sacctmgr -i add user "$(id -un)" Account=cel DefaultAccount=cel >/dev/null 2>&1 || true
alive "$D/slurmctld.pid" || setsid slurmctld -f "$D/slurm.conf"
wait_for 60 slurmctld scontrol ping
alive "$D/slurmd.pid" || setsid slurmd -f "$D/slurm.conf"
wait_for 60 "node $NODE idle" bash -c "sinfo -h -N -o %t | grep -q idle"
sinfo
echo "cluster up: source $D/env.sh"
