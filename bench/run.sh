#!/usr/bin/env bash
# `make bench`: mpi-sgd against NumPy and mpi4py+NumPy peers on the same workloads (the bare
# logistic loop anyone writes first, and the loop that also computes every batch's loss and
# accuracy, as mpi-sgd records), with the machine's memory bandwidth (STREAM-style) and
# single-thread GEMM rates (square peak and the MLP step's narrow shapes), all in one run.
# Rounds are interleaved (every configuration once per round, REPEAT rounds) so drift of a
# shared machine hits every configuration alike; bench/summarize.py reports medians.
#
# Environment: REPEAT (rounds, default 5), WORKLOADS (default "logistic mlp"; the MLP's block
# products are measured with it). Output: bench/build/runs.csv, bench/build/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
WORKLOADS=${WORKLOADS:-logistic mlp}
build=bench/build
mkdir -p "$build/runs"

source jobs/launch.sh   # launch P COMMAND...
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1   # single-threaded BLAS everywhere

if [ ! -x "$build/venv/bin/python" ]; then
  python3 -m venv "$build/venv"
  "$build/venv/bin/pip" install -q -r bench/requirements.txt
fi
py="$build/venv/bin/python"
"$MPICC" -O3 -o "$build/stream" bench/stream.c
cc -O2 -o "$build/gemm" bench/gemm.c $(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread) -lopenblas

logistic=(--samples 1000000 --features 20 --epochs 8 --batch 8192 --lr 0.1)
mlp=(--model mlp --hidden 512 --samples 200000 --features 20 --classes 10 --batch 8192 --epochs 4 --lr 0.1)

csv="$build/runs.csv"
echo "round,workload,program,ranks,dtype,value,accuracy,file" > "$csv"
# "key=value ..." line -> "wall_s,test_accuracy"
measures() { sed -n "s/.*wall_s=\([^ ]*\).*test_accuracy=\([^ ]*\).*/\1,\2/p"; }

for round in $(seq 1 "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  for dtype in f64 f32; do
    for workload in $WORKLOADS; do
      declare -n args=$workload
      for ranks in 1 2; do
        file="$build/runs/$workload-$dtype-$ranks-$round.h5"
        m=$(launch "$ranks" "$BIN" train "${args[@]}" \
              --dtype "$dtype" --out "$file" --force 2>/dev/null | measures)
        echo "$round,$workload,mpi-sgd,$ranks,$dtype,$m,$file" >> "$csv"
        m=$(launch "$ranks" "$py" bench/numpy_sgd.py --mpi "${args[@]}" \
              --dtype "$dtype" | measures)
        echo "$round,$workload,mpi4py,$ranks,$dtype,$m," >> "$csv"
      done
      m=$("$py" bench/numpy_sgd.py "${args[@]}" --dtype "$dtype" | measures)
      echo "$round,$workload,numpy,1,$dtype,$m," >> "$csv"
      if [ "$workload" = logistic ]; then   # the bare loop anyone writes first
        m=$("$py" bench/numpy_sgd.py --plain "${args[@]}" --dtype "$dtype" | measures)
        echo "$round,$workload,plain,1,$dtype,$m," >> "$csv"
        for ranks in 1 2; do
          m=$(launch "$ranks" "$py" bench/numpy_sgd.py --plain --mpi "${args[@]}" --dtype "$dtype" | measures)
          echo "$round,$workload,plain-mpi4py,$ranks,$dtype,$m," >> "$csv"
        done
      fi
    done
  done
  for ranks in 1 2; do
    launch "$ranks" "$build/stream" | tr ' ' '\n' \
      | sed -n "s/^\([a-z]*\)_GBps=\(.*\)/$round,stream,\1,$ranks,f64,\2,,/p" >> "$csv"
  done
  "$build/gemm" | sed -n "s/gemm shape=\([a-zA-Z0-9]*\) dtype=\([a-z0-9]*\) gflops=\(.*\)/$round,gemm,\1,1,\2,\3,,/p" >> "$csv"
done
"$py" bench/summarize.py "$csv" | tee "$build/report.md"
if [[ " $WORKLOADS " == *" mlp "* ]]; then
  # OpenBLAS against the pure-Rust gemm crate at the MLP block's products (the MLP uses the faster).
  echo -e "\n### MLP block products: OpenBLAS and the gemm crate\n" | tee -a "$build/report.md"
  cargo bench --quiet --bench gemm_shapes 2>/dev/null | tee -a "$build/report.md"
fi
