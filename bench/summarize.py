"""Summarises bench/build/runs.csv (written by bench/run.sh) as markdown: medians with min and
max over the interleaved rounds, ratios of medians, achieved memory bandwidth and GEMM rates,
and whether each goal of docs/benchmarks.md is met."""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.runs import read_run  # noqa: E402  (the one reader of run files)

ITEM = {"f64": 8, "f32": 4}
LOGISTIC = dict(samples=1_000_000, features=20, epochs=8)
MLP = dict(samples=200_000, widths=[20, 512, 10], epochs=4)


def mlp_flops_per_row(widths):
    """GEMM flops of one training row: forward Z = A W, backward dW = A^T D and, below the top
    layer, D W^T; 2 flops per multiply-add."""
    pairs = list(zip(widths[:-1], widths[1:]))
    forward = sum(2 * a * b for a, b in pairs)
    weight_grads = forward
    input_grads = sum(2 * a * b for a, b in pairs[1:])
    return forward + weight_grads + input_grads


def main(path):
    values, files, accuracies = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in csv.DictReader(open(path)):
        key = (row["workload"], row["program"], int(row["ranks"]), row["dtype"])
        if row["value"]:
            values[key].append(float(row["value"]))
        if row["accuracy"]:
            accuracies[key].append(float(row["accuracy"]))
        if row["file"]:
            files[key].append(row["file"])
    accuracy = lambda key: f"{statistics.median(accuracies[key]):.4f}" if accuracies[key] else ""
    med = lambda key: statistics.median(values[key])
    spread = lambda key: f"{med(key):.3f} ({min(values[key]):.3f}-{max(values[key]):.3f})"
    rounds = max(len(v) for v in values.values())
    workloads = {key[0] for key in values}
    out = []
    goal = lambda ok, text: out.append(f"- {'met' if ok else 'MISSED'}: {text}")

    out.append(f"Medians of {rounds} interleaved rounds (min-max in brackets).\n")
    read = {p: med(("stream", "read", p, "f64")) for p in (1, 2)}
    triad = {p: med(("stream", "triad", p, "f64")) for p in (1, 2)}
    peak = {d: med(("gemm", "peak", 1, d)) for d in ("f64", "f32")}
    out.append("| machine | 1 core | 2 cores |\n|---|---|---|")
    out.append(f"| STREAM read, GB/s | {read[1]:.2f} | {read[2]:.2f} |")
    out.append(f"| STREAM triad, GB/s | {triad[1]:.2f} | {triad[2]:.2f} |")
    out.append(f"| GEMM 2048^3 single thread, GFLOP/s | f64 {peak['f64']:.1f}, f32 {peak['f32']:.1f} | |\n")
    shapes = {"fwd1": "A0 W1 [8192x20][20x512]", "fwd2": "A1 W2 [8192x512][512x10]",
              "dW1": "A0^T D1 [20x8192][8192x512]", "dW2": "A1^T D2 [512x8192][8192x10]",
              "dA1": "D2 W2^T [8192x10][10x512]"}
    out.append("| MLP step GEMM (single thread) | f64 GFLOP/s | f32 GFLOP/s |\n|---|---|---|")
    for shape, text in shapes.items():
        r64, r32 = med(("gemm", shape, 1, "f64")), med(("gemm", shape, 1, "f32"))
        out.append(f"| {text} | {r64:.1f} ({r64 / peak['f64']:.0%} of peak) | {r32:.1f} ({r32 / peak['f32']:.0%}) |")
    out.append("")

    for dtype in ("f64", "f32"):
        out.append(f"### logistic, 1,000,000 x 20, 8 epochs, batch 8192, {dtype}\n")
        out.append("| program | ranks | wall s | X streamed GB/s | share of STREAM read | test acc |")
        out.append("|---|---|---|---|---|---|")
        x_bytes = LOGISTIC["samples"] * LOGISTIC["features"] * ITEM[dtype] * LOGISTIC["epochs"]
        for program, ranks in (("plain", 1), ("plain-mpi4py", 1), ("plain-mpi4py", 2), ("numpy", 1),
                               ("mpi4py", 1), ("mpi4py", 2), ("mpi-sgd", 1), ("mpi-sgd", 2)):
            key = ("logistic", program, ranks, dtype)
            bw = x_bytes / med(key) / 1e9
            acc = accuracy(key)
            out.append(f"| {program} | {ranks} | {spread(key)} | {bw:.2f} | {bw / read[ranks]:.0%} | {acc} |")
        t = lambda program, ranks: med(("logistic", program, ranks, dtype))
        out.append("")
        if dtype == "f64":
            bw1 = x_bytes / t("mpi-sgd", 1) / 1e9
            bw2 = x_bytes / t("mpi-sgd", 2) / 1e9
            goal(t("mpi-sgd", 1) <= 0.6 * t("plain", 1),
                 f"1 rank at most 0.6x the plain NumPy loop: {t('mpi-sgd', 1) / t('plain', 1):.2f}x")
            goal(bw1 >= 0.8 * read[1], f"1 rank at least 80% of one core's read bandwidth: {bw1 / read[1]:.0%}")
            goal(bw2 >= 0.8 * read[2], f"2 ranks at least 80% of two cores' read bandwidth: {bw2 / read[2]:.0%}")
            out.append(f"- against the plain mpi4py loop: {t('mpi-sgd', 1) / t('plain-mpi4py', 1):.2f}x at 1 rank, "
                       f"{t('mpi-sgd', 2) / t('plain-mpi4py', 2):.2f}x at 2 ranks; against the NumPy loop that "
                       f"also computes loss and accuracy: {t('mpi-sgd', 1) / t('numpy', 1):.2f}x")
            out.append(f"- 2-rank speedup {t('mpi-sgd', 1) / t('mpi-sgd', 2):.2f}x; a memory-bound cap would be "
                       f"read(2)/read(1) = {read[2] / read[1]:.2f}x\n")

        if "mlp" not in workloads:   # WORKLOADS=logistic
            continue
        out.append(f"### mlp --hidden 512, 200,000 x 20, 10 classes, batch 8192, 4 epochs, {dtype}\n")
        out.append("| program | ranks | wall s | GEMM GFLOP/s per rank in compute | of peak | test acc |")
        out.append("|---|---|---|---|---|---|")
        for program, ranks in (("numpy", 1), ("mpi4py", 1), ("mpi4py", 2), ("mpi-sgd", 1), ("mpi-sgd", 2)):
            key = ("mlp", program, ranks, dtype)
            rate, share = "", ""
            if program == "mpi-sgd":
                r = gemm_rate(files[key], ranks)
                rate, share = f"{r:.1f}", f"{r / peak[dtype]:.0%}"
            out.append(f"| {program} | {ranks} | {spread(key)} | {rate} | {share} | {accuracy(key)} |")
        m = lambda program, ranks: med(("mlp", program, ranks, dtype))
        out.append("")
        if dtype == "f64":
            out.append(f"- 2 ranks {m('mpi-sgd', 1) / m('mpi-sgd', 2):.2f}x faster than 1")
            for ranks in (1, 2):
                goal(m("mpi-sgd", ranks) <= 0.7 * m("mpi4py", ranks),
                     f"at most 0.7x mpi4py at {ranks} rank(s): {m('mpi-sgd', ranks) / m('mpi4py', ranks):.2f}x")
            r = gemm_rate(files[("mlp", "mpi-sgd", 1, dtype)], 1)
            goal(r >= 0.35 * peak[dtype], f"useful GFLOP/s at least 35% of DGEMM peak at 1 rank: {r / peak[dtype]:.0%}")
            out.append("")
    out.append("### f32 against f64 (mpi-sgd)\n")
    out.append("| workload | ranks | f64 wall s | f32 wall s | speed-up | test acc f64 / f32 |\n|---|---|---|---|---|---|")
    for workload in sorted(workloads - {"stream", "gemm"}):
        for ranks in (1, 2):
            k64, k32 = (workload, "mpi-sgd", ranks, "f64"), (workload, "mpi-sgd", ranks, "f32")
            out.append(f"| {workload} | {ranks} | {med(k64):.3f} | {med(k32):.3f} | {med(k64) / med(k32):.2f}x | "
                       f"{accuracy(k64)} / {accuracy(k32)} |")
    out.append("\n(f32 moves half the bytes and runs twice the lanes: the goal is close to 2x.)")
    print("\n".join(out))


def gemm_rate(paths, ranks):
    """GEMM GFLOP/s of one rank during the compute phase (median over runs and ranks)."""
    flops = MLP["samples"] * MLP["epochs"] * mlp_flops_per_row(MLP["widths"]) / ranks
    rates = []
    for p in paths:
        rates += list(flops / read_run(p).compute.sum(axis=0) / 1e9)
    return statistics.median(rates)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/build/runs.csv")
