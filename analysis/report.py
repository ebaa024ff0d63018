"""A study folder -> tables (markdown and CSV), plots (PNG and SVG) and report.md, written into
the folder (or --out). Every number in the report is computed from the run files here."""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import commmodel, laws, phases  # noqa: E402

DEFINITIONS = """\
Definitions: T(p) is the training loop's wall time on p ranks (`/summary/wall_s`: from the
barrier before the first step to the end of the last epoch, max over ranks), the median over
repeats with min-max beside it. The baseline T(1) is mpi-sgd on one rank. Speedup
S(p) = T(1)/T(p); efficiency E(p) = S(p)/p; Karp-Flatt serial fraction
e(p) = (1/S - 1/p)/(1 - 1/p). Amdahl: T(p) = T1 (f + (1-f)/p) fitted by least squares over every
run, 95% interval by bootstrap over repeats. Weak scaling (fixed rows per rank): efficiency
T(1)/T(p), scaled speedup p T(1)/T(p), Gustafson S(p) = p - f_s (p-1). Phases are mean seconds
per step over steps and ranks; wait = max over ranks of compute - own compute (the part of the
allreduce spent waiting for late ranks), transfer = the rest of the allreduce. Imbalance =
max/mean of per-rank compute time."""


def save(fig, out, name):
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return f"![{name}]({name}.png)"


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def scaling_section(study, out, lines):
    groups = study.by_ranks()
    p = np.array(list(groups))
    times = {k: np.array([r.wall_s for r in v]) for k, v in groups.items()}
    med = np.array([np.median(times[k]) for k in p])
    t1 = med[0]
    all_p = np.concatenate([[k] * len(times[k]) for k in p])
    all_t = np.concatenate([times[k] for k in p])
    weak = study.kind == "weak"
    rows = []
    if weak:
        lines.append("| p | runs | T(p) s median (min-max) | s per step | weak efficiency | scaled speedup |")
        lines.append("|---|---|---|---|---|---|")
        for k, m in zip(p, med):
            steps = groups[k][0].steps
            eff = t1 / m
            lines.append(f"| {k} | {len(times[k])} | {m:.4f} ({times[k].min():.4f}-{times[k].max():.4f}) | "
                         f"{m / steps:.6f} | {eff:.3f} | {k * eff:.3f} |")
            rows.append([k, len(times[k]), m, times[k].min(), times[k].max(), m / steps, eff, k * eff])
        write_csv(out / "scaling.csv", ["ranks", "runs", "t_median_s", "t_min_s", "t_max_s", "s_per_step",
                                         "weak_efficiency", "scaled_speedup"], rows)
        fs = laws.fit_gustafson_runs(all_p, all_t)
        lo, hi = laws.bootstrap(times, laws.fit_gustafson_runs)
        lines.append(f"\nGustafson serial fraction f_s = {fs:.4f} (95% interval {lo:.4f} to {hi:.4f}).\n")
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(p, p, "k--", label="ideal (p)")
        ax.plot(p, p - fs * (p - 1), "C1-", label=f"Gustafson, f_s = {fs:.3f}")
        for k in p:
            ax.plot([k] * len(times[k]), k * t1 / times[k], "C0.", alpha=0.5)
        ax.plot(p, p * t1 / med, "C0o", label="measured (median)")
        ax.set(xlabel="ranks p", ylabel="scaled speedup p T(1)/T(p)", xscale="log", yscale="log")
        ax.legend()
        lines.append(save(fig, out, "scaled_speedup"))
        return
    s = laws.speedup(t1, med)
    kf = laws.karp_flatt(s, p)
    lines.append("| p | runs | T(p) s median (min-max) | speedup | efficiency | Karp-Flatt e(p) |")
    lines.append("|---|---|---|---|---|---|")
    for k, m, sk, ek in zip(p, med, s, kf):
        kf_text = "" if np.isnan(ek) else f"{ek:.4f}"
        lines.append(f"| {k} | {len(times[k])} | {m:.4f} ({times[k].min():.4f}-{times[k].max():.4f}) | "
                     f"{sk:.3f} | {sk / k:.3f} | {kf_text} |")
        rows.append([k, len(times[k]), m, times[k].min(), times[k].max(), sk, sk / k, ek])
    write_csv(out / "scaling.csv", ["ranks", "runs", "t_median_s", "t_min_s", "t_max_s", "speedup",
                                     "efficiency", "karp_flatt"], rows)
    f, t1_fit = laws.fit_amdahl(all_p, all_t)
    lo, hi = laws.bootstrap(times, lambda pp, tt: laws.fit_amdahl(pp, tt)[0])
    lines.append(f"\nAmdahl fit: serial fraction f = {f:.4f} (95% interval {lo:.4f} to {hi:.4f}), "
                 f"T1 = {t1_fit:.4f} s; the largest speedup it allows is 1/f = {1 / f if f > 0 else float('inf'):.1f}.\n")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    grid = np.geomspace(1, p.max(), 50)
    ax.plot(grid, grid, "k--", label="ideal")
    ax.plot(grid, 1 / (f + (1 - f) / grid), "C1-", label=f"Amdahl, f = {f:.3f}")
    for k in p:
        ax.plot([k] * len(times[k]), t1 / times[k], "C0.", alpha=0.5)
    ax.plot(p, s, "C0o", label="measured (median)")
    ax.set(xlabel="ranks p", ylabel="speedup T(1)/T(p)", xscale="log", yscale="log")
    ax.legend()
    lines.append(save(fig, out, "speedup"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(p, s / p, "C0o-")
    ax.axhline(1, color="k", ls="--")
    ax.set(xlabel="ranks p", ylabel="efficiency S(p)/p", xscale="log", ylim=(0, 1.1))
    lines.append(save(fig, out, "efficiency"))
    prediction_section(study, out, lines, f)


def phases_section(study, out, lines):
    groups = study.by_ranks()
    lines.append("\n## Where the time goes (ms per step, median over repeats)\n")
    lines.append("| p | compute | wait | transfer | update | imbalance (max/mean compute) |")
    lines.append("|---|---|---|---|---|---|")
    rows, stacks = [], []
    for k, runs in groups.items():
        b = [phases.breakdown(r) for r in runs]
        m = {name: float(np.median([getattr(x, name) for x in b])) for name in
             ("compute", "wait", "transfer", "update", "imbalance", "exposed", "overlapped",
              "in_flight_share")}
        lines.append(f"| {k} | {m['compute'] * 1e3:.3f} | {m['wait'] * 1e3:.3f} | {m['transfer'] * 1e3:.3f} | "
                     f"{m['update'] * 1e3:.3f} | {m['imbalance']:.3f} |")
        rows.append([k, m["compute"], m["wait"], m["transfer"], m["update"], m["imbalance"],
                     m["exposed"], m["overlapped"], m["in_flight_share"]])
        stacks.append(m)
    write_csv(out / "phases.csv", ["ranks", "compute_s", "wait_s", "transfer_s", "update_s", "imbalance",
                                   "exposed_s", "overlapped_s", "in_flight_share"], rows)
    if any(r.overlapped.any() for runs in groups.values() for r in runs):
        overlap_table(groups, lines)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.arange(len(stacks))
    bottom = np.zeros(len(stacks))
    for name in ("compute", "wait", "transfer", "update"):
        values = np.array([m[name] * 1e3 for m in stacks])
        ax.bar(x, values, bottom=bottom, label=name)
        bottom += values
    ax.set_xticks(x, [str(k) for k in groups])
    ax.set(xlabel="ranks p", ylabel="ms per step")
    ax.legend()
    lines.append("")
    lines.append(save(fig, out, "phases"))


def overlap_table(groups, lines):
    """Compute, exposed communication and update per rank count, and the share of the
    communication that was in flight behind the backward pass (--overlap)."""
    lines.append("\n### Communication overlapped with the backward pass (ms per step, median over repeats)\n")
    lines.append("compute includes the time the gradient's buckets were in flight (`overlapped`); "
                 "`exposed` is the wait after the backward pass. In flight is not saved: compare "
                 "the allreduce of a run without --overlap.\n")
    lines.append("| p | compute | exposed communication | update | in flight behind compute | share in flight |")
    lines.append("|---|---|---|---|---|---|")
    for k, runs in groups.items():
        b = [phases.breakdown(r) for r in runs]
        m = {name: float(np.median([getattr(x, name) for x in b])) for name in
             ("compute", "exposed", "update", "overlapped", "in_flight_share")}
        lines.append(f"| {k} | {m['compute'] * 1e3:.3f} | {m['exposed'] * 1e3:.3f} | {m['update'] * 1e3:.3f} | "
                     f"{m['overlapped'] * 1e3:.3f} | {m['in_flight_share']:.0%} |")


def accuracy_section(study, out, lines):
    groups = study.by_ranks()
    lines.append("\n## Accuracy and final loss against p (they should not drift)\n")
    lines.append("| p | test accuracy (median) | final training loss (median) |\n|---|---|---|")
    acc, loss = [], []
    for k, runs in groups.items():
        acc.append(np.median([r.test_accuracy for r in runs]))
        loss.append(np.median([r.loss for r in runs]))
        lines.append(f"| {k} | {acc[-1]:.4f} | {loss[-1]:.6f} |")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
    a1.plot(list(groups), acc, "C0o")
    a1.set(xlabel="ranks p", ylabel="test accuracy", xscale="log")
    a2.plot(list(groups), loss, "C1o")
    a2.set(xlabel="ranks p", ylabel="final loss", xscale="log")
    lines.append("")
    lines.append(save(fig, out, "accuracy"))


def prediction_section(study, out, lines, amdahl_f):
    """Strong scaling to 1024 ranks: fitted compute (c0 + c1/p per step), measured update, and
    each algorithm's alpha-beta-gamma allreduce cost."""
    groups = study.by_ranks()
    p = np.array(list(groups))
    compute = np.array([np.median([r.compute.max(axis=1).mean() for r in runs]) for runs in groups.values()])
    (c0, c1), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p, dtype=float), 1 / p]), compute, rcond=None)
    update = np.median([r.update.mean() for runs in groups.values() for r in runs])
    first = groups[1][0]
    steps, n = first.steps, first.grad_bytes
    other = np.median([r.wall_s - r.step.max(axis=1).sum() for r in groups[1]])
    if study.sweeps:
        points = [(alg, float(s), sw.ranks, float(sw.latency[alg][i]))
                  for sw in study.sweeps for alg in commmodel.ALGORITHMS if alg in sw.latency
                  for i, s in enumerate(sw.sizes)]
        source = f"fitted to the {len(study.sweeps)} allreduce sweep(s) in the study"
    else:
        points = []
        for k, runs in groups.items():
            if k > 1:
                transfer = np.median([phases.breakdown(r).transfer for r in runs])
                points.append(("ring", float(n), k, float(max(transfer, 1e-9))))
        source = "fitted to the runs' own allreduce transfer times with the ring formula (no sweep in the study)"
    coef = commmodel.fit(points) if len(points) >= 1 else np.zeros(3)
    lines.append("\n## Prediction to 1024 ranks\n")
    lines.append(f"Compute per step fitted as {c0 * 1e3:.4f} + {c1 * 1e3:.4f}/p ms; update {update * 1e3:.4f} ms; "
                 f"gradient {n} bytes; alpha = {coef[0] * 1e6:.3f} us, beta = {coef[1] * 1e9:.4f} ns/B, "
                 f"gamma = {coef[2] * 1e9:.4f} ns/B, {source}. Upper bound: ideal speedup p.\n")
    grid = np.unique(np.geomspace(1, 1024, 41).astype(int))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grid, grid, "k--", label="ideal")
    rows = []
    for alg in commmodel.ALGORITHMS:
        t = np.array([steps * (c0 + c1 / q + update + commmodel.predict(coef, alg, n, q)) + other for q in grid])
        ax.plot(grid, t[0] / t, label=f"{alg} (model)")
        best = grid[np.argmax(t[0] / t)]
        rows.append([alg] + list(t))
        lines.append(f"- {alg}: predicted speedup {t[0] / t[-1]:.1f} at 1024 ranks, best {np.max(t[0] / t):.1f} at {best} ranks")
    med = np.array([np.median([r.wall_s for r in runs]) for runs in groups.values()])
    ax.plot(p, med[0] / med, "ko", label="measured")
    ax.set(xlabel="ranks p", ylabel="speedup", xscale="log", yscale="log")
    ax.legend(fontsize=7)
    write_csv(out / "prediction.csv", ["algorithm"] + [f"T({q})" for q in grid], rows)
    lines.append("")
    lines.append(save(fig, out, "prediction"))


