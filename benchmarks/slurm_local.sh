#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, and a sweep submitted to it through dask-jobqueue.
#
# Installs Debian's slurm-wlm and munge (apt-get; needs root), writes a minimal slurm.conf for
# this host, starts munged, slurmctld and slurmd, then runs a small sweep of deterministic
# least-squares fits through helpers.sweep.execute(..., backend="dask",
# client=Client(SLURMCluster(...))) and checks that its rows equal a serial run's.  Prints PASS
# or FAIL and stops the daemons it started (also on error).
#
# Usage (from the repository root, as root):
#     bash benchmarks/slurm_local.sh                 # uses python3 on PATH, or $PYTHON
#     PYTHON=/path/to/venv/bin/python bash benchmarks/slurm_local.sh
# Not part of CI: it installs system packages and starts daemons.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/slurm_local.XXXXXX)
CONF_DIR=/etc/slurm
HOST=$(hostname -s)
STARTED_MUNGE=0

log() { printf '[slurm_local] %s\n' "$*"; }

cleanup() {
  local rc=$?
  log "stopping daemons"
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
  local pids=()
  for f in /run/slurm_local/slurmctld.pid /run/slurm_local/slurmd.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  if [ "$STARTED_MUNGE" = 1 ] && [ -f /run/munge/munged.pid ]; then
    pids+=("$(cat /run/munge/munged.pid)")
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do   # wait until they are gone
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  if [ "$rc" -ne 0 ]; then
    log "logs:"; tail -n 20 "$WORK"/*.log "$WORK"/dask-logs/* 2>/dev/null || true
    echo "FAIL (exit $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    slurm-wlm munge >/dev/null
fi
log "$(slurmctld -V)"

# --- munge (SLURM's authentication) ---------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  STARTED_MUNGE=1
fi
munge -n | unmunge >/dev/null
log "munge works"

# --- slurm.conf for this one host -------------------------------------------------------------
node_line=$(slurmd -C | head -n 1)   # NodeName=<host> CPUs=… RealMemory=…
mkdir -p /run/slurm_local /var/spool/slurm_local/ctld /var/spool/slurm_local/d "$CONF_DIR"
cat > "$CONF_DIR/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurm_local/ctld
SlurmdSpoolDir=/var/spool/slurm_local/d
SlurmctldPidFile=/run/slurm_local/slurmctld.pid
SlurmdPidFile=/run/slurm_local/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP
EOF
log "slurm.conf: $node_line"

slurmctld -f "$CONF_DIR/slurm.conf"
slurmd -f "$CONF_DIR/slurm.conf"
for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then break; fi
  sleep 1
done
sinfo
sinfo -h -o '%T' | grep -qE '^(idle|mixed|allocated)' || { log "node did not come up"; exit 1; }

# --- the sweep through dask-jobqueue ----------------------------------------------------------
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
cd "$WORK"
"$PYTHON" - "$WORK" <<'EOF'
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dask_jobqueue import SLURMCluster
from distributed import Client

from helpers.sweep import WORKER_ENV, Store, execute

work = sys.argv[1]


@dataclass(frozen=True)
class Job:
    model: str
    level: float
    size: int
    seed: int


def fit(job: Job) -> list[dict]:
    """A least-squares fit on data drawn from the job: deterministic rows."""
    import socket

    rng = np.random.default_rng([job.seed, job.size, int(job.level * 100)])
    x = rng.normal(size=(job.size, 4))
    y = x @ np.array([1.0, -1.0, 0.5, 0.0]) + job.level * rng.normal(size=job.size)
    coef, res, *_ = np.linalg.lstsq(x, y, rcond=None)
    return [
        {"signal": f"coef{i}", "mi": float(c), "n_train": job.size, "host": socket.gethostname()}
        for i, c in enumerate(coef)
    ]


jobs = [Job("ols", lv, n, s) for lv in (0.1, 1.0, 3.0) for n in (200, 2000) for s in (0, 1)]
serial = Store(f"{work}/serial")
execute(jobs, fit, serial, progress=False)

cluster = SLURMCluster(
    queue="debug", cores=1, processes=1, memory="1GB", walltime="00:10:00",
    interface="lo", scheduler_options={"interface": "lo", "dashboard_address": ":0"},
    log_directory=f"{work}/dask-logs", python=sys.executable,
    job_script_prologue=[f"cd {work}", *(f"export {k}={v}" for k, v in WORKER_ENV.items())],
)
print(cluster.job_script())
cluster.scale(jobs=2)
client = Client(cluster)
t0 = time.perf_counter()
client.wait_for_workers(1, timeout=180)
print(f"first SLURM worker up after {time.perf_counter() - t0:.1f} s; "
      f"workers: {list(client.scheduler_info()['workers'])}")
subprocess.run(["squeue"], check=False)  # the workers are SLURM jobs
store = Store(f"{work}/slurm")
report = execute(jobs, fit, store, backend="dask", client=client, progress=False)
print(report)
a, b = serial.frame(jobs), store.frame(jobs)
try:
    pd.testing.assert_frame_equal(a, b)
    ok = report.ran == len(jobs)
except AssertionError as err:
    print(err)
    ok = False
client.close()
cluster.close()
print(a.head(4).to_string())
print("PASS: the SLURM sweep's rows equal the serial run's" if ok else "FAIL: rows differ")
sys.exit(0 if ok else 1)
EOF
log "squeue after the sweep:"; squeue || true
