#!/usr/bin/env bash
# A single-node SLURM cluster on this machine for the SLURM tests (tests/test_slurm*.py, `make test-slurm`).
#
#   tests/cluster/slurm.sh start    install what is missing (root: apt-get), configure, start; idempotent
#   tests/cluster/slurm.sh stop     stop the daemons this script started (by their PID records), nothing else
#   tests/cluster/slurm.sh status   exit 0 when the cluster answers and the node takes jobs
#
# Daemons: munged, mariadbd + slurmdbd (accounting, so sacct works), slurmctld, slurmd. Partitions: cpu
# (default), gpu (fake GPUs: gres.conf entries whose File= is a character device, so --gpus requests are
# really scheduled and jobs get CUDA_VISIBLE_DEVICES) and urgent (a higher PriorityTier, preempting with
# REQUEUE). Account $ACCOUNT exists so `slurm_account` validates. Environment: SLURM_TEST_DIR (state,
# default /tmp/unifiedml-slurm), SLURM_TEST_ACCOUNT (default ci), FAKE_GPUS (default 2, at most 4).
set -euo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/unifiedml-slurm}; RUN=$DIR/run; DB=$DIR/mysql
ACCOUNT=${SLURM_TEST_ACCOUNT:-ci}; FAKE_GPUS=${FAKE_GPUS:-2}; CLUSTER=unifiedml
PACKAGES="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
log() { echo "[slurm.sh $(date +%T)] $*" >&2; }

