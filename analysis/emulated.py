"""An emulated-cluster study (`make emulated-study`) -> one alpha-beta-gamma model per algorithm
and machine, checked against measurements it was not fitted to.

The study folder holds `network/` (bench-allreduce sweeps on H hosts of R ranks),
`shared/` (the same sweep on one machine's shared memory) and `strong/<algorithm>/` (training
runs on 1..H hosts). For each algorithm with a cost formula:

- the network model is fitted leaving out one host count at a time and predicts the allreduce
  times at that host count (every size, every ranks per host): `prediction_error.csv`;
- the model fitted to every host count predicts each strong run's step time from the 1-host
  run's compute and update (compute / H + update + allreduce(n, H)):
  `step_prediction_error.csv`;
- 1024-host predictions of the allreduce of the strong study's gradient, with a 95% band from a
  bootstrap over the repeats.

Relative error = predicted / measured - 1; SMAPE = mean of 2 |p - m| / (p + m).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import commmodel
from .report import STYLES, plain_log_ticks, save, write_csv
from .runs import StudyError, read_run, read_sweep

import matplotlib.pyplot as plt  # noqa: E402  (the report module chose the backend)


@dataclass
class Point:
    algorithm: str
    hosts: int
    ranks: int
    per_host: int
    bytes: float
    seconds: float  # median over the repeats


def read_sweeps(folder, include_oversubscribed):
    """Sweeps of a folder, and the names of those left out as oversubscribed."""
    sweeps, left_out = [], []
    for path in sorted(Path(folder).glob("*.h5")):
        sweep = read_sweep(path)
        if sweep.oversubscribed and not include_oversubscribed:
            left_out.append(path.name)
        else:
            sweeps.append(sweep)
    return sweeps, left_out


def median_points(sweeps):
    """One point per (algorithm, hosts, ranks, size) the model prices: the median over the
    repeats."""
    grouped = {}
    for sw in sweeps:
        for alg, latency in sw.latency.items():
            if alg not in commmodel.ALGORITHMS:
                continue  # the library's own: no formula
            for size, t in zip(sw.sizes, latency):
                grouped.setdefault((alg, sw.hosts, sw.ranks, sw.per_host, float(size)), []).append(float(t))
    return priced([Point(*key, float(np.median(ts))) for key, ts in sorted(grouped.items())])


def fit(points):
    return commmodel.fit([(p.algorithm, p.bytes, p.ranks, p.seconds, p.per_host) for p in points])


def priced(points):
    """The points the model puts a cost on (`hier` on one host has no network part)."""
    return [p for p in points if sum(commmodel.costs(p.algorithm, p.bytes, p.ranks, p.per_host)) > 0]


def predict(coef, point):
    return commmodel.predict(coef, point.algorithm, point.bytes, point.ranks, point.per_host)


def summary(rel):
    """(median |error|, worst |error|) of relative errors, and SMAPE of the same pairs."""
    rel = np.asarray(rel)
    smape = np.mean(2 * np.abs(rel) / np.abs(2 + rel))  # p/m = 1 + rel
    return float(np.median(np.abs(rel))), float(np.max(np.abs(rel))), float(smape)


def layouts(points):
    """(algorithm, ranks per host) -> its points: each layout is a network of its own (with two
    ranks per host some of a flat algorithm's messages stay inside a host)."""
    groups = {}
    for p in points:
        groups.setdefault((p.algorithm, p.per_host), []).append(p)
    return dict(sorted(groups.items()))


def error_row(coef, p):
    """(algorithm, hosts, ranks, bytes, measured, predicted, relative error) of one point."""
    predicted = predict(coef, p)
    return [p.algorithm, p.hosts, p.ranks, int(p.bytes), p.seconds, predicted, predicted / p.seconds - 1]


def leave_one_host_count_out(points):
    """Error rows of each algorithm's model, per ranks-per-host layout, fitted without the host
    count it predicts."""
    rows = []
    for mine in layouts(points).values():
        for h in sorted({p.hosts for p in mine}):
            coef = fit([p for p in mine if p.hosts != h])
            rows += [error_row(coef, p) for p in mine if p.hosts == h]
    return rows


def in_sample(points):
    """The same rows for a model fitted to every point of its layout (one rank count: nothing
    to leave out)."""
    rows = []
    for mine in layouts(points).values():
        coef = fit(mine)
        rows += [error_row(coef, p) for p in mine]
    return rows


def error_table(rows, lines, goal=None):
    lines.append("| algorithm | points | median abs error | worst abs error | SMAPE |" + (" goal |" if goal else ""))
    lines.append("|---|---|---|---|---|" + ("---|" if goal else ""))
    for alg in sorted({r[0] for r in rows}):
        med, worst, smape = summary([r[6] for r in rows if r[0] == alg])
        verdict = (" met |" if med <= goal else f" MISSED by {med - goal:.0%} |") if goal else ""
        lines.append(f"| {alg} | {sum(r[0] == alg for r in rows)} | {med:.0%} | {worst:.0%} | {smape:.0%} |{verdict}")


def misses(rows, lines):
    """Where the model misses most: the worst sizes per algorithm, named."""
    by_size = {}
    for alg, _, ranks, n, *_rest, rel in rows:
        by_size.setdefault((alg, n), []).append(rel)
    worst = sorted(((np.median(v), alg, n) for (alg, n), v in by_size.items()), key=lambda x: -abs(x[0]))[:5]
    lines.append("\nLargest median misses by message size (negative: the model is too fast): " +
                 "; ".join(f"{alg} at {n} B: {rel:+.0%}" for rel, alg, n in worst) + ".\n")


def strong_runs(folder):
    """Algorithm -> hosts -> runs of the strong study."""
    study = {}
    for path in sorted(Path(folder).glob("*/run-h*-*.h5")):
        run = read_run(path)
        study.setdefault(path.parent.name, {}).setdefault(run.hosts, []).append(run)
    return study


def step_rows(study, coefs):
    """Predicted against measured step time per algorithm and host count."""
    rows = []
    for alg, by_hosts in sorted(study.items()):
        if alg not in coefs or 1 not in by_hosts:
            continue
        one = by_hosts[1]
        compute = np.median([r.compute.max(axis=1).mean() for r in one])
        update = np.median([r.update.max(axis=1).mean() for r in one])
        n = one[0].grad_bytes
        for h, runs in sorted(by_hosts.items()):
            measured = float(np.median([r.step.max(axis=1).mean() for r in runs]))
            predicted = compute / h + update + commmodel.predict(coefs[alg], alg, float(n), h)
            rows.append([alg, h, runs[0].ranks, n, measured, predicted, predicted / measured - 1])
    return rows


def bootstrap_bands(sweeps, algorithms, n, grid, rounds=300, seed=0):
    """Per algorithm, the 2.5 and 97.5 percentiles of the allreduce time at every P of `grid`
    when the sweeps are resampled with replacement within each (hosts, ranks) configuration."""
    rng = np.random.default_rng(seed)
    groups = {}
    for sw in sweeps:
        groups.setdefault((sw.hosts, sw.ranks), []).append(sw)
    curves = {alg: [] for alg in algorithms}
    for _ in range(rounds):
        points = median_points([g[i] for g in groups.values() for i in rng.integers(0, len(g), len(g))])
        for alg in algorithms:
            coef = fit([p for p in points if p.algorithm == alg])
            curves[alg].append([commmodel.predict(coef, alg, n, q) for q in grid])
    return {alg: np.percentile(np.array(c), [2.5, 97.5], axis=0) for alg, c in curves.items()}


def write_emulated_report(folder, out=None, include_oversubscribed=False, goal=0.25):
    folder = Path(folder)
    out = Path(out or folder)
    if not (folder / "network").is_dir():
        raise StudyError(f"{folder}: no network/ folder; give the folder `make emulated-study` wrote")
    out.mkdir(parents=True, exist_ok=True)
    network, left_net = read_sweeps(folder / "network", include_oversubscribed)
    shared, left_shared = read_sweeps(folder / "shared", include_oversubscribed) if (folder / "shared").is_dir() else ([], [])
    if not network:
        raise StudyError(f"{folder}/network: no sweep left to fit ({len(left_net)} oversubscribed: the emulated hosts "
                         "share fewer cores than they run ranks); rerun with fewer HOSTS or PER_HOST, or pass "
                         "--include-oversubscribed and read the report's warning")
    lines = [f"# Emulated-cluster study: {folder}\n"]
    cluster = folder / "cluster.txt"
    if cluster.exists():
        lines.append(f"Cluster: {cluster.read_text().strip()}\n")
    over = [sw for sw in network + shared if sw.oversubscribed]
    if over:
        lines.append(f"> Warning: {len(over)} sweep(s) ran oversubscribed (the emulated hosts share this machine's "
                     "cores: more ranks than cores) and are in the fits because of --include-oversubscribed; "
                     "their times include the scheduler's.\n")
    if left_net or left_shared:
        lines.append(f"> Warning: {len(left_net) + len(left_shared)} oversubscribed sweep(s) left out of every fit "
                     "(--include-oversubscribed puts them in).\n")
    points = median_points(network)
    host_counts = sorted({p.hosts for p in points})
    lines.append("## The network model, checked where it was not fitted\n")
    lines.append(f"Each algorithm's alpha, beta, gamma fitted to the sweeps on all host counts but one "
                 f"({', '.join(map(str, host_counts))}), predicting the one left out at every size and ranks per "
                 f"host. Goal: median abs error within {goal:.0%}. `hier` is priced by its ring among the hosts; the "
                 "flat algorithms' formulas see P ranks and one kind of link, so ranks on one host (which talk over "
                 "shared memory) are priced as if they crossed the network.\n")
    loo = leave_one_host_count_out(points) if len(host_counts) > 1 else []
    header = ["algorithm", "hosts", "ranks", "bytes", "measured_s", "predicted_s", "relative_error"]
    if loo:
        error_table(loo, lines, goal)
        misses(loo, lines)
    else:
        lines.append("Only one host count: nothing to leave out.\n")
    write_csv(out / "prediction_error.csv", header, loo)
    coefs = {alg: fit([p for p in points if p.algorithm == alg]) for alg in sorted({p.algorithm for p in points})}
    lines.append("\n### Fitted to every host count (network) and to shared memory\n")
    shared_points = median_points(shared)
    shared_coefs = {alg: fit([p for p in shared_points if p.algorithm == alg])
                    for alg in sorted({p.algorithm for p in shared_points})}
    lines.append("| algorithm | network alpha us | beta ns/B | gamma ns/B | shared-memory alpha us | beta ns/B | gamma ns/B |")
    lines.append("|---|---|---|---|---|---|---|")
    for alg, c in coefs.items():
        s = shared_coefs.get(alg, np.full(3, np.nan))
        lines.append(f"| {alg} | {c[0] * 1e6:.2f} | {c[1] * 1e9:.3f} | {c[2] * 1e9:.3f} | "
                     f"{s[0] * 1e6:.2f} | {s[1] * 1e9:.3f} | {s[2] * 1e9:.3f} |")
    if shared_points:
        lines.append(f"\nShared memory, in-sample (one rank count, {shared_points[0].ranks}: nothing to leave out):\n")
        error_table(in_sample(shared_points), lines)
    study = strong_runs(folder / "strong") if (folder / "strong").is_dir() else {}
    steps = step_rows(study, coefs)
    write_csv(out / "step_prediction_error.csv", header, steps)
    if steps:
        lines.append("\n## The strong study's step time, predicted\n")
        lines.append("Step time = the 1-host run's compute / H + its update + the network model's allreduce of "
                     "the gradient on H hosts (median over repeats of the mean step of the slowest rank).\n")
        lines.append("| algorithm | hosts | measured ms | predicted ms | error |\n|---|---|---|---|---|")
        for alg, h, _, _, m, p, rel in steps:
            lines.append(f"| {alg} | {h} | {m * 1e3:.2f} | {p * 1e3:.2f} | {rel:+.0%} |")
        error_table([r for r in steps if r[1] > 1], lines, goal)
        prediction_plot(network, coefs, steps[0][3], out, lines)
    links = folder / "links.txt"
    if links.exists():
        lines.append("\n## The links at the end of the study\n")
        lines.append("Bytes, packets and drops of every link end's queue (`bench/cluster.sh stats`). A drop at "
                     "the end of a message leaves TCP no duplicate acknowledgements to recover by: it waits a "
                     "retransmission timeout (200 ms at least), a cost no alpha-beta model has.\n")
        lines.append("```\n" + links.read_text().strip() + "\n```")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def prediction_plot(sweeps, coefs, n, out, lines):
    """Each algorithm's allreduce time of the gradient to 1024 hosts, with its bootstrap band."""
    grid = np.unique(np.geomspace(2, 1024, 30).astype(int))
    fig, ax = plt.subplots(figsize=(6, 4))
    lines.append(f"\n## The gradient's allreduce ({n} bytes) to 1024 hosts\n")
    lines.append("Network model fitted to every host count; 95% band by bootstrap over the sweeps' repeats. "
                 "One rank per host; the model assumes the emulated links, a bridge that never congests, and "
                 "costs that stay linear in P.\n")
    bands = bootstrap_bands(sweeps, list(coefs), float(n), grid)
    for i, (alg, coef) in enumerate(coefs.items()):
        t = np.array([commmodel.predict(coef, alg, float(n), q) for q in grid])
        low, high = bands[alg]
        ax.plot(grid, t * 1e3, color=f"C{i}", ls=STYLES.get(alg, "-"), label=alg)
        ax.fill_between(grid, low * 1e3, high * 1e3, color=f"C{i}", alpha=0.15, lw=0)
        lines.append(f"- {alg}: {t[-1] * 1e3:.1f} ms at 1024 hosts (95% band {low[-1] * 1e3:.1f} to {high[-1] * 1e3:.1f})")
    ax.set(xlabel="hosts", ylabel="allreduce ms", xscale="log", yscale="log",
           title=f"allreduce of {n} bytes on the emulated cluster's links")
    plain_log_ticks(ax, [2, 8, 32, 128, 512, 1024])
    plain_log_ticks(ax, axis="y")
    ax.legend(fontsize=7)
    lines.append("")
    lines.append(save(fig, out, "prediction_hosts"))