def sweep_section(study, out, lines):
    lines.append("\n## Allreduce sweeps\n")
    by_p = {}
    for sw in study.sweeps:
        by_p.setdefault(sw.ranks, []).append(sw)
    rows = []
    for ranks, sweeps in sorted(by_p.items()):
        sizes = sweeps[0].sizes
        algs = sorted(set.intersection(*[set(s.latency) for s in sweeps]))
        lat = {a: np.median([s.latency[a] for s in sweeps], axis=0) for a in algs}
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for a in algs:
            a1.plot(sizes, lat[a] * 1e6, "o-", ms=3, label=a)
            busbw = sizes / lat[a] * 2 * (ranks - 1) / ranks / 1e9
            a2.plot(sizes, busbw, "o-", ms=3, label=a)
            rows += [[ranks, a, int(s), l, b] for s, l, b in zip(sizes, lat[a], busbw)]
        a1.set(xlabel="bytes", ylabel="latency us", xscale="log", yscale="log", title=f"{ranks} ranks")
        a2.set(xlabel="bytes", ylabel="bus bandwidth GB/s", xscale="log", yscale="log")
        a1.legend(fontsize=7)
        lines.append(f"{ranks} ranks, {len(sweeps)} sweep(s) (median latency across ranks, median over sweeps).\n")
        lines.append("alpha and beta fitted per algorithm to its own formula (beta includes the reduction's "
                     "cost at this P); error = median |model/measured - 1| over sizes.\n")
        lines.append("| algorithm | alpha us | beta ns/B | median abs error |\n|---|---|---|---|")
        for a in algs:
            if a not in commmodel.ALGORITHMS:
                continue
            alpha, beta = commmodel.fit_alpha_beta(a, ranks, sizes, lat[a])
            model = np.array([np.dot(commmodel.costs(a, float(n), ranks)[:2], (alpha, beta)) for n in sizes])
            err = np.median(np.abs(model / lat[a] - 1))
            lines.append(f"| {a} | {alpha * 1e6:.3f} | {beta * 1e9:.4f} | {err:.0%} |")
        lines.append("")
        lines.append(save(fig, out, f"allreduce_p{ranks}"))
    write_csv(out / "allreduce.csv", ["ranks", "algorithm", "bytes", "latency_s", "busbw_GBps"], rows)


def write_report(study, out=None):
    out = Path(out or study.folder)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {study.kind.capitalize()} study: {study.folder}\n"]
    for w in study.warnings:
        lines.append(f"> Warning: {w}\n")
    if study.runs:
        c = study.runs[0].config
        shown = {k: v for k, v in c.items() if k not in ("ranks", "log_every")}
        lines.append("Configuration: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) + "\n")
        lines.append(DEFINITIONS + "\n")
        lines.append("## Scaling\n")
        scaling_section(study, out, lines)
        phases_section(study, out, lines)
        accuracy_section(study, out, lines)
    if study.sweeps:
        sweep_section(study, out, lines)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
