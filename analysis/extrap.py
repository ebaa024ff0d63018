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

from .runs import RUN_FORMAT, StudyError, read_run, read_sweep, study_files

PHASES = ("compute", "allreduce", "update", "step")


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
    files = list(study_files(folder))
    runs = [read_run(path) for path, fmt in files if fmt == RUN_FORMAT]
    sweeps = [read_sweep(path) for path, fmt in files if fmt != RUN_FORMAT]
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    if not files:
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
