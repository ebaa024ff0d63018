"""Training algorithms side by side (`make compare-algorithms`): test accuracy after every epoch
(a round for fedavg) against the wall time and the bytes sent so far, per algorithm and rank
count, and the time and bytes each needed to reach a target accuracy.

Time of an epoch: the slowest rank's steps of that epoch plus the slowest rank's evaluation (the
ranks wait for each other at its end). Bytes: every rank's `comm/bytes_sent`, plus for async-ps
what its servers sent (`async/server_bytes_sent`, the same in every epoch since every epoch has
the same pulls).
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .runs import StudyError, _text


@dataclass
class Curve:
    label: str  # sync, local, easgd, fedavg, async-ps
    ranks: int
    path: Path
    seconds: np.ndarray  # [epochs] wall time at the end of each epoch
    bytes: np.ndarray  # [epochs] bytes sent by all ranks up to the end of each epoch
    accuracy: np.ndarray  # [epochs] test accuracy after each epoch
    oversubscribed: bool  # more ranks than cores on a host: times are not the algorithm's alone


def label_of(config):
    algorithm = config.get("algorithm", "sync")
    if algorithm == "sync" and config.get("average_every", "off") != "off":
        return "local"
    return algorithm


def read_curve(path):
    with h5py.File(path, "r") as f:
        config = {k: _text(v) for k, v in f["config"].attrs.items()}
        accuracy = f["metrics/test_accuracy"][()]
        epochs = len(accuracy)
        if epochs == 0:
            raise StudyError(f"{path}: no epoch finished; nothing to compare")
        steps = f["timings/step"][()]  # [S, P]
        per_epoch = len(steps) // epochs
        step_s = steps[: per_epoch * epochs].reshape(epochs, per_epoch, -1).sum(axis=1).max(axis=1)
        eval_s = f["timings/eval"][()].max(axis=1)
        sent = f["comm/bytes_sent"][()].astype(float)
        sent = sent[: per_epoch * epochs].reshape(epochs, per_epoch, -1).sum(axis=(1, 2))
        if "async" in f:
            sent = sent + f["async/server_bytes_sent"][()].sum() / epochs
        return Curve(label_of(config), int(config["ranks"]), Path(path), np.cumsum(step_s + eval_s),
                     np.cumsum(sent), accuracy, bool(f.attrs.get("oversubscribed", 0)))


def load_curves(folder):
    paths = sorted(Path(folder).glob("*.h5"))
    if not paths:
        raise StudyError(f"{folder}: no run files (*.h5); run make compare-algorithms first")
    return [read_curve(p) for p in paths]


def first_reaching(curve, target):
    """(seconds, bytes) when the test accuracy first reached `target`, or None."""
    hit = np.flatnonzero(curve.accuracy >= target)
    return None if len(hit) == 0 else (curve.seconds[hit[0]], curve.bytes[hit[0]])


def time_to_accuracy(curves, target):
    rows = []
    for c in sorted(curves, key=lambda c: (c.label, c.ranks)):
        reached = first_reaching(c, target)
        rows.append(dict(algorithm=c.label, ranks=c.ranks, target=target,
                         seconds=None if reached is None else reached[0],
                         bytes=None if reached is None else int(reached[1]),
                         final_accuracy=float(c.accuracy[-1]), total_seconds=float(c.seconds[-1]),
                         total_bytes=int(c.bytes[-1]), oversubscribed=int(c.oversubscribed)))
    return rows


# One line style, marker and colour per algorithm, the same in every panel.
STYLES = {"sync": ("-", "o", "tab:blue"), "local": ("--", "s", "tab:orange"), "easgd": ("-.", "^", "tab:green"),
          "fedavg": (":", "D", "tab:red"), "async-ps": ((0, (5, 1, 1, 1)), "v", "tab:purple")}


def plot(curves, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    ranks = sorted({c.ranks for c in curves})
    fig, axes = plt.subplots(2, len(ranks), figsize=(4.5 * len(ranks), 7), squeeze=False, sharey=True)
    for col, p in enumerate(ranks):
        for c in sorted((c for c in curves if c.ranks == p), key=lambda c: c.label):
            line, marker, colour = STYLES.get(c.label, ("-", "x", "black"))
            for row, x in enumerate((c.seconds, c.bytes / 2**20)):
                axes[row][col].plot(x, c.accuracy, linestyle=line, marker=marker, color=colour, markersize=4,
                                    label=c.label)
        axes[0][col].set_title(f"{p} rank{'s' if p > 1 else ''}")
        axes[0][col].set_xlabel("wall time (s)")
        axes[1][col].set_xlabel("MiB sent, all ranks")
        for row in range(2):
            axes[row][col].set_xscale("log")
            axes[row][col].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axes[row][col].grid(True, alpha=0.3)
    for row in range(2):
        axes[row][0].set_ylabel("test accuracy")
    handles = {}
    for ax in axes[0]:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_comparison(folder, target=None, out=None):
    curves = load_curves(folder)
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    if target is None:
        # The best accuracy every run reached, less half a point: a target all can be timed to.
        target = round(min(c.accuracy.max() for c in curves) - 0.005, 3)
    rows = time_to_accuracy(curves, target)
    with open(out / "time_to_accuracy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "ranks", "epoch", "seconds", "bytes", "test_accuracy"])
        for c in curves:
            for e in range(len(c.accuracy)):
                writer.writerow([c.label, c.ranks, e + 1, c.seconds[e], int(c.bytes[e]), c.accuracy[e]])
    with h5py.File(curves[0].path, "r") as f:
        attrs = f.attrs
        library = _text(attrs["mpi_library"]).splitlines()[0]
        host, family = _text(attrs["hostname_list"]), _text(attrs["mpi_family"])
        machine = f"{host} ({_text(attrs['simd'])}), {library}"
        config = {k: _text(v) for k, v in f["config"].attrs.items()}
    workload = f"{config['model']} {config.get('hidden', '')} on {config['data']} ({config['samples']} rows)"
    plot(curves, out / "accuracy.png",
         f"{workload}: test accuracy against time and bytes\n{host}, {family}")
    lines = [f"# Training algorithms compared: {workload}", "",
             f"Machine: {machine}. Target test accuracy: {target:.3f}.", "",
             "| algorithm | ranks | seconds to target | MiB to target | final accuracy | seconds | MiB | oversubscribed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        reached = "not reached" if r["seconds"] is None else f"{r['seconds']:.3f}"
        mib = "-" if r["bytes"] is None else f"{r['bytes'] / 2**20:.2f}"
        lines.append(f"| {r['algorithm']} | {r['ranks']} | {reached} | {mib} | {r['final_accuracy']:.4f} "
                     f"| {r['total_seconds']:.3f} | {r['total_bytes'] / 2**20:.2f} | {'yes' if r['oversubscribed'] else 'no'} |")
    lines += ["", "Time: per epoch (a round for fedavg), the slowest rank's steps and evaluation; bytes: "
              "every rank's sends (async-ps: with its servers' replies; `mpi` counts its payload, also on "
              "1 rank). Oversubscribed runs had more ranks than cores on a host: their times measure the "
              "sharing of cores as much as the algorithm. Plot: accuracy.png.", ""]
    (out / "compare.md").write_text("\n".join(lines))
    return out / "compare.md"
