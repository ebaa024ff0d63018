#!/usr/bin/env bash
# `make emulated-study` (root): the allreduce algorithms and a strong-scaling study on an
# emulated cluster (bench/cluster.sh), and the same sweep on this machine's shared memory, so
# the analysis can fit one alpha-beta-gamma model per algorithm and machine and check its
# predictions against what it did not see.
#
#   STUDY     the study's folder (default results/emulated-<time>); refused if it exists
#   HOSTS     host counts of the sweeps and the strong study (default "2 3 4"; the strong study
#             adds 1 host, on the cluster too)
#   PER_HOST  ranks per host of the sweeps (default "1 2")
#   RATE      each link's rate (default 1gbit)         REPEAT   runs of each (default 3)
#   SIZES     the sweep's message sizes in bytes (default 1 KiB to 4 MiB, by 4)
#   WORKLOAD  the strong study's `train` options (default: an MLP of 263,000 parameters, 16 steps)
#
# Layout: cluster.txt and links.txt (the links' counters at the end), network/sweep-h<H>-r<R>-<repeat>.h5, shared/sweep-<repeat>.h5 (on as many ranks as
# cores), strong/<algorithm>/run-h<H>-<repeat>.h5; then `python -m analysis emulated STUDY`.
# The cluster is torn down at the end, on failure and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "emulated-study: network namespaces need root (sudo make emulated-study)" >&2; exit 2; }
BIN=${BIN:-target/release/mpi-sgd}
STUDY=${STUDY:-results/emulated-$(date +%Y%m%d-%H%M%S)}
HOSTS=${HOSTS:-2 3 4}
PER_HOST=${PER_HOST:-1 2}
RATE=${RATE:-1gbit}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-1024,4096,16384,65536,262144,1048576,4194304}
WORKLOAD=${WORKLOAD:---model mlp --features 256 --hidden 1024 --classes 2 --samples 16384 --batch 2048 --epochs 2}
NAME=mpisgdemu
[ ! -e "$STUDY" ] || { echo "emulated-study: $STUDY exists; give a new STUDY folder (nothing of it is overwritten)" >&2; exit 2; }
max_hosts=$(tr ' ' '\n' <<< "$HOSTS" | sort -n | tail -1)
mkdir -p "$STUDY/network" "$STUDY/shared" "$STUDY/strong"

trap 'bash bench/cluster.sh down --name $NAME' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash bench/cluster.sh up --name "$NAME" --hosts "$max_hosts" --rate "$RATE" | tee "$STUDY/cluster.txt"
cluster_run() { bash bench/cluster.sh run --name "$NAME" "$@"; }
sweep=(bench-allreduce --sizes "$SIZES" --iterations 20)

for r in $(seq 1 "$REPEAT"); do
  for per_host in $PER_HOST; do
    for h in $HOSTS; do
      echo "emulated-study: sweep on $h hosts x $per_host, repeat $r"
      cluster_run --hosts "$h" --ranks-per-host "$per_host" -- "$BIN" "${sweep[@]}" \
        --out "$STUDY/network/sweep-h$h-r$per_host-$r.h5" > /dev/null
    done
  done
  echo "emulated-study: sweep on shared memory, repeat $r"
  (source jobs/launch.sh && launch "$(cores)" "$BIN" "${sweep[@]}" --out "$STUDY/shared/sweep-$r.h5" > /dev/null)
  for alg in mpi ring tree rd rabenseifner star hier; do
    mkdir -p "$STUDY/strong/$alg"
    for h in 1 $HOSTS; do
      echo "emulated-study: strong study, $alg on $h hosts, repeat $r"
      # shellcheck disable=SC2086
      cluster_run --hosts "$h" -- "$BIN" train $WORKLOAD --allreduce "$alg" \
        --out "$STUDY/strong/$alg/run-h$h-$r.h5" > /dev/null 2>&1
    done
  done
done
# Packets dropped at the links' queues: where the model misses, they are often why (a loss at
# the end of a message costs TCP a retransmission timeout, 200 ms at least).
bash bench/cluster.sh stats --name "$NAME" > "$STUDY/links.txt"
echo "emulated-study: written to $STUDY; report: .venv/bin/python -m analysis emulated $STUDY"
