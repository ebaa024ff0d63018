#!/usr/bin/env bash
# A real Slurm test: starts a single-node Slurm on this machine (munge, slurmctld, slurmd from
# Debian's packages; SlurmdParameters=config_overrides lets the node offer more CPUs than it
# has), submits jobs/strong.sbatch with sbatch, waits for it, checks the run files, and stops
# the daemons. Needs root (the daemons) and `make deps` (the packages). MPI=mpich runs the
# strong job with the MPICH build, launched by srun with the PMI plugin MPICH speaks.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "slurm test: needs root to start munge and the Slurm daemons" >&2; exit 1; }

dir=$(mktemp -d /tmp/mpi-sgd-slurm.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || true
  sleep 1
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "slurm test FAILED: $*" >&2; echo "slurm: 0 passed, 1 failed"; exit 1; }

mkdir -p "$dir"/{spool,state,log} /run/munge
chown munge:munge /run/munge
cat > "$dir/slurm.conf" <<CONF
ClusterName=mpisgdtest
SlurmctldHost=localhost
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"

runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || true
runuser -u munge -- /usr/sbin/munged 2>"$dir/log/munged.err" || fail "munged did not start: $(cat "$dir/log/munged.err")"
/usr/sbin/slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
pids+=($!)

for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE "^idle" && break
  sleep 1
done
sinfo -h -o %T | grep -qE "^idle" || fail "the node did not come up: $(tail -5 "$dir"/log/*.log)"

study="$dir/study"
job=$(sbatch --parsable --ntasks=4 --output="$dir/job.out" \
  --export=ALL,RANKS="1 2 4",REPEAT=1,STUDY="$study",ARGS="--samples 20000 --epochs 1 --batch 1000" \
  jobs/strong.sbatch) || fail "sbatch refused the job"
for _ in $(seq 300); do
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$job" 2>/dev/null)" ] || fail "job $job still queued or running after 300 s"

for p in 1 2 4; do
  [ -s "$study/p$p-r1.h5" ] || fail "no run file for $p ranks; job output: $(tail -20 "$dir/job.out")"
  ranks=$(h5dump -a /config/ranks "$study/p$p-r1.h5" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
  [ "$ranks" = "$p" ] || fail "p$p-r1.h5 records $ranks ranks"
done
family=$(h5dump -a /mpi_family "$study/p4-r1.h5" | sed -n 's/.*(0): "\(.*\)".*/\1/p')
launcher=$(h5dump -a /launcher "$study/p4-r1.h5" | sed -n 's/.*(0): "\(.*\)".*/\1/p')
if [ "${MPI:-openmpi}" = mpich ]; then plugin=pmi2 want="MPICH"; else plugin=pmix want="Open MPI"; fi
grep -q "launch: srun --mpi=$plugin --ntasks=4" "$dir/job.out" || fail "the 4-rank run was not launched with srun --mpi=$plugin: $(cat "$dir/job.out")"
[ "$family" = "$want" ] && [ "$launcher" = "srun --mpi=$plugin" ] || fail "p4-r1.h5 records MPI '$family' launched by '$launcher'"
grep -q "ranks=4 " "$dir/job.out" || fail "no summary line of the 4-rank run: $(cat "$dir/job.out")"
echo "slurm test: job $job ran jobs/strong.sbatch ($want) on 1, 2, 4 ranks under srun --mpi=$plugin"
if [ "${MPI:-openmpi}" = mpich ]; then
  echo "slurm: 1 passed, 0 failed"
  exit 0
fi

# jobs/train.sbatch: SIGTERM to the batch script (what --signal=B:TERM@60 sends before the time
# limit) -> the ranks checkpoint and stop -> the job requeues itself -> it resumes and finishes.
# The run must outlast the first checkpoint (after 1 s) by far more than the signal takes to
# reach the ranks: 32000 steps of about 0.23 ms here, 7 s in all.
out="$dir/long.h5"
samples=40000 batch=500 epochs=400
steps_expected=$((samples / batch * epochs))
job=$(sbatch --parsable --ntasks=2 --output="$dir/train.out" \
  --export=ALL,OUT="$out",CHECKPOINT_SECONDS=1,ARGS="--model mlp --hidden 64 --samples $samples --batch $batch --epochs $epochs --stall-timeout 60" \
  jobs/train.sbatch) || fail "sbatch refused the train job"
for _ in $(seq 120); do [ -s "${out%.h5}.ckpt.h5" ] && break; sleep 0.5; done
[ -s "${out%.h5}.ckpt.h5" ] || fail "no checkpoint appeared: $(cat "$dir/train.out")"
scancel --signal=TERM --batch "$job" || fail "scancel --signal=TERM --batch refused"
for _ in $(seq 300); do
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$job" 2>/dev/null)" ] || fail "train job $job still queued or running after 300 s: $(cat "$dir/train.out")"
grep -q "interrupted by SIGTERM" "$dir/train.out" || fail "the ranks did not stop on SIGTERM: $(cat "$dir/train.out")"
grep -q "requeueing job $job" "$dir/train.out" || fail "the job did not requeue itself: $(cat "$dir/train.out")"
grep -q "continuing from" "$dir/train.out" || fail "the requeued job did not resume: $(cat "$dir/train.out")"
restarts=$(h5dump -d /restarts/step "$out" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
interrupted=$(h5dump -a /summary/interrupted "$out" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
steps=$(h5dump -a /summary/steps "$out" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
[ -n "$restarts" ] && [ "$interrupted" = 0 ] && [ "$steps" = "$steps_expected" ] \
  || fail "the resumed run file: restarts '$restarts', interrupted '$interrupted', steps '$steps' (want a restart, 0, $steps_expected)"
echo "slurm test: job $job stopped on SIGTERM at a checkpoint, requeued itself, resumed at step $restarts and finished"
echo "slurm: 2 passed, 0 failed"
