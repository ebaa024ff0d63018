# Shared by the batch scripts in jobs/ (sourced, not run): where results go and how ranks are
# launched, under Slurm or not.
#
# Under Slurm: srun --mpi=pmix when this Slurm has the PMIx plugin, mpirun otherwise (Open MPI
# reads the allocation). Outside Slurm (`bash jobs/strong.sbatch`): mpirun, with Open MPI's
# root and oversubscription permissions only where needed.

cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
BIN=${BIN:-target/release/mpi-sgd}
[ -x "$BIN" ] || cargo build --release
REPEAT=${REPEAT:-3}
ARGS=${ARGS:-}
if [ -n "${SLURM_JOB_ID:-}" ]; then
  STUDY=${STUDY:-results/${SLURM_JOB_NAME}-${SLURM_JOB_ID}}
  MAX_RANKS=${SLURM_NTASKS:-1}
else
  STUDY=${STUDY:-results/$(basename "$0" .sbatch)-local-$(date +%Y%m%d-%H%M%S)}
  MAX_RANKS=${NP:-8}
fi
mkdir -p "$STUDY"

# Rank counts: RANKS if given, else the powers of two up to the allocation (and it).
if [ -z "${RANKS:-}" ]; then
  RANKS=""; p=1
  while [ "$p" -lt "$MAX_RANKS" ]; do RANKS="$RANKS $p"; p=$((p * 2)); done
  RANKS="$RANKS $MAX_RANKS"
fi

# launch P COMMAND...: runs COMMAND on P ranks.
launch() {
  local p=$1; shift
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    if srun --mpi=list 2>&1 | grep -q pmix; then
      echo "launch: srun --mpi=pmix --ntasks=$p"
      srun --mpi=pmix --ntasks="$p" --exact "$@"
    else
      echo "launch: mpirun -n $p (this Slurm has no PMIx plugin)"
      mpirun -n "$p" "$@"
    fi
  else
    local flags=()
    if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
      [ "$p" -gt "$(nproc)" ] && flags+=(--oversubscribe)
      [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    mpirun -n "$p" "${flags[@]}" "$@"
  fi
}

# study KIND [train options]: every rank count of RANKS, REPEAT times (repeats outermost).
study() {
  local kind=$1; shift
  for r in $(seq 1 "$REPEAT"); do
    for p in $RANKS; do
      echo "== $kind: $p ranks, repeat $r of $REPEAT"
      # shellcheck disable=SC2086
      launch "$p" "$BIN" train "$@" $ARGS --out "$STUDY/p$p-r$r.h5" --force
    done
  done
  echo "study written to $STUDY; report: make analyze STUDY=$STUDY"
}
