#!/usr/bin/env bash
# The emulated cluster (bench/cluster.sh), as root: its namespaces come up with their
# addresses, a 4-host job trains and writes its run file, our allreduces (hier among them)
# equal MPI_Allreduce across hosts, a large allreduce moves data at the configured link rate
# (within 20%), and teardown leaves no namespace, link or state behind, also when a job fails.
# As non-root it says that it did not run and exits 0; `make test` prints the same.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/emulated.sh: NOT run: network namespaces need root (sudo bash tests/emulated.sh)"
  exit 0
fi
BIN=${BIN:-target/release/mpi-sgd}
NAME=mpisgdtest
RATE=500mbit
RATE_MBPS=62.5  # MB/s of 500 Mbit/s
work=$(mktemp -d)
cleanup() { bash bench/cluster.sh down --name "$NAME" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "tests/emulated.sh: FAILED: $*" >&2; exit 1; }
cluster() { bash bench/cluster.sh "$1" --name "$NAME" "${@:2}"; }

cluster down  # what a killed earlier run of this test left behind (its own name only)
links_before=$(ip -o link | wc -l)
cluster up --hosts 4 --rate "$RATE" > "$work/up.txt"
[ "$(ip netns list | grep -c "^$NAME-")" = 5 ] || fail "expected 4 host namespaces and a switch: $(ip netns list | tr '\n' ' ')"
for i in 0 1 2 3; do
  ip -n "$NAME-h$i" -4 addr show eth0 | grep -q "10.77.0.$(( i + 1 ))/24" || fail "host $i has no address 10.77.0.$(( i + 1 ))"
done
reach=$(ip netns exec "$NAME-h0" bash -c "exec 3<>/dev/tcp/10.77.0.4/9" 2>&1 || true)
[[ $reach == *refused* ]] ||
  fail "host 0 does not reach host 3 (expected a refused connection, i.e. a route)"
again=$(cluster up --hosts 2 2>&1 || true)
[[ $again == *"already up"* ]] || fail "a second cluster of the same name was not refused"

echo "tests/emulated.sh: a 4-host training job with --allreduce hier"
cluster run -- "$BIN" train --model mlp --hidden 32 --samples 4000 --batch 256 --features 20 --epochs 2 \
  --allreduce hier --out "$work/run.h5" > "$work/train.txt" 2>&1 || { cat "$work/train.txt"; fail "training on 4 hosts"; }
[ -s "$work/run.h5" ] || fail "no run file"
h5dump -a /hosts "$work/run.h5" | grep -q "(0): 4" || fail "the run file does not say 4 hosts"

echo "tests/emulated.sh: every algorithm against MPI_Allreduce on 4 hosts of 2 ranks"
cluster run --ranks-per-host 2 -- "$BIN" bench-allreduce --sizes 8,1000,100000 --iterations 2 \
  --out "$work/check.h5" > "$work/check.txt" 2>&1 || { cat "$work/check.txt"; fail "bench-allreduce on 4 x 2 ranks"; }
checked=$(grep -cE " ok$" "$work/check.txt" || true)
[ "$checked" -ge 21 ] || { cat "$work/check.txt"; fail "expected 7 algorithms x 3 sizes checked ok, got $checked"; }

echo "tests/emulated.sh: a large allreduce at the link rate ($RATE)"
cluster run -- "$BIN" bench-allreduce --algorithms ring --sizes 8388608 --iterations 4 \
  --out "$work/bw.h5" > "$work/bw.txt" 2>&1 || { cat "$work/bw.txt"; fail "bandwidth run"; }
busbw=$(awk '$2 == "ring" { print $8 }' "$work/bw.txt")
awk -v b="$busbw" -v r="$RATE_MBPS" 'BEGIN { e = b * 1000 / r; exit !(e > 0.8 && e < 1.2) }' ||
  fail "ring's bus bandwidth $busbw GB/s is not within 20% of the link's $RATE_MBPS MB/s"
echo "tests/emulated.sh: ring moved $busbw GB/s per link direction (link $RATE_MBPS MB/s)"

echo "tests/emulated.sh: a failing job, then teardown"
if cluster run -- "$BIN" train --samples 0 --out "$work/bad.h5" > /dev/null 2>&1; then fail "a bad job succeeded"; fi
[ ! -e "$work/bad.h5" ] || fail "a failed job left a run file"
cluster down
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "namespaces left: $(ip netns list | tr '\n' ' ')"
[ ! -e "/run/mpi-sgd-cluster/$NAME" ] || fail "state left in /run/mpi-sgd-cluster/$NAME"
[ "$(ip -o link | wc -l)" = "$links_before" ] || fail "links left behind: $(ip -o link)"
echo "tests/emulated.sh: passed"
