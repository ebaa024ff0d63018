# How mpi-sgd's ranks are launched, for the batch scripts in jobs/, the Makefile and bench/
# (sourced, not run; it changes to the repository root).
#
# The MPI family is the one the binary is built with (`mpi-sgd --version` names it; MPI=mpich
# picks the MPICH build in target/mpich/). Under Slurm: srun with a PMI plugin that family
# speaks (PMIx or PMI-2, whichever this Slurm offers; SRUN_MPI=... chooses), the family's own
# launcher inside the allocation otherwise. Outside Slurm: Open MPI's mpirun or MPICH's Hydra
# mpiexec, on HOSTFILE if given (either format: `host slots=N` or `host:N`, converted), with
# Open MPI's oversubscription and run-as-root permissions only where they are needed, saying
# so. BIND=core (or any of the launcher's binding policies) binds ranks to cores.

cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
MPI=${MPI:-openmpi}
case "$MPI" in
  openmpi) BIN=${BIN:-target/release/mpi-sgd} ;;
  mpich) BIN=${BIN:-target/mpich/release/mpi-sgd} ;;
  *) echo "launch: MPI=$MPI: use MPI=openmpi or MPI=mpich" >&2; exit 2 ;;
esac
[ -x "$BIN" ] || MPI=$MPI make -s build
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

# The first of the named commands that exists, else the last.
first_command() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null && { echo "$c"; return; }; done
  echo "${@: -1}"
}

# The family the binary is built with, its launcher and its C compiler wrapper.
if "$BIN" --version 2>/dev/null | grep -q "Open MPI"; then
  FAMILY=openmpi
  MPIRUN=$(first_command mpirun.openmpi mpirun)
  MPICC=$(first_command mpicc.openmpi mpicc)
else
  FAMILY=mpich
  MPIRUN=$(first_command mpiexec.mpich mpiexec.hydra mpiexec)
  MPICC=$(first_command mpicc.mpich mpicc)
fi

# hostfile_for FILE: FILE in this family's format (a converted copy when it is in the other).
hostfile_for() {
  local file=$1 converted
  converted=$(mktemp "${TMPDIR:-/tmp}/mpi-sgd-hosts.XXXXXX")
  if [ "$FAMILY" = openmpi ]; then
    # host:N -> host slots=N
    awk '{ sub(/#.*/, "") } NF == 0 { next }
         $1 ~ /:/ && NF == 1 { split($1, h, ":"); print h[1] " slots=" h[2]; next } { print }' \
      "$file" > "$converted"
  else
    # host slots=N -> host:N
    awk '{ sub(/#.*/, "") } NF == 0 { next }
         { n = ""; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) n = substr($i, 7);
           print (n == "" ? $1 : $1 ":" n) }' "$file" > "$converted"
  fi
  echo "$converted"
}

# The srun --mpi plugin for this family that this Slurm offers (SRUN_MPI wins).
srun_plugin() {
  [ -n "${SRUN_MPI:-}" ] && { echo "$SRUN_MPI"; return; }
  local offered preferred
  offered=$(srun --mpi=list 2>&1)
  if [ "$FAMILY" = openmpi ]; then preferred="pmix pmi2"; else preferred="pmi2 pmix"; fi
  for p in $preferred; do
    grep -qw "$p" <<< "$offered" && { echo "$p"; return; }
  done
}

# launch P COMMAND...: runs COMMAND on P ranks. Notes go to stderr.
launch() {
  local p=$1; shift
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    local plugin
    plugin=$(srun_plugin)
    if [ -n "$plugin" ]; then
      echo "launch: srun --mpi=$plugin --ntasks=$p" >&2
      srun --mpi="$plugin" --ntasks="$p" --exact "$@"
    else
      echo "launch: $MPIRUN -n $p (this Slurm offers neither PMIx nor PMI-2)" >&2
      "$MPIRUN" -n "$p" "$@"
    fi
    return
  fi
  local flags=() hosts="" status=0
  [ -n "${HOSTFILE:-}" ] && hosts=$(hostfile_for "$HOSTFILE")
  if [ "$FAMILY" = openmpi ]; then
    if [ -n "$hosts" ]; then
      flags+=(--hostfile "$hosts")
    elif [ "$p" -gt "$(cores)" ]; then
      echo "note: $p ranks on $(cores) cores: oversubscribed (--oversubscribe); timings show contention" >&2
      flags+=(--oversubscribe)
    fi
    [ -n "${BIND:-}" ] && flags+=(--bind-to "$BIND")
    if [ "$(id -u)" = 0 ]; then
      echo "note: running as root: OMPI_ALLOW_RUN_AS_ROOT=1" >&2
      export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
  else
    [ -n "$hosts" ] && flags+=(-f "$hosts")
    if [ -z "$hosts" ] && [ "$p" -gt "$(cores)" ]; then
      echo "note: $p ranks on $(cores) cores: oversubscribed (ranks yield while they wait); timings show contention" >&2
    fi
    [ -n "${BIND:-}" ] && flags+=(-bind-to "$BIND")
  fi
  "$MPIRUN" -n "$p" "${flags[@]}" "$@" || status=$?
  [ -n "$hosts" ] && rm -f "$hosts"
  return "$status"
}

# study KIND [train options]: every rank count of RANKS, REPEAT times (repeats outermost, so
# drift of the machine hits every rank count alike), one run file each in STUDY.
study() {
  local kind=$1; shift
  mkdir -p "$STUDY"
  # SIZES="5000 10000 ...": the study once per data-set size (--samples), each in a folder
  # samples-<N> of STUDY; the report draws one curve per size.
  local sizes=${SIZES:-} n out
  if [ -n "$sizes" ] && [[ " $ARGS " == *" --samples "* ]]; then
    echo "$kind: give the rows either in SIZES or in ARGS (--samples), not both" >&2; exit 2
  fi
  for r in $(seq 1 "$REPEAT"); do
    for n in ${sizes:-""}; do
      for p in $RANKS; do
        out=$STUDY
        if [ -n "$n" ]; then out=$STUDY/samples-$n; mkdir -p "$out"; fi
        echo "== $kind: $p ranks${n:+, $n rows}, repeat $r of $REPEAT"
        # shellcheck disable=SC2086
        launch "$p" "$BIN" train "$@" $ARGS ${n:+--samples $n} --out "$out/p$p-r$r.h5" --force
      done
    done
  done
  echo "study written to $STUDY; report: make analyze STUDY=$STUDY"
}
