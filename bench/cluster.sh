#!/usr/bin/env bash
# An emulated cluster on one machine (root): H hosts as Linux network namespaces, each with its
# own address, joined by veth links to a bridge that lives in a namespace of its own; every
# link is rate-limited in both directions with tc's token bucket (tbf). Open MPI runs across
# the hosts over TCP: mpirun starts in the first host, an rsh agent starts the other hosts'
# daemons with `ip netns exec`, and every socket (MPI's and the launcher's) lives inside the
# namespaces. Ranks on one host share memory (Open MPI's vader), as on a real node; each host
# has its own host name (a UTS namespace), which is how Open MPI tells hosts apart.
#
#   bash bench/cluster.sh up   [--name N] [--hosts H] [--rate RATE] [--delay TIME]
#   bash bench/cluster.sh run  [--name N] [--hosts H] [--ranks-per-host R] -- PROGRAM [ARGS...]
#   bash bench/cluster.sh down [--name N]
#   bash bench/cluster.sh stats [--name N]     bytes, packets and drops of every link end
#
# N: the cluster's name (default mpisgd; namespaces N-h0.. N-h(H-1) and N-sw); H: hosts
# (default 4); RATE: each link's rate in tc's units, 100mbit to 10gbit (default 1gbit);
# TIME: a fixed one-way delay per link, added with netem where the kernel has it (refused
# with a message where it does not); R: ranks per host (default 1). `run --hosts H` runs on
# the first H hosts of the cluster (default all). `run` passes the
# environment's RUST_LOG on; Open MPI's run-as-root permission is given to that job only.
# Hosts share the machine's cores: host i runs on its own cores when there are at least H,
# otherwise on core i mod cores (the run file then says the machine is oversubscribed).
set -euo pipefail

NAME=mpisgd
HOSTS=
DEFAULT_HOSTS=4
RATE=1gbit
DELAY=
PER_HOST=1
SUBNET=10.77.0
# Large frames (veth allows up to 65535 bytes) keep the packets the kernel forwards, on cores
# the ranks also run on, few: a 16 MiB allreduce on 4 hosts took 17,900 packets instead of
# 530,000 at 1500 bytes.
MTU=65000

die() { echo "cluster.sh: $*" >&2; exit 2; }

state_dir() { echo "/run/mpi-sgd-cluster/$NAME"; }

namespaces() { ip netns list | awk '{print $1}' | grep -E "^$NAME-(h[0-9]+|sw)$" || true; }

# Bits per second of a tc rate (100mbit, 1gbit, 2.5gbit, ...).
rate_bps() {
  local value unit
  [[ $1 =~ ^([0-9]+(\.[0-9]+)?)(kbit|mbit|gbit)$ ]] || die "--rate $1: give a rate such as 100mbit, 1gbit or 10gbit"
  value=${BASH_REMATCH[1]}
  unit=${BASH_REMATCH[3]}
  awk -v v="$value" -v u="$unit" 'BEGIN { m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : 1e9; printf "%.0f", v * m }'
}

# The CPUs host i runs on: its own share of the cores when there are enough, else one.
host_cpus() {
  local i=$1 cores per
  cores=$(nproc)
  if (( cores >= HOSTS )); then
    per=$(( cores / HOSTS ))
    echo "$(( i * per ))-$(( i * per + per - 1 ))"
  else
    echo "$(( i % cores ))"
  fi
}

# tbf on one end of a link: RATE, a bucket of 1 ms at line rate (at least 64 KiB, one
# jumbo packet), and a shallow queue of 2 ms, as a switch port has: with a deep one TCP fills
# it, and MPI's handshakes wait behind the data (Open MPI's allreduce fell from 98% to 50%
# of a 1 Gbit/s link with 50 ms); netem under it for a delay.
shape() {
  local ns=$1 dev=$2 bps burst
  bps=$(rate_bps "$RATE")
  burst=$(( bps / 8 / 1000 ))
  (( burst < 65536 )) && burst=65536
  ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: tbf rate "$RATE" burst "$burst" latency 2ms
  if [ -n "$DELAY" ]; then
    ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: netem delay "$DELAY" 2>/dev/null ||
      die "--delay $DELAY: this kernel has no netem (sch_netem); run without --delay (links then add no latency of their own)"
  fi
}

