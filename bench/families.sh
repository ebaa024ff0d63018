#!/usr/bin/env bash
# `make bench MPI=mpich`: Open MPI and MPICH side by side on this machine, in interleaved
# rounds (each family once per round, REPEAT rounds): each library's MPI_Allreduce from a
# minimal C loop (bench/osu_allreduce.c, built with that family's mpicc), mpi-sgd's sweep of
# every algorithm built against that family, and a strong study of a training run whose
# allreduce matters (an MLP of 274k parameters: 2.2 MB per step) on STRONG ranks; where
# those are more than the cores, also with ranks spinning in their waits (--wait spin) beside
# the default (they yield), and a short sweep at cores + 1 ranks with each waiting policy.
# bench/summarize_families.py writes the report.
#
# Environment: REPEAT (rounds, default 3), RANKS (ranks of the sweeps, default 2), STRONG
# (rank counts of the study, default "1 2 3 4": past the cores, ranks are oversubscribed).
# Output: bench/build/families/ (HDF5 files, osu-*.txt, report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
RANKS=${RANKS:-2}
STRONG=${STRONG:-1 2 3 4}
out=bench/build/families
rm -rf "$out"
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
workload=(--model mlp --hidden 512,512 --samples 40000 --features 20 --classes 10 --batch 1024 --epochs 1 --lr 0.1)

for family in openmpi mpich; do
  make -s build MPI=$family
  (export MPI=$family; unset BIN; source jobs/launch.sh; "$MPICC" -O2 -o "bench/build/osu_allreduce-$family" bench/osu_allreduce.c)
done

for round in $(seq 1 "$REPEAT"); do
  for family in openmpi mpich; do
    echo "round $round/$REPEAT: $family" >&2
    (
      export MPI=$family
      unset BIN
      source jobs/launch.sh
      launch "$RANKS" "bench/build/osu_allreduce-$family" > "$out/osu-$family-$round.txt" 2>/dev/null
      launch "$RANKS" "$BIN" bench-allreduce --out "$out/sweep-$family-$round.h5" --force >/dev/null 2>&1
      for p in $STRONG; do
        launch "$p" "$BIN" train "${workload[@]}" --out "$out/strong-$family-p$p-r$round.h5" --force >/dev/null 2>&1
        if [ "$p" -gt "$(cores)" ]; then
          launch "$p" "$BIN" train "${workload[@]}" --wait spin --out "$out/spin-$family-p$p-r$round.h5" --force >/dev/null 2>&1
        fi
      done
      for wait in spin yield; do
        launch $(($(cores) + 1)) "$BIN" bench-allreduce --sizes 8,65536 --algorithms mpi,ring --iterations 200 \
          --wait "$wait" --out "$out/over-$family-$wait-$round.h5" --force >/dev/null 2>&1
      done
    )
  done
done
.venv/bin/python bench/summarize_families.py "$out" | tee "$out/report.md"