alive() {  # PID COMM: running (not a zombie) under that name
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
pid_in() { [ -s "$1" ] && tr -dc '0-9' < "$1" || true; }
wait_for() {  # SECONDS WHAT CMD...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  log "timed out after ${seconds}s waiting for $what"; return 1
}
start_daemon() {  # NAME PIDFILE CMD...: start unless our record says it runs; record "PID NAME" in $RUN
  local name=$1 pidfile=$2; shift 2
  if [ -s "$RUN/$name.pid" ] && read -r pid comm < "$RUN/$name.pid" && alive "$pid" "$comm"; then
    return 0
  fi
  rm -f "$pidfile"; "$@"
  wait_for 30 "$name to write $pidfile" test -s "$pidfile"
  local pid; pid=$(pid_in "$pidfile")
  wait_for 5 "$name to run" alive "$pid" "$name"
  echo "$pid $name" > "$RUN/$name.pid"; log "$name started (pid $pid)"
}

install_packages() {
  local missing="" p
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  [ "$(id -u)" = 0 ] || { log "missing packages:$missing (run as root to install them)"; exit 1; }
  log "installing:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

write_config() {
  local host=$1 node gres_node="" gres_types="" devs=(/dev/null /dev/zero /dev/full /dev/urandom) i
  node=$(slurmd -C | head -1)  # NodeName=<host> CPUs=... RealMemory=...
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/spool/slurmdbd /var/log/slurm
  : > /etc/slurm/gres.conf
  if [ "$FAKE_GPUS" -gt 0 ]; then
    for i in $(seq 0 $((FAKE_GPUS - 1))); do echo "NodeName=$host Name=gpu File=${devs[$i]}" >> /etc/slurm/gres.conf; done
    gres_node="Gres=gpu:$FAKE_GPUS"; gres_types="GresTypes=gpu"
  fi
  # linuxproc/none: no cgroups in a container; cons_tres + CR_Core_Memory + DefMemPerCPU: jobs share the
  # node by CPUs and memory; MinJobAge 300 s: squeue still shows a finished job when the executor polls;
  # KillWait 15 s: time for ML to checkpoint on SIGTERM before SIGKILL.
  cat > "$DIR/slurm.conf" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/var/spool/slurmctld/slurmctld.pid
SlurmdPidFile=/var/spool/slurmd/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
$gres_types
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
MinJobAge=300
KillWait=15
InactiveLimit=0
Waittime=0
$node NodeAddr=127.0.0.1 $gres_node State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10
CONF
  if ! cmp -s "$DIR/slurm.conf" /etc/slurm/slurm.conf && [ -s "$RUN/slurmctld.pid" ]; then
    log "slurm.conf changed while the cluster runs: '$0 stop' first"; exit 1
  fi
  cp "$DIR/slurm.conf" /etc/slurm/slurm.conf
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/var/spool/slurmdbd/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
}

node_ok() { sinfo -h -n "$1" -o %T | grep -qE '^(idle|mixed|allocated)'; }

start() {
  install_packages
  mkdir -p "$RUN"
  local host; host=$(hostname -s)
  # munge (authentication)
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  start_daemon munged /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged
  wait_for 10 "munge" sh -c 'munge -n | unmunge'
  write_config "$host"
  # MariaDB in its own data directory on 127.0.0.1, then slurmdbd (accounting: sacct)
  install -d -o mysql -g mysql "$DB"
  [ -d "$DB/data/mysql" ] || mariadb-install-db --user=mysql --datadir="$DB/data" --skip-test-db \
    --auth-root-authentication-method=socket > "$DB/install.log" 2>&1
  start_daemon mariadbd "$DB/mysqld.pid" sh -c "setsid /usr/sbin/mariadbd --no-defaults --user=mysql \
    --datadir='$DB/data' --socket='$DB/mysqld.sock' --pid-file='$DB/mysqld.pid' --bind-address=127.0.0.1 \
    --port=3306 --log-error='$DB/error.log' --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &"
  wait_for 30 "mariadb" mariadb --socket="$DB/mysqld.sock" -e 'select 1'
  mariadb --socket="$DB/mysqld.sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  start_daemon slurmdbd /var/spool/slurmdbd/slurmdbd.pid /usr/sbin/slurmdbd
  wait_for 60 "slurmdbd" sacctmgr -n list cluster
  # controller and compute node
  start_daemon slurmctld /var/spool/slurmctld/slurmctld.pid /usr/sbin/slurmctld
  wait_for 30 "slurmctld" sh -c 'scontrol ping | grep -q UP'
  start_daemon slurmd /var/spool/slurmd/slurmd.pid /usr/sbin/slurmd
  if ! wait_for 30 "node $host" node_ok "$host"; then
    scontrol update nodename="$host" state=resume || true  # an old DRAIN/DOWN from an earlier run
    wait_for 15 "node $host" node_ok "$host" || { sinfo -R >&2; exit 1; }
  fi
  # the account the tests submit under (the executor plugin checks it with sacctmgr)
  wait_for 30 "cluster registration" sh -c "sacctmgr -n list cluster format=cluster | grep -qw $CLUSTER"
  sacctmgr -n list account "$ACCOUNT" format=account | grep -qw "$ACCOUNT" ||
    sacctmgr -i add account "$ACCOUNT" Description=tests Organization=tests >/dev/null
  sacctmgr -n -s list user "$(id -un)" format=account | grep -qw "$ACCOUNT" ||
    sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" >/dev/null
  log "ready: $(sinfo -h -o '%P %C %m %G' | tr '\n' ';') account $ACCOUNT"
}

stop() {
  local name rec pid comm
  # cancel leftover jobs first, through our own controller only, so no job outlives slurmd
  if [ -s "$RUN/slurmctld.pid" ] && read -r pid comm < "$RUN/slurmctld.pid" && alive "$pid" "$comm"; then
    local jobs; jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      scancel $jobs 2>/dev/null || true
      wait_for 20 "jobs to end" sh -c '[ -z "$(squeue -h -t R,CG -o %i)" ]' || true
    fi
  fi
  for name in slurmd slurmctld slurmdbd mariadbd munged; do  # reverse start order
    rec=$RUN/$name.pid
    [ -s "$rec" ] || continue
    read -r pid comm < "$rec"
    if alive "$pid" "$comm"; then
      kill -TERM "$pid"
      wait_for 15 "$name to stop" sh -c "! [ -d /proc/$pid ] || [ \"\$(awk '{print \$3}' /proc/$pid/stat)\" = Z ]" ||
        { log "$name (pid $pid) ignored SIGTERM: SIGKILL"; kill -KILL "$pid"; }
      log "$name (pid $pid) stopped"
    fi
    rm -f "$rec"
  done
}

status() {
  local name pid comm
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    [ -s "$RUN/$name.pid" ] && read -r pid comm < "$RUN/$name.pid" && alive "$pid" "$comm" ||
      { echo "$name: not running (start: $0 start)"; return 1; }
  done
  node_ok "$(hostname -s)" || { echo "node $(hostname -s) does not take jobs: $(sinfo -h -o '%T %E')"; return 1; }
  sacctmgr -n list account "$ACCOUNT" format=account | grep -qw "$ACCOUNT" || { echo "no account $ACCOUNT"; return 1; }
  echo "up: $(sinfo -h -o '%P %C %m %G' | tr '\n' ';') account $ACCOUNT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
