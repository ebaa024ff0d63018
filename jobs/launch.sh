# How mpi-sgd's ranks are launched, for the batch scripts in jobs/, the Makefile and bench/
# (sourced, not run; it changes to the repository root).
#
# Under Slurm: srun --mpi=pmix when this Slurm has the PMIx plugin, mpirun otherwise (Open MPI
# reads the allocation). Outside Slurm: mpirun, on HOSTFILE if given, with Open MPI's
# oversubscription and run-as-root permissions only where they are needed, saying so.

cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
BIN=${BIN:-target/release/mpi-sgd}
[ -x "$BIN" ] || cargo build --release
REPEAT=${REPEAT:-3}
ARGS=${ARGS:-}
if [ -n "${SLURM_JOB_ID:-}" ]; then
  STUDY=${STUDY:-results/${SLURM_JOB_NAME}-${SLURM_JOB_ID}}
  MAX_RANKS=${SLURM_NTASKS:-1}
else
  STUDY=${STUDY:-results/$(basename "$0" .sbatch)-$(date +%Y%m%d-%H%M%S)}
  MAX_RANKS=${NP:-8}
fi

# Rank counts: RANKS if given, else the powers of two up to the allocation (and it).
if [ -z "${RANKS:-}" ]; then
  RANKS=""; p=1
  while [ "$p" -lt "$MAX_RANKS" ]; do RANKS="$RANKS $p"; p=$((p * 2)); done
  RANKS="$RANKS $MAX_RANKS"
fi

# Cores this process may use (nproc without OMP_NUM_THREADS, which nproc would report).
cores() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }

# launch P COMMAND...: runs COMMAND on P ranks. Notes go to stderr.
launch() {
  local p=$1; shift
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    if srun --mpi=list 2>&1 | grep -q pmix; then
      echo "launch: srun --mpi=pmix --ntasks=$p" >&2
      srun --mpi=pmix --ntasks="$p" --exact "$@"
    else
      echo "launch: mpirun -n $p (this Slurm has no PMIx plugin)" >&2
      mpirun -n "$p" "$@"
    fi
    return
  fi
  local flags=()
  if [ -n "${HOSTFILE:-}" ]; then
    flags+=(--hostfile "$HOSTFILE")
  elif mpirun --version 2>/dev/null | grep -q "Open MPI" && [ "$p" -gt "$(cores)" ]; then
    echo "note: $p ranks on $(cores) cores: oversubscribed (--oversubscribe); timings show contention" >&2
    flags+=(--oversubscribe)
  fi
  if [ "$(id -u)" = 0 ] && mpirun --version 2>/dev/null | grep -q "Open MPI"; then
    echo "note: running as root: OMPI_ALLOW_RUN_AS_ROOT=1" >&2
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  mpirun -n "$p" "${flags[@]}" "$@"
}

# study KIND [train options]: every rank count of RANKS, REPEAT times (repeats outermost, so
# drift of the machine hits every rank count alike), one run file each in STUDY.
study() {
  local kind=$1; shift
  mkdir -p "$STUDY"
  for r in $(seq 1 "$REPEAT"); do
    for p in $RANKS; do
      echo "== $kind: $p ranks, repeat $r of $REPEAT"
      # shellcheck disable=SC2086
      launch "$p" "$BIN" train "$@" $ARGS --out "$STUDY/p$p-r$r.h5" --force
    done
  done
  echo "study written to $STUDY; report: make analyze STUDY=$STUDY"
}
