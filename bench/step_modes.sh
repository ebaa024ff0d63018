#!/usr/bin/env bash
# The step's communication modes, part of `make bench` (2 ranks, interleaved rounds):
#  - --overlap: an MLP whose allreduce matters (--hidden 1024,1024, 256 features: 1.3 M
#    parameters, 10.5 MB of f64 gradient a step), with and without --overlap, for mpi
#    (MPI_Iallreduce) and ring (communication thread): step, compute, allreduce/exposed and
#    overlapped medians; saved = allreduce without - exposed with.
#  - --reproducible: logistic regression and the MLP, f64 and f32, with and without: step time
#    and bytes sent per step.
# REPEAT rounds (default 3); medians over rounds of each run's median step, in
# bench/build/step-modes-report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
build=bench/build/step-modes
mkdir -p "$build"
source jobs/launch.sh
export OPENBLAS_NUM_THREADS=1

big=(--model mlp --hidden 1024,1024 --features 256 --samples 16384 --batch 512 --epochs 1 --test-samples 100)
mlp=(--model mlp --hidden 256,128 --features 64 --samples 65536 --batch 1024 --epochs 1 --test-samples 100)
logistic=(--model logistic --samples 1000000 --batch 8192 --epochs 1 --test-samples 100)

results="$build/results.csv"
echo "round,experiment,variant,file" > "$results"
for round in $(seq 1 "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  for algorithm in mpi ring; do
    for mode in plain overlap; do
      opts=(); [ "$mode" = overlap ] && opts=(--overlap)
      out="$build/overlap-$algorithm-$mode-$round.h5"
      launch 2 "$BIN" train "${big[@]}" --allreduce "$algorithm" "${opts[@]}" --out "$out" --force >/dev/null 2>"$build/log"
      echo "$round,overlap,$algorithm-$mode,$out" >> "$results"
    done
  done
  for workload in logistic mlp; do
    for dtype in f64 f32; do
      for mode in default reproducible; do
        opts=(); [ "$mode" = reproducible ] && opts=(--reproducible)
        declare -n args=$workload
        out="$build/repro-$workload-$dtype-$mode-$round.h5"
        launch 2 "$BIN" train "${args[@]}" --dtype "$dtype" "${opts[@]}" --out "$out" --force >/dev/null 2>"$build/log"
        echo "$round,reproducible,$workload-$dtype-$mode,$out" >> "$results"
      done
    done
  done
done
.venv/bin/python - "$results" > "$build/../step-modes-report.md" <<'PY'
import csv, sys, statistics
from collections import defaultdict
import h5py, numpy as np

def medians(path):
    with h5py.File(path) as f:
        t = f["timings"]
        m = {k: float(np.median(t[k][()].max(axis=1))) for k in ("step", "compute", "allreduce", "update", "overlapped")}
        m["bytes"] = float(np.median(f["comm/bytes_sent"][()][:, 0]))
        return m

groups = defaultdict(list)
for row in csv.DictReader(open(sys.argv[1])):
    groups[(row["experiment"], row["variant"])].append(medians(row["file"]))
med = {key: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for key, runs in groups.items()}
n = len(next(iter(groups.values())))
print(f"Medians over {n} interleaved rounds of each run's median step (max over ranks), 2 ranks.\n")
print("| overlap | step ms | compute ms | allreduce/exposed ms | in flight ms | saved ms (of allreduce) |")
print("|---|---|---|---|---|---|")
for algorithm in ("mpi", "ring"):
    plain, over = med[("overlap", f"{algorithm}-plain")], med[("overlap", f"{algorithm}-overlap")]
    saved = plain["allreduce"] - over["allreduce"]
    for name, m in (("without", plain), ("with", over)):
        extra = f"{saved * 1e3:.2f} ({saved / plain['allreduce']:.0%})" if name == "with" else ""
        print(f"| {algorithm} {name} | {m['step'] * 1e3:.2f} | {m['compute'] * 1e3:.2f} | {m['allreduce'] * 1e3:.2f} | "
              f"{m['overlapped'] * 1e3:.2f} | {extra} |")
print("\n| reproducible | step ms default | step ms reproducible | cost | bytes/step default | bytes/step reproducible |")
print("|---|---|---|---|---|---|")
for workload in ("logistic", "mlp"):
    for dtype in ("f64", "f32"):
        d, r = med[("reproducible", f"{workload}-{dtype}-default")], med[("reproducible", f"{workload}-{dtype}-reproducible")]
        print(f"| {workload} {dtype} | {d['step'] * 1e3:.3f} | {r['step'] * 1e3:.3f} | {r['step'] / d['step'] - 1:+.0%} | "
              f"{d['bytes']:.0f} | {r['bytes']:.0f} |")
PY
cat "$build/../step-modes-report.md"
