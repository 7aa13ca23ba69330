#!/bin/bash
# A private single-node Slurm cluster on localhost, for the Slurm backend's
# integration tests (tests/test_slurm_*.py) and for trying `exoc run --target slurm`.
#
#   tests/slurm/cluster.sh up       install slurm-wlm + munge if missing, write the
#                                   config, start munged/slurmctld/slurmd, wait until
#                                   the node is idle (idempotent)
#   tests/slurm/cluster.sh down     stop the daemons started by `up` (idempotent)
#   tests/slurm/cluster.sh status   exit 0 when the cluster answers, 1 otherwise
#   tests/slurm/cluster.sh env      print `export SLURM_CONF=...` for the client commands
#
# Everything lives in one private directory, $EXO_SLURM_DIR (default: exo-slurm
# under $TMPDIR); the system's /etc/slurm and /etc/munge are never touched. The
# daemons listen on their own ports, so a site Slurm on the same host is not
# disturbed. Run as root (the daemons and the jobs run as root).
#
# The node is declared larger than the machine (SlurmdParameters=config_overrides):
# 1024 CPUs, 8 TiB memory and count-only GPU GRES (no device files) of the types
# the examples use, so that `--gres=gpu:TYPE:N`, `--cpus-per-task` and `--mem`
# are really scheduled. Partitions: `ondemand` (default) and `preempt`
# (PreemptMode=REQUEUE, lower priority tier), plus `cpu` and `preempt-cpu`.
# A preempted job first gets its --signal (preempt_send_user_signal), then
# GraceTime=5 s to checkpoint, then TERM/KILL, and goes back to the queue.
set -euo pipefail

dir=${EXO_SLURM_DIR:-${TMPDIR:-/tmp}/exo-slurm}
ctld_port=${EXO_SLURM_CTLD_PORT:-16817}
slurmd_port=${EXO_SLURM_SLURMD_PORT:-16818}
node=exo-node
conf=$dir/etc/slurm.conf
socket=$dir/munge/munge.socket
# GPU types (Slurm GRES type names: the lower-cased accelerator names of the
# built-in catalogs and the examples) and how many of each the node offers.
gpu_types=(a100 a100-80gb h100 l4 l40s a10g t4 v100)
gpus_per_type=64

log() { printf 'cluster.sh: %s\n' "$*" >&2; }

install_packages() {
    local missing=() optional=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    # Not needed by the cluster, but by the tests of the scripts it runs.
    command -v shellcheck >/dev/null 2>&1 || optional+=(shellcheck)
    if ((${#missing[@]} + ${#optional[@]} == 0)); then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        if ((${#missing[@]})); then
            log "missing ${missing[*]} and not root: cannot install"
            return 1
        fi
        log "shellcheck is missing (not root: not installing it)"
        return 0
    fi
    log "installing ${missing[*]} ${optional[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" "${optional[@]}" >/dev/null
}

pid_alive() {
    local file=$1 pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

write_config() {
    local host
    host=$(hostname -s)
    local node_gres="" t
    for t in "${gpu_types[@]}"; do
        node_gres+="${node_gres:+,}gpu:$t:$gpus_per_type"
    done
    mkdir -p "$dir/etc" "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
    chmod 0755 "$dir" "$dir/etc" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
    chmod 0700 "$dir/munge"
    cat >"$conf.new" <<CONF
# Written by tests/slurm/cluster.sh; do not edit (rewritten by every \`up\`).
ClusterName=exo
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire also delays the restart of a requeued job (default 120 s).
AuthInfo=socket=$socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
MaxArraySize=100001
# Every array task counts towards MaxJobCount (until it ends and ages out, MinJobAge).
MaxJobCount=1000000
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
MessageTimeout=20
NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=1024 Boards=1 SocketsPerBoard=1 CoresPerSocket=1024 ThreadsPerCore=1 RealMemory=8388608 Gres=$node_gres State=UNKNOWN
PartitionName=ondemand Nodes=$node Default=YES MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
PartitionName=preempt Nodes=$node MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=5
PartitionName=cpu Nodes=$node MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
PartitionName=preempt-cpu Nodes=$node MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=5
CONF
    # Slurm's gres/gpu plugin drops GPUs without a File= ("Removing file-less
    # GPU" in slurmd.log) and then drains the node, so every declared GPU points
    # at a symlink to /dev/null in the private directory: no device node is
    # created, nothing binds to it (task/none), and jobs never open it; the
    # scheduler only counts them.
    local type i
    mkdir -p "$dir/gres"
    {
        echo "# Written by tests/slurm/cluster.sh: count-only GPUs (see the comment there)."
        echo "AutoDetect=off"
        for type in "${gpu_types[@]}"; do
            for ((i = 0; i < gpus_per_type; i++)); do
                ln -sfn /dev/null "$dir/gres/$type-$i"
            done
            echo "NodeName=$node Name=gpu Type=$type File=$dir/gres/$type-[0-$((gpus_per_type - 1))]"
        done
    } >"$dir/etc/gres.conf.new"
    : >"$dir/etc/plugstack.conf"
    mv -f "$conf.new" "$conf"
    mv -f "$dir/etc/gres.conf.new" "$dir/etc/gres.conf"
    if [[ ! -s $dir/munge/munge.key ]]; then
        dd if=/dev/urandom of="$dir/munge/munge.key.new" bs=1024 count=1 status=none
        chmod 0400 "$dir/munge/munge.key.new"
        mv -f "$dir/munge/munge.key.new" "$dir/munge/munge.key"
    fi
}

start_munge() {
    pid_alive "$dir/munge/munged.pid" && return 0
    rm -f "$socket" "$socket.lock"
    munged --force \
        --socket="$socket" \
        --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
}

responding() {
    SLURM_CONF=$conf timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'
}

node_state() {
    SLURM_CONF=$conf timeout 10 sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n1
}

up() {
    install_packages
    write_config
    start_munge
    export SLURM_CONF=$conf
    if ! pid_alive "$dir/run/slurmctld.pid"; then
        # -i: ignore state that does not match the config (a changed node definition).
        slurmctld -i
    elif ! responding; then
        log "slurmctld is running but does not answer; see $dir/log/slurmctld.log"
    else
        scontrol reconfigure >/dev/null 2>&1 || true
    fi
    if ! pid_alive "$dir/run/slurmd.pid"; then
        slurmd -N "$node"
    fi
    local state=""
    for _ in $(seq 1 60); do
        state=$(node_state || true)
        case $state in
            idle* | mixed* | allocated*) break ;;
            down* | drain*)
                scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
                ;;
        esac
        sleep 1
    done
    case $state in
        idle* | mixed* | allocated*) ;;
        *)
            log "node $node is '${state:-unknown}' after 60 s; logs in $dir/log"
            return 1
            ;;
    esac
    log "up: SLURM_CONF=$conf (node $node: $state)"
}

stop_pid() {
    local file=$1 pid
    pid_alive "$file" || return 0
    pid=$(<"$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
}

down() {
    stop_pid "$dir/run/slurmd.pid"
    stop_pid "$dir/run/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
    log "down"
}

status() {
    if [[ -f $conf ]] && responding; then
        SLURM_CONF=$conf sinfo
        return 0
    fi
    log "not running"
    return 1
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    env) printf 'export SLURM_CONF=%q\n' "$conf" ;;
    *)
        printf 'usage: %s up|down|status|env\n' "$0" >&2
        exit 2
        ;;
esac
