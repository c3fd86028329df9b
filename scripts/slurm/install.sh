#!/usr/bin/env bash
# Debian's SLURM (slurm-wlm: slurmctld + slurmd), munge, slurmdbd and MariaDB (sacct reads the
# accounting database through slurmdbd; Slurm 22.05 has no file-based accounting store).
# Idempotent: skips apt when every binary is there. Needs root (apt-get).
set -euo pipefail
need=(slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db)
missing=0
for b in "${need[@]}"; do command -v "$b" >/dev/null || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null
fi
echo "slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm)"
