"""A study folder -> tables (markdown and CSV), plots (PNG and SVG) and report.md, written into
the folder (or --out). Every number in the report is computed from the run files here."""
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
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


def plain_log_ticks(ax, values=None, axis="x"):
    """Log axis labelled in plain numbers (1, 2, 4, 8; not 2x10^0), at `values` (default: the
    decades)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    if values is not None:
        target.set_major_locator(ticker.FixedLocator(sorted(set(float(v) for v in values))))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


def title(study):
    """The workload and the machine, for every plot of a study of runs."""
    c = study.runs[0].config
    model = c.get("model", "?")
    shape = f"{model} {c.get('hidden', '')}".strip() if model == "mlp" else model
    return f"{shape}, {c.get('samples', '?')} rows x {c.get('features', '?')}, batch {c.get('batch', '?')}\n" \
           f"{study.runs[0].machine}"


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def fitted_times(study):
    """Rank count -> wall times of the runs the fits use (not oversubscribed, unless asked)."""
    groups = {}
    for r in study.fitted_runs():
        groups.setdefault(r.ranks, []).append(r.wall_s)
    return {k: np.array(v) for k, v in sorted(groups.items())}


def scaling_section(study, out, lines):
    groups = study.by_ranks()
    p = np.array(list(groups))
    times = {k: np.array([r.wall_s for r in v]) for k, v in groups.items()}
    over = {k: int(any(r.oversubscribed for r in v)) for k, v in groups.items()}
    med = np.array([np.median(times[k]) for k in p])
    t1 = med[0]
    fit_times = fitted_times(study)
    fit_p = np.concatenate([[k] * len(v) for k, v in fit_times.items()]) if fit_times else np.array([])
    fit_t = np.concatenate(list(fit_times.values())) if fit_times else np.array([])
    can_fit = len(fit_times) >= 2
    if not can_fit:
        lines.append("No fit: fewer than two rank counts ran without oversubscription "
                     "(--include-oversubscribed fits them anyway).\n")
    mark = {k: " (oversubscribed)" if over[k] else "" for k in p}
    weak = study.kind == "weak"
    rows = []
    if weak:
        lines.append("| p | runs | T(p) s median (min-max) | s per step | weak efficiency | scaled speedup |")
        lines.append("|---|---|---|---|---|---|")
        for k, m in zip(p, med):
            steps = groups[k][0].steps
            eff = t1 / m
            lines.append(f"| {k}{mark[k]} | {len(times[k])} | {m:.4f} ({times[k].min():.4f}-{times[k].max():.4f}) | "
                         f"{m / steps:.6f} | {eff:.3f} | {k * eff:.3f} |")
            rows.append([k, len(times[k]), m, times[k].min(), times[k].max(), m / steps, eff, k * eff, over[k]])
        write_csv(out / "scaling.csv", ["ranks", "runs", "t_median_s", "t_min_s", "t_max_s", "s_per_step",
                                         "weak_efficiency", "scaled_speedup", "oversubscribed"], rows)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(p, p, "k--", label="ideal (p)")
        if can_fit:
            fs = laws.fit_gustafson_runs(fit_p, fit_t)
            lo, hi = laws.bootstrap(fit_times, laws.fit_gustafson_runs)
            lines.append(f"\nGustafson serial fraction f_s = {fs:.4f} (95% interval {lo:.4f} to {hi:.4f}), "
                         f"fitted to {len(fit_t)} runs at {len(fit_times)} rank counts.\n")
            ax.plot(p, p - fs * (p - 1), "C1-", label=f"Gustafson, f_s = {fs:.3f}")
        scatter_repeats(ax, p, times, lambda k, t: k * t1 / t, over)
        ax.set(xlabel="ranks p", ylabel="scaled speedup p T(1)/T(p)", xscale="log", yscale="log", title=title(study))
        plain_log_ticks(ax, p)
        plain_log_ticks(ax, p, "y")
        ax.legend(fontsize=7)
        lines.append(save(fig, out, "scaled_speedup"))
        return
    s = laws.speedup(t1, med)
    kf = laws.karp_flatt(s, p)
    lines.append("| p | runs | T(p) s median (min-max) | speedup | efficiency | Karp-Flatt e(p) |")
    lines.append("|---|---|---|---|---|---|")
    for k, m, sk, ek in zip(p, med, s, kf):
        kf_text = "" if np.isnan(ek) else f"{ek:.4f}"
        lines.append(f"| {k}{mark[k]} | {len(times[k])} | {m:.4f} ({times[k].min():.4f}-{times[k].max():.4f}) | "
                     f"{sk:.3f} | {sk / k:.3f} | {kf_text} |")
        rows.append([k, len(times[k]), m, times[k].min(), times[k].max(), sk, sk / k, ek, over[k]])
    write_csv(out / "scaling.csv", ["ranks", "runs", "t_median_s", "t_min_s", "t_max_s", "speedup",
                                     "efficiency", "karp_flatt", "oversubscribed"], rows)
    f = None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    grid = np.geomspace(1, p.max(), 50)
    ax.plot(grid, grid, "k--", label="ideal")
    if can_fit:
        f, t1_fit = laws.fit_amdahl(fit_p, fit_t)
        lo, hi = laws.bootstrap(fit_times, lambda pp, tt: laws.fit_amdahl(pp, tt)[0])
        lines.append(f"\nAmdahl fit to {len(fit_t)} runs at {len(fit_times)} rank counts: serial fraction "
                     f"f = {f:.4f} (95% interval {lo:.4f} to {hi:.4f}), T1 = {t1_fit:.4f} s; the largest speedup "
                     f"it allows is 1/f = {1 / f if f > 0 else float('inf'):.1f}.\n")
        ax.plot(grid, 1 / (f + (1 - f) / grid), "C1-", label=f"Amdahl, f = {f:.3f}")
    scatter_repeats(ax, p, times, lambda k, t: t1 / t, over)
    ax.set(xlabel="ranks p", ylabel="speedup T(1)/T(p)", xscale="log", yscale="log", title=title(study))
    plain_log_ticks(ax, p)
    plain_log_ticks(ax, p, "y")
    ax.legend(fontsize=7)
    lines.append(save(fig, out, "speedup"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    eff = {k: t1 / times[k] / k for k in p}
    ax.errorbar(p, s / p, yerr=[s / p - [eff[k].min() for k in p], [eff[k].max() for k in p] - s / p],
                fmt="C0o-", capsize=3, label="median (min-max over repeats)")
    ax.axhline(1, color="k", ls="--")
    ax.set(xlabel="ranks p", ylabel="efficiency S(p)/p", xscale="log", ylim=(0, 1.1), title=title(study))
    plain_log_ticks(ax, p)
    ax.legend(fontsize=7)
    lines.append(save(fig, out, "efficiency"))
    if can_fit:
        prediction_section(study, out, lines)


def scatter_repeats(ax, p, times, value, over):
    """Every repeat as a dot, the median as a marker with the min-max as an error bar; hollow
    markers for oversubscribed rank counts."""
    for k in p:
        ax.plot([k] * len(times[k]), value(k, times[k]), "C0.", alpha=0.4)
    med = np.array([np.median(value(k, times[k])) for k in p])
    low = med - np.array([value(k, times[k]).min() for k in p])
    high = np.array([value(k, times[k]).max() for k in p]) - med
    ax.errorbar(p, med, yerr=[low, high], fmt="none", ecolor="C0", capsize=3)
    fair = np.array([not over[k] for k in p])
    ax.plot(p[fair], med[fair], "C0o", label="measured (median, min-max)")
    if (~fair).any():
        ax.plot(p[~fair], med[~fair], "o", mfc="none", mec="C0", label="oversubscribed (not fitted)")


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
    ax.set(xlabel="ranks p", ylabel="ms per step", title=title(study))
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


def pop_section(study, out, lines):
    groups = study.by_ranks()
    lines.append("\n## POP efficiencies (median over repeats)\n")
    lines.append(phases.POP_DEFINITIONS + "\n")
    lines.append("| p | load balance | serialisation | transfer | communication | parallel efficiency |")
    lines.append("|---|---|---|---|---|---|")
    rows = []
    for k, runs in groups.items():
        m = [float(np.median([getattr(phases.pop(r), name) for r in runs]))
             for name in ("load_balance", "serialisation", "transfer", "communication", "parallel")]
        lines.append(f"| {k} | " + " | ".join(f"{v:.3f}" for v in m) + " |")
        rows.append([k] + m)
    write_csv(out / "pop.csv", ["ranks", "load_balance", "serialisation", "transfer", "communication",
                                "parallel_efficiency"], rows)


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
    for ax in (a1, a2):
        plain_log_ticks(ax, list(groups))
    fig.suptitle(title(study), fontsize=9)
    lines.append("")
    lines.append(save(fig, out, "accuracy"))


STYLES = {"ring": "-", "tree": "--", "rd": "-.", "rabenseifner": ":", "star": (0, (5, 1, 1, 1, 1, 1)),
          "hier": (0, (8, 2))}


def step_model(runs, sweeps):
    """(c0, c1, update, other, coef, source) of the strong-scaling prediction from `runs` and
    `sweeps`: compute per step c0 + c1/p, the update and the time outside the steps measured,
    and alpha-beta-gamma from the sweeps (or, without sweeps, from the runs' own transfer
    times with the ring formula)."""
    groups = {}
    for r in runs:
        groups.setdefault(r.ranks, []).append(r)
    p = np.array(sorted(groups), dtype=float)
    compute = np.array([np.median([r.compute.max(axis=1).mean() for r in groups[k]]) for k in sorted(groups)])
    (c0, c1), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p), 1 / p]), compute, rcond=None)
    update = float(np.median([r.update.mean() for r in runs]))
    other = float(np.median([r.wall_s - r.step.max(axis=1).sum() for r in groups[1]]))
    n = runs[0].grad_bytes
    if sweeps:
        points = [(alg, float(size), sw.ranks, float(sw.latency[alg][i]), sw.per_host)
                  for sw in sweeps for alg in commmodel.ALGORITHMS if alg in sw.latency
                  for i, size in enumerate(sw.sizes)]
        source = f"alpha, beta, gamma fitted to {len(sweeps)} allreduce sweep(s) of the study"
    else:
        points = [("ring", float(n), k, float(max(np.median([phases.breakdown(r).transfer for r in groups[k]]), 1e-9)))
                  for k in sorted(groups) if k > 1]
        source = "alpha, beta, gamma fitted to the runs' own allreduce transfer times with the ring formula (no sweep)"
    coef = commmodel.fit(points) if points else np.zeros(3)
    return c0, c1, update, other, coef, source


def predicted_times(model, steps, n, grid, algorithm):
    c0, c1, update, other, coef, _ = model
    return np.array([steps * (c0 + c1 / q + update + commmodel.predict(coef, algorithm, n, q)) + other for q in grid])


def resample(rng, items, key):
    """`items` resampled with replacement within each group of equal `key`."""
    groups = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return [g[i] for g in groups.values() for i in rng.integers(0, len(g), len(g))]


def prediction_section(study, out, lines, rounds=300):
    """Strong scaling to 1024 ranks from the fitted compute, update and alpha-beta-gamma, with a
    95% band from a bootstrap over the repeats (runs and sweeps resampled within each rank count)."""
    runs, sweeps = study.fitted_runs(), study.fitted_sweeps()
    groups = study.by_ranks()
    first = groups[1][0]
    steps, n = first.steps, first.grad_bytes
    model = step_model(runs, sweeps)
    c0, c1, update, _, coef, source = model
    rng = np.random.default_rng(0)
    models = [step_model(resample(rng, runs, lambda r: r.ranks), resample(rng, sweeps, lambda s: s.ranks))
              for _ in range(rounds)]
    spread = np.array([m[4] for m in models])
    lo, hi = np.percentile(spread, [2.5, 97.5], axis=0)
    lines.append("\n## Prediction to 1024 ranks\n")
    lines.append(f"Uses: compute per step {c0 * 1e3:.4f} + {c1 * 1e3:.4f}/p ms (fitted to {len(runs)} runs), update "
                 f"{update * 1e3:.4f} ms, gradient {n} bytes; {source}: alpha = {coef[0] * 1e6:.3f} us "
                 f"({lo[0] * 1e6:.3f} to {hi[0] * 1e6:.3f}), beta = {coef[1] * 1e9:.4f} ns/B ({lo[1] * 1e9:.4f} to "
                 f"{hi[1] * 1e9:.4f}), gamma = {coef[2] * 1e9:.4f} ns/B ({lo[2] * 1e9:.4f} to {hi[2] * 1e9:.4f}); "
                 f"95% intervals and bands by bootstrap over the repeats ({rounds} rounds). The model knows one "
                 "network: past this machine's ranks it assumes every message costs what it cost here. "
                 "Upper bound: ideal speedup p. `hier` is left out: on one host it is the tree.\n")
    grid = np.unique(np.geomspace(1, 1024, 41).astype(int))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grid, grid, "k--", lw=1, label="ideal")
    rows = []
    for i, alg in enumerate(a for a in commmodel.ALGORITHMS if a != "hier"):
        t = predicted_times(model, steps, n, grid, alg)
        band = np.array([predicted_times(m, steps, n, grid, alg) for m in models])
        speed = t[0] / t
        low, high = np.percentile(band[:, :1] / band, [2.5, 97.5], axis=0)
        ax.plot(grid, speed, color=f"C{i}", ls=STYLES[alg], label=f"{alg} (model)")
        ax.fill_between(grid, low, high, color=f"C{i}", alpha=0.15, lw=0)
        rows += [[alg, q, tq, sq, lq, hq] for q, tq, sq, lq, hq in zip(grid, t, speed, low, high)]
        best = grid[np.argmax(speed)]
        lines.append(f"- {alg}: predicted speedup {speed[-1]:.1f} (95% band {low[-1]:.1f} to {high[-1]:.1f}) at 1024 "
                     f"ranks, best {np.max(speed):.1f} at {best} ranks")
    med = np.array([np.median([r.wall_s for r in rs]) for rs in groups.values()])
    ax.plot(list(groups), med[0] / med, "ko", label="measured (median)")
    ax.set(xlabel="ranks p", ylabel="speedup", xscale="log", yscale="log", title=title(study))
    plain_log_ticks(ax, [1, 4, 16, 64, 256, 1024])
    plain_log_ticks(ax, [0.1, 1, 10, 100, 1000], "y")
    ax.legend(fontsize=7)
    write_csv(out / "prediction.csv", ["algorithm", "ranks", "t_s", "speedup", "speedup_low", "speedup_high"], rows)
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
        pop_section(study, out, lines)
        accuracy_section(study, out, lines)
    if study.sweeps:
        sweep_section(study, out, lines)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


SIZE_FOLDER = "samples-"


def size_folders(folder):
    """The per-size studies of `make strong SIZES=...`, in increasing size (empty if none)."""
    subs = [d for d in Path(folder).iterdir() if d.is_dir() and d.name.startswith(SIZE_FOLDER)]
    return sorted(subs, key=lambda d: int(d.name[len(SIZE_FOLDER):]) if d.name[len(SIZE_FOLDER):].isdigit() else 0)


def write_family_report(studies, folder, out=None):
    """Speedup and efficiency against rank count, one curve per data-set size, from the
    per-size studies (each also gets its own report in its folder)."""
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Strong scaling against data-set size: {folder}\n"]
    for st in studies:
        for w in st.warnings:
            lines.append(f"> Warning ({st.folder.name}): {w}\n")
    lines.append("Each size is a strong study of its own (its report is in its folder); speedup "
                 "S(p) = T(1)/T(p) of the median times, efficiency S(p)/p. Hollow markers: oversubscribed.\n")
    lines.append("| rows | p | T(p) s median | speedup | efficiency | oversubscribed |\n|---|---|---|---|---|---|")
    rows = []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    markers = "osD^v<>"
    all_p = set()
    for i, st in enumerate(studies):
        groups = st.by_ranks()
        p = np.array(list(groups))
        all_p |= set(p.tolist())
        med = np.array([np.median([r.wall_s for r in rs]) for rs in groups.values()])
        over = np.array([any(r.oversubscribed for r in rs) for rs in groups.values()])
        s = med[0] / med
        samples = st.runs[0].config.get("samples")
        for k, m, sk, o in zip(p, med, s, over):
            lines.append(f"| {samples} | {k} | {m:.4f} | {sk:.3f} | {sk / k:.3f} | {int(o)} |")
            rows.append([samples, k, m, sk, sk / k, int(o)])
        style = dict(color=f"C{i}", marker=markers[i % len(markers)], ls=["-", "--", "-.", ":"][i % 4])
        for ax, y in ((a1, s), (a2, s / p)):
            ax.plot(p, y, label=f"{samples} rows", mfc="none" if over.all() else None, **style)
            if over.any():
                ax.plot(p[over], y[over], ls="none", marker=style["marker"], mfc="white", mec=style["color"])
    a1.plot(sorted(all_p), sorted(all_p), "k--", lw=1, label="ideal")
    a1.set(xlabel="ranks p", ylabel="speedup T(1)/T(p)", xscale="log", yscale="log")
    a2.set(xlabel="ranks p", ylabel="efficiency S(p)/p", xscale="log", ylim=(0, 1.1))
    for ax in (a1, a2):
        plain_log_ticks(ax, sorted(all_p))
        ax.legend(fontsize=7)
    plain_log_ticks(a1, sorted(all_p), "y")
    fig.suptitle(title(studies[-1]).split("\n")[-1] + ": " + ", ".join(
        f"{st.runs[0].config.get('samples')}" for st in studies) + " rows", fontsize=9)
    write_csv(out / "family.csv", ["samples", "ranks", "t_median_s", "speedup", "efficiency", "oversubscribed"], rows)
    lines.append("")
    lines.append(save(fig, out, "speedup_by_size"))
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
