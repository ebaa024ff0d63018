#!/usr/bin/env bash
# Data input benchmark, part of `make bench`:
#  - `mpi-sgd convert` throughput (MB/s of CSV) on a generated CSV of 1,000,000 x 100 (+ label),
#    over 1 GB, compressed (gzip 4, the default) and uncompressed, with and without --shuffle;
#  - per-rank read time (the run file's /timings/data) and peak memory (GNU time's max RSS,
#    per rank) of `train --data` on the converted file, 1 and 2 ranks.
# Rounds interleaved, REPEAT of them (default 3); medians in bench/build/data-report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
build=bench/build/data
mkdir -p "$build"
source jobs/launch.sh
export OPENBLAS_NUM_THREADS=1

csv="$build/big.csv"
if [ ! -s "$csv" ]; then
  echo "generating $csv" >&2
  .venv/bin/python - "$csv" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
with open(sys.argv[1], "w") as out:
    for start in range(0, 1_000_000, 50_000):
        x = rng.standard_normal((50_000, 100))
        y = (x[:, :10].sum(axis=1) > 0).astype(int)
        np.savetxt(out, np.column_stack([x, y]), fmt=["%.7f"] * 100 + ["%d"], delimiter=",")
PY
fi
echo "csv: $(du -m "$csv" | cut -f1) MiB" >&2

results="$build/results.csv"
echo "round,measure,variant,ranks,rank,value" > "$results"
for round in $(seq 1 "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  for variant in gzip4 plain gzip4-shuffle; do
    opts=(); case $variant in
      plain) opts=(--compression 0) ;;
      gzip4-shuffle) opts=(--shuffle) ;;
    esac
    line=$("$BIN" convert "$csv" "$build/$variant.h5" --force "${opts[@]}")
    mbs=$(sed -n 's/.*mb_per_s=\([^ ]*\).*/\1/p' <<<"$line")
    echo "$round,convert_mb_per_s,$variant,1,0,$mbs" >> "$results"
  done
  for variant in gzip4 plain; do
    for ranks in 1 2; do
      run="$build/run-$variant-$ranks.h5"
      # GNU time per rank, each writing its own file (the rank from the launcher's environment)
      launch "$ranks" bash -c '/usr/bin/time -f "maxrss_kib %M" -o "$0-${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}" "$@"' \
        "$build/rss" "$BIN" train --data "$build/$variant.h5" --epochs 1 --batch 8192 --out "$run" --force >/dev/null 2>"$build/log"
      .venv/bin/python - "$run" "$round" "$variant" "$ranks" >> "$results" <<'PY'
import sys, h5py
run, round_, variant, ranks = sys.argv[1:]
with h5py.File(run) as f:
    for rank, seconds in enumerate(f["timings/data"][...]):
        print(f"{round_},read_s,{variant},{ranks},{rank},{seconds}")
PY
      for rank in $(seq 0 $((ranks - 1))); do
        kib=$(awk '/maxrss_kib/ {print $2}' "$build/rss-$rank")
        echo "$round,max_rss_mib,$variant,$ranks,$rank,$((kib / 1024))" >> "$results"
      done
    done
  done
done
.venv/bin/python - "$results" > bench/build/data-report.md <<'PY'
import csv, sys, statistics
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
groups = defaultdict(list)
for r in rows:
    groups[(r["measure"], r["variant"], int(r["ranks"]), int(r["rank"]))].append(float(r["value"]))
print("| measure | variant | ranks | rank | median | min | max | n |\n|---|---|---|---|---|---|---|---|")
for key in sorted(groups):
    v = groups[key]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} | {len(v)} |")
PY
cat bench/build/data-report.md
