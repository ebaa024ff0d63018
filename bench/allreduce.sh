#!/usr/bin/env bash
# The allreduce half of `make bench`: every algorithm against MPI_Allreduce and a minimal C
# loop over MPI_Allreduce (OSU style), in interleaved rounds on RANKS ranks; then local SGD's
# accuracy against bytes sent. bench/summarize_allreduce.py writes the report.
#
# Environment: REPEAT (rounds, default 3), RANKS (default 2).
# Output: bench/build/allreduce/ (HDF5 sweeps, osu-*.txt, local-sgd.csv, report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
RANKS=${RANKS:-2}
out=bench/build/allreduce
mkdir -p "$out"

source jobs/launch.sh   # launch P COMMAND...
export OPENBLAS_NUM_THREADS=1
"$MPICC" -O2 -o bench/build/osu_allreduce bench/osu_allreduce.c

for round in $(seq 1 "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  launch "$RANKS" bench/build/osu_allreduce > "$out/osu-$round.txt"
  launch "$RANKS" "$BIN" bench-allreduce \
    --out "$out/sweep-$round.h5" --force > "$out/sweep-$round.txt" 2>/dev/null
done

# Local SGD: accuracy against bytes sent, on the default workload and a smaller MLP.
declare -A workloads=(
  [logistic]="--model logistic"
  [mlp]="--model mlp --samples 200000 --epochs 2 --batch 1024"
)
echo "workload,average_every,test_accuracy,wall_s,file" > "$out/local-sgd.csv"
for workload in logistic mlp; do
  for every in grad 1 8 64 0; do
    file="$out/local-$workload-$every.h5"
    opts=(${workloads[$workload]} --allreduce ring --out "$file" --force)
    [ "$every" != grad ] && opts+=(--average-every "$every")
    line=$(launch "$RANKS" "$BIN" train "${opts[@]}" 2>/dev/null)
    acc=$(sed -n 's/.*test_accuracy=\([^ ]*\).*/\1/p' <<< "$line")
    wall=$(sed -n 's/.*wall_s=\([^ ]*\).*/\1/p' <<< "$line")
    echo "$workload,$every,$acc,$wall,$file" >> "$out/local-sgd.csv"
  done
done
"bench/build/venv/bin/python" bench/summarize_allreduce.py "$out" | tee "$out/report.md"
