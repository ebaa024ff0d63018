"""A study's measurements in Extra-P's JSON Lines input format, so Extra-P (Calotoiu et al.)
can model the same data: `extrap --json FILE`.

One line per measurement: {"params": {...}, "callpath": ..., "metric": ..., "value": ...};
repeats are lines with the same params. Runs (`runs.jsonl`): parameter p (ranks), and n
(rows) when the runs differ in it; callpaths compute, allreduce, update and step, metric
`time` (seconds per step: the mean over steps of the slowest rank) and, for allreduce,
`bytes_sent` (per step, the busiest rank). Sweeps (`allreduce.jsonl`): parameters p and n
(bytes), callpath the algorithm, metric `time` (the median over ranks of each rank's median).
Extra-P needs every line of a file to have the same parameters, hence two files.
"""
import json
from pathlib import Path

import h5py

from .runs import BENCH_FORMAT, RUN_FORMAT, StudyError, _text, read_run, read_sweep

PHASES = ("compute", "allreduce", "update", "step")


def study_files(folder):
    """Run files and sweeps anywhere under `folder` (checkpoints left out)."""
    runs, sweeps = [], []
    for path in sorted(Path(folder).rglob("*.h5")):
        if path.name.endswith(".ckpt.h5"):
            continue
        with h5py.File(path, "r") as f:
            fmt = _text(f.attrs.get("format", ""))
        if fmt == RUN_FORMAT:
            runs.append(read_run(path))
        elif fmt == BENCH_FORMAT:
            sweeps.append(read_sweep(path))
    return runs, sweeps


def run_lines(runs):
    sizes = {int(r.config.get("samples", 0)) for r in runs}
    for r in runs:
        params = {"p": r.ranks}
        if len(sizes) > 1:
            params["n"] = int(r.config.get("samples", 0))
        for phase in PHASES:
            value = float(getattr(r, phase).max(axis=1).mean())
            yield {"params": params, "callpath": phase, "metric": "time", "value": value}
        yield {"params": params, "callpath": "allreduce", "metric": "bytes_sent",
               "value": float(r.bytes_sent.max(axis=1).mean())}


def sweep_lines(sweeps):
    for sw in sweeps:
        for alg, latency in sw.latency.items():
            for size, t in zip(sw.sizes, latency):
                yield {"params": {"p": sw.ranks, "n": int(size)}, "callpath": alg, "metric": "time", "value": float(t)}


def export(folder, out=None):
    """Writes runs.jsonl and/or allreduce.jsonl into `out` (default the folder); returns the paths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyError(f"{folder}: no such folder; give a study folder")
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    runs, sweeps = study_files(folder)
    if not runs and not sweeps:
        raise StudyError(f"{folder}: no run files or sweeps (.h5) in it")
    written = []
    for name, lines in (("runs.jsonl", run_lines(runs) if runs else None),
                        ("allreduce.jsonl", sweep_lines(sweeps) if sweeps else None)):
        if lines is None:
            continue
        path = out / name
        with open(path, "w") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        written.append(path)
    return written
