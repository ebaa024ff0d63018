"""Summarises bench/build/families/ (written by bench/families.sh) as markdown: Open MPI and
MPICH side by side.

Allreduce latency of one algorithm at one size in one round = median across ranks of each
rank's median over its timed calls (mpi-sgd bench-allreduce), or the mean over ranks of the
timed loop (the C loop over MPI_Allreduce); tables give the median over rounds. The strong
study gives, per rank count, the median over rounds of the run's wall time and of the mean
allreduce time per step (rank-median), with the host's oversubscription and the ranks' waiting
policy as the run file records them.
"""
import glob
import re
import statistics
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.runs import read_run, read_sweep  # noqa: E402  (the one reader of run files)
from summarize_allreduce import human  # noqa: E402  (bench/ is this script's folder)

FAMILIES = {"openmpi": "Open MPI", "mpich": "MPICH"}
SIZES = [8, 1024, 65536, 1 << 20, 16 << 20]


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def library(path):
    with h5py.File(path, "r") as f:
        first = text(f.attrs["mpi_library"]).splitlines()[0].split(",")[0]
        return " ".join(first.split())


def sweeps(folder, family):
    return sweeps_named(folder, f"sweep-{family}")


def sweeps_named(folder, prefix):
    latency, sizes, ranks = {}, None, None
    for path in sorted(glob.glob(f"{folder}/{prefix}-*.h5")):
        sweep = read_sweep(path)
        sizes, ranks = list(sweep.sizes), sweep.ranks
        for name, median in sweep.latency.items():
            latency.setdefault(name, []).append(median)
    return sizes, ranks, {k: np.median(np.array(v), axis=0) for k, v in latency.items()}


def osu(folder, family):
    rounds = []
    for path in sorted(glob.glob(f"{folder}/osu-{family}-*.txt")):
        rows = [line.split() for line in open(path) if not line.startswith("#")]
        rounds.append({int(r[0]): float(r[2]) * 1e-6 for r in rows if len(r) >= 3})
    return {s: statistics.median(r[s] for r in rounds) for s in rounds[0]} if rounds else {}


def strong(folder, family, kind="strong"):
    by_ranks = {}
    for path in glob.glob(f"{folder}/{kind}-{family}-p*-r*.h5"):
        p = int(re.search(r"-p(\d+)-r", path).group(1))
        run = read_run(path)
        with h5py.File(path, "r") as f:
            over = int(f.attrs["oversubscribed"])
            waiting = text(f.attrs["waiting"])
        allreduce = float(np.median(np.mean(run.allreduce, axis=0)))
        by_ranks.setdefault(p, []).append((run.wall_s, allreduce, over, waiting))
    return {
        p: (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            runs[0][2],
            runs[0][3],
            len(runs),
        )
        for p, runs in sorted(by_ranks.items())
    }


def main(folder):
    print("# Open MPI and MPICH side by side\n")
    libraries = {}
    for family, name in FAMILIES.items():
        files = sorted(glob.glob(f"{folder}/sweep-{family}-*.h5"))
        libraries[family] = library(files[0]) if files else name
    print("Libraries: " + "; ".join(libraries.values()) + ".\n")

    data = {f: sweeps(folder, f) for f in FAMILIES}
    sizes, ranks, _ = data["openmpi"]
    print(f"## Allreduce latency, {ranks} ranks, f64 (us; median of rounds)\n")
    header = "| algorithm | " + " | ".join(
        f"{human(s)} {FAMILIES[f]}" for s in SIZES for f in FAMILIES
    )
    print(header + " |")
    print("|---" * (1 + len(SIZES) * len(FAMILIES)) + "|")
    osus = {f: osu(folder, f) for f in FAMILIES}
    row = ["C loop over MPI_Allreduce"]
    for s in SIZES:
        for f in FAMILIES:
            value = osus[f].get(s)
            row.append(f"{value * 1e6:.2f}" if value else "-")
    print("| " + " | ".join(row) + " |")
    for name in data["openmpi"][2]:
        row = [name]
        for s in SIZES:
            for f in FAMILIES:
                f_sizes, _, latency = data[f]
                if name in latency and s in f_sizes:
                    row.append(f"{latency[name][f_sizes.index(s)] * 1e6:.2f}")
                else:
                    row.append("-")
        print("| " + " | ".join(row) + " |")

    print("\n## Strong study: MLP 20-512-512-10 (274k parameters), 40000 rows, batch 1024, 1 epoch\n")
    print("| ranks | " + " | ".join(
        f"wall s {FAMILIES[f]} | allreduce ms/step {FAMILIES[f]}" for f in FAMILIES
    ) + " | oversubscribed | waiting |")
    print("|---" * (3 + 2 * len(FAMILIES)) + "|")
    studies = {f: strong(folder, f) for f in FAMILIES}
    for p in sorted(set().union(*studies.values())):
        row = [str(p)]
        over, waiting = "-", "-"
        for f in FAMILIES:
            if p in studies[f]:
                wall, allreduce, o, w, _ = studies[f][p]
                row += [f"{wall:.3f}", f"{allreduce * 1e3:.3f}"]
                over, waiting = ("yes" if o else "no"), w
            else:
                row += ["-", "-"]
        print("| " + " | ".join(row + [over, waiting]) + " |")

    spins = {f: strong(folder, f, "spin") for f in FAMILIES}
    if any(spins.values()):
        print("\n## More ranks than cores: ranks that spin against ranks that yield\n")
        print("The same strong runs with `--wait spin` (the library's blocking calls) beside the")
        print("default on an oversubscribed host (`yield`: polled with MPI_Test, sched_yield between")
        print("polls), and a sweep of 200 calls at cores + 1 ranks (rank-median latency, us).\n")
        print("| run | " + " | ".join(f"{FAMILIES[f]} spin | {FAMILIES[f]} yield" for f in FAMILIES) + " |")
        print("|---" * (1 + 2 * len(FAMILIES)) + "|")
        for p in sorted(set().union(*spins.values())):
            row = [f"train, {p} ranks: wall s"]
            for f in FAMILIES:
                spin = spins[f].get(p)
                yielding = studies[f].get(p)
                row += [f"{spin[0]:.3f}" if spin else "-", f"{yielding[0]:.3f}" if yielding else "-"]
            print("| " + " | ".join(row) + " |")
        over = {(f, w): sweeps_named(folder, f"over-{f}-{w}") for f in FAMILIES for w in ("spin", "yield")}
        any_sweep = next((v for v in over.values() if v[0]), None)
        if any_sweep:
            sizes, ranks, latency = any_sweep
            for name in latency:
                for s in sizes:
                    row = [f"`{name}` {human(s)}, {ranks} ranks"]
                    for f in FAMILIES:
                        for w in ("spin", "yield"):
                            f_sizes, _, lat = over[(f, w)]
                            value = lat.get(name)
                            row.append(f"{value[f_sizes.index(s)] * 1e6:.1f}" if value is not None else "-")
                    print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