up() {
  HOSTS=${HOSTS:-$DEFAULT_HOSTS}
  [ "$(id -u)" = 0 ] || die "network namespaces need root: sudo bash bench/cluster.sh up"
  [[ $HOSTS =~ ^[0-9]+$ ]] && (( HOSTS >= 1 && HOSTS <= 64 )) || die "--hosts $HOSTS: give 1 to 64"
  local bps
  bps=$(rate_bps "$RATE")
  (( bps >= 100000000 && bps <= 10000000000 )) || die "--rate $RATE: give 100mbit to 10gbit"
  [ -z "$(namespaces)" ] || die "a cluster named $NAME is already up (namespaces: $(namespaces | tr '\n' ' ')); bash bench/cluster.sh down --name $NAME, or choose another --name"
  local dir sw i ns
  dir=$(state_dir)
  # A step that fails half-way leaves nothing behind.
  trap 'echo "cluster.sh: up failed; removing what it made" >&2; down' ERR
  mkdir -p "$dir"
  sw="$NAME-sw"
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  : > "$dir/hostfile"
  {
    echo '#!/bin/sh'
    echo '# rsh agent of the emulated cluster: runs the command in the host namespace of its address.'
    echo 'host=$1; shift'
    echo 'case $host in'
  } > "$dir/agent"
  for i in $(seq 0 $(( HOSTS - 1 ))); do
    ns="$NAME-h$i"
    ip netns add "$ns"
    ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "p$i" mtu "$MTU" master br0
    ip -n "$sw" link set "p$i" up
    ip -n "$ns" link set eth0 mtu "$MTU"
    ip -n "$ns" addr add "$SUBNET.$(( i + 1 ))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    shape "$ns" eth0
    shape "$sw" "p$i"
    echo "$SUBNET.$(( i + 1 )) slots=$PER_HOST_SLOTS" >> "$dir/hostfile"
    echo "  $SUBNET.$(( i + 1 ))) ns=$ns cpus=$(host_cpus "$i") ;;" >> "$dir/agent"
  done
  {
    echo '  *) echo "cluster agent: unknown host $host" >&2; exit 1 ;;'
    echo 'esac'
    echo 'exec ip netns exec "$ns" unshare --uts /bin/sh -c '"'"'hostname "$0"; exec taskset -c "$1" /bin/sh -c "$2"'"'"' "$ns" "$cpus" "$*"'
  } >> "$dir/agent"
  chmod +x "$dir/agent"
  echo "$HOSTS" > "$dir/hosts"
  echo "$RATE" > "$dir/rate"
  local latency="no added latency"
  if [ -n "$DELAY" ]; then latency="$DELAY added each way (netem)"
  elif ! modinfo sch_netem >/dev/null 2>&1; then latency="no added latency (this kernel has no netem)"; fi
  echo "cluster $NAME: $HOSTS hosts $SUBNET.1-$HOSTS on a bridge, links $RATE each way, $latency; $(nproc) cores shared"
}

down() {
  local ns
  for ns in $(namespaces); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -rf "$(state_dir)"
}

stats() {
  local ns dev
  for ns in $(namespaces | sort); do
    dev=eth0
    [[ $ns == *-sw ]] && dev=$(ip -n "$ns" -o link show type veth | awk -F'[:@ ]+' '{print $2}' | tr '\n' ' ')
    for d in $dev; do
      printf '%s %s: ' "$ns" "$d"
      ip netns exec "$ns" tc -s qdisc show dev "$d" | awk '/Sent/ { print $2 " bytes, " $4 " packets, dropped " $7 }' | tr -d ','
    done
  done
}

run() {
  local dir hosts hostfile
  dir=$(state_dir)
  [ -f "$dir/hosts" ] || die "no cluster named $NAME is up: bash bench/cluster.sh up --name $NAME"
  hosts=${HOSTS:-$(cat "$dir/hosts")}
  [[ $hosts =~ ^[0-9]+$ ]] && (( hosts >= 1 && hosts <= $(cat "$dir/hosts") )) ||
    die "--hosts $hosts: the cluster $NAME has $(cat "$dir/hosts") hosts"
  hostfile="$dir/hostfile-$hosts"
  head -n "$hosts" "$dir/hostfile" > "$hostfile"
  [[ $PER_HOST =~ ^[12]$ ]] || die "--ranks-per-host $PER_HOST: give 1 or 2"
  (( $# > 0 )) || die "run: give the program after --"
  mpirun --version 2>/dev/null | grep -q "Open MPI" ||
    die "the emulated cluster launches with Open MPI's mpirun (its rsh agent starts the hosts' daemons); install Open MPI, and run a binary built for it"
  local root_env=() shared=()
  [ "$(id -u)" = 0 ] && root_env=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
  # Each host's daemon sees all its cores, so Open MPI does not know that the hosts' ranks
  # share them; a rank spinning in MPI_Wait then holds a core a sender needs (Open MPI's ring
  # reached 35% of the link rate on 4 hosts and 2 cores spinning, 85% yielding).
  (( hosts * PER_HOST > $(nproc) )) && shared=(--mca mpi_yield_when_idle 1)
  ip netns exec "$NAME-h0" unshare --uts env "${root_env[@]}" HOST="$NAME-h0" \
    taskset -c "$(HOSTS=$(cat "$dir/hosts") host_cpus 0)" \
    sh -c 'hostname "$HOST" && unset HOST && exec "$@"' sh mpirun --hostfile "$hostfile" --map-by "ppr:$PER_HOST:node" --bind-to none \
    --mca plm_rsh_agent "$dir/agent" --mca btl tcp,vader,self "${shared[@]}" \
    --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24" \
    ${RUST_LOG:+-x RUST_LOG} -n $(( hosts * PER_HOST )) "$@"
}

command=${1:-}
shift || true
while (( $# > 0 )); do
  case $1 in
    --name) NAME=$2; shift 2 ;;
    --hosts) HOSTS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --delay) DELAY=$2; shift 2 ;;
    --ranks-per-host) PER_HOST=$2; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1 (see the top of bench/cluster.sh)" ;;
  esac
done
[[ $NAME =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--name $NAME: give 1 to 10 lower-case letters and digits, starting with a letter"
# Slots: the most ranks per host a run may place (run's --map-by chooses how many it does).
PER_HOST_SLOTS=2
case $command in
  up) up ;;
  down) down ;;
  run) run "$@" ;;
  stats) stats ;;
  *) die "give up, run, stats or down (see the top of bench/cluster.sh)" ;;
esac
