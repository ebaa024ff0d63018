"""Summarises bench/build/allreduce/ (written by bench/allreduce.sh) as markdown.

Latency of one algorithm at one size in one round = median across ranks of each rank's median
over its timed calls; the tables give the median over rounds. busbw = bytes / latency x
2(P-1)/P (nccl-tests). The alpha-beta-gamma model (Hockney; costs of Thakur, Rabenseifner and
Gropp 2005, n in bytes) is fitted to all our algorithms at once by least squares on relative
error, then used to predict each algorithm.
"""
import csv
import glob
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.commmodel import ALGORITHMS as OURS, fit, predict  # noqa: E402  (the one cost model)
from analysis.runs import read_run, read_sweep  # noqa: E402  (the one reader of run files)


def load(folder):
    sweeps = sorted(glob.glob(f"{folder}/sweep-*.h5"))
    sizes, ranks, latency = None, None, {}
    for path in sweeps:
        sweep = read_sweep(path)
        sizes, ranks = sweep.sizes, sweep.ranks
        for name, median in sweep.latency.items():
            latency.setdefault(name, []).append(median)
    latency = {k: np.median(np.array(v), axis=0) for k, v in latency.items()}
    osu = []
    for path in sorted(glob.glob(f"{folder}/osu-*.txt")):
        rows = [l.split() for l in open(path) if not l.startswith("#")]
        osu.append({int(r[0]): float(r[2]) * 1e-6 for r in rows})
    osu = {s: statistics.median(o[s] for o in osu) for s in osu[0]} if osu else {}
    return sizes, ranks, latency, osu, len(sweeps)


def human(b):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= scale:
            return f"{b // scale} {unit}"
    return f"{b} B"


def main(folder):
    sizes, p, lat, osu, rounds = load(folder)
    busbw = lambda name, i: sizes[i] / lat[name][i] * 2 * (p - 1) / p / 1e9
    names = [n for n in ["mpi"] + OURS if n in lat]
    out = [f"{p} ranks, float64, medians of {rounds} interleaved rounds.\n"]
    out.append("| size | " + " | ".join(f"{n} us" for n in names) + " | fastest | ring / mpi busbw |")
    out.append("|---" * (len(names) + 3) + "|")
    for i, s in enumerate(sizes):
        cells = " | ".join(f"{lat[n][i] * 1e6:.2f}" for n in names)
        fastest = min(names, key=lambda n: lat[n][i])
        out.append(f"| {human(int(s))} | {cells} | {fastest} | {busbw('ring', i) / busbw('mpi', i):.2f} |")

    big = [i for i, s in enumerate(sizes) if s >= 1 << 20]
    small = [i for i, s in enumerate(sizes) if s <= 1 << 10]
    ring_ratio = min(busbw("ring", i) / busbw("mpi", i) for i in big)
    best_small = min(
        max(lat[a][i] / lat["mpi"][i] for i in small) for a in ("rd", "tree")
    )
    rd_small = max(lat["rd"][i] / lat["mpi"][i] for i in small)
    tree_small = max(lat["tree"][i] / lat["mpi"][i] for i in small)
    out.append("\n## Goals\n")
    verdict = lambda ok: "met" if ok else "MISSED"
    out.append(f"- {verdict(ring_ratio >= 0.9)}: ring busbw at least 0.9x mpi from 1 MiB: worst ratio {ring_ratio:.2f}")
    out.append(f"- {verdict(best_small <= 1.2)}: rd or tree within 1.2x of mpi latency up to 1 KiB: "
               f"worst ratio rd {rd_small:.2f}, tree {tree_small:.2f}")
    if osu:
        diffs = [(s, lat["mpi"][i] / osu[int(s)]) for i, s in enumerate(sizes) if s >= 1 << 10 and int(s) in osu]
        worst = max(diffs, key=lambda d: abs(d[1] - 1))
        out.append(f"- {verdict(abs(worst[1] - 1) <= 0.1)}: the harness's mpi latency within 10% of the C OSU-style "
                   f"loop from 1 KiB: worst ratio {worst[1]:.3f} at {human(int(worst[0]))}")
        out.append("\n| size | mpi-sgd mpi us | C loop us | ratio |\n|---|---|---|---|")
        for s, r in diffs:
            out.append(f"| {human(int(s))} | {lat['mpi'][list(sizes).index(s)] * 1e6:.2f} | {osu[int(s)] * 1e6:.2f} | {r:.3f} |")

    # Crossovers: sizes where the fastest of our algorithms changes.
    out.append("\n## Crossovers (fastest of ours, measured)\n")
    previous = None
    for i, s in enumerate(sizes):
        fastest = min(OURS, key=lambda n: lat[n][i])
        if fastest != previous:
            out.append(f"- from {human(int(s))}: {fastest}")
            previous = fastest

    # Alpha-beta-gamma fit over all our algorithms and sizes, weighted to relative error.
    coef = fit([(name, float(s), p, lat[name][i]) for name in OURS for i, s in enumerate(sizes)])
    alpha, beta, gamma = coef
    out.append("\n## Alpha-beta-gamma model\n")
    out.append(f"Fitted: alpha = {alpha * 1e6:.3f} us, beta = {beta * 1e9:.3f} ns/byte "
               f"({1 / beta / 1e9 if beta > 0 else float('inf'):.2f} GB/s), gamma = {gamma * 1e9:.3f} ns/byte.\n")
    out.append("| algorithm | median abs error | worst, <= 64 KiB | worst, >= 1 MiB |\n|---|---|---|---|")
    for name in OURS:
        pred = np.array([predict(coef, name, float(s), p) for s in sizes])
        err = np.abs(pred / lat[name] - 1)
        lo = max(err[i] for i, s in enumerate(sizes) if s <= 64 << 10)
        hi = max(err[i] for i in big)
        out.append(f"| {name} | {np.median(err):.0%} | {lo:.0%} | {hi:.0%} |")

    local = list(csv.DictReader(open(f"{folder}/local-sgd.csv")))
    if local:
        out.append("\n## Local SGD: accuracy against bytes sent (ring allreduce)\n")
        out.append("| workload | averaging | test accuracy | wall s | bytes sent per rank |\n|---|---|---|---|---|")
        for row in local:
            sent = read_run(row["file"]).bytes_sent.sum(axis=0).mean()
            label = {"grad": "gradients, every step", "0": "parameters, once at the end"}.get(
                row["average_every"], f"parameters, every {row['average_every']} steps")
            out.append(f"| {row['workload']} | {label} | {float(row['test_accuracy']):.4f} | "
                       f"{float(row['wall_s']):.3f} | {sent:,.0f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/build/allreduce")
