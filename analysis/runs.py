"""Reading run files (format mpi-sgd/1) and benchmark sweeps (mpi-sgd-bench/1) into a study.

A study is a folder of files from one experiment: runs of one configuration at several rank
counts (strong or weak scaling), and/or allreduce sweeps. Anything that would make the
numbers meaningless (mixed configurations, a single rank count) is refused with a message
that says what to do, as a `StudyError`.
"""
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

RUN_FORMAT = "mpi-sgd/1"
BENCH_FORMAT = "mpi-sgd-bench/1"
# Options that legitimately differ between the runs of one study; in a weak study the global
# sizes grow with the ranks too.
VARYING = {"ranks", "log_every"}
WEAK_VARYING = {"samples": "samples_per_rank", "batch": "batch_per_rank"}


class StudyError(Exception):
    """A study folder that cannot be analysed, with what to do about it."""


@dataclass
class Run:
    path: Path
    ranks: int
    config: dict
    wall_s: float
    steps: int
    compute: np.ndarray  # [steps, ranks] seconds
    allreduce: np.ndarray
    update: np.ndarray
    step: np.ndarray
    exposed: np.ndarray  # communication waited for (the allreduce phase)
    overlapped: np.ndarray  # communication in flight behind the backward pass (--overlap)
    bytes_sent: np.ndarray  # [steps, ranks]
    loss: float
    test_accuracy: float
    batch: int
    grad_bytes: int  # bytes of the flat gradient one allreduce moves
    timer_overhead_s: float  # the MPI_Wtime reads of one step
    hosts: int = 1
    oversubscribed: bool = False  # some host (or machine of hosts) had more ranks than cores
    machine: str = ""  # CPU model and cores, for titles


@dataclass
class Sweep:
    path: Path
    ranks: int
    dtype: str
    sizes: np.ndarray  # [sizes] bytes
    latency: dict = field(default_factory=dict)  # algorithm -> [sizes] seconds (median over ranks of each rank's median)
    hosts: int = 1
    oversubscribed: bool = False

    @property
    def per_host(self):
        return max(1, self.ranks // self.hosts)


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _machine(f):
    """'<CPU model>, <cores> cores per host' from a run file's provenance."""
    cpu = _text(f.attrs.get("cpu_model", "unknown CPU"))
    cores = int(np.max(f["ranks/cores_on_host"][()])) if "ranks/cores_on_host" in f else 0
    return f"{cpu}, {cores} cores per host" if cores else cpu


def read_run(path):
    with h5py.File(path, "r") as f:
        config = {k: _text(v) for k, v in f["config"].attrs.items()}
        config = {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}
        summary = f["summary"].attrs
        return Run(
            path=Path(path),
            ranks=int(config["ranks"]),
            config=config,
            wall_s=float(summary["wall_s"]),
            steps=int(summary["steps"]),
            compute=f["timings/compute"][()],
            allreduce=f["timings/allreduce"][()],
            update=f["timings/update"][()],
            step=f["timings/step"][()],
            exposed=f["timings/exposed"][()] if "timings/exposed" in f else f["timings/allreduce"][()],
            overlapped=(f["timings/overlapped"][()] if "timings/overlapped" in f
                        else np.zeros_like(f["timings/allreduce"][()])),
            bytes_sent=f["comm/bytes_sent"][()],
            loss=float(summary["loss"]),
            test_accuracy=float(summary["test_accuracy"]),
            batch=int(config["batch"]),
            grad_bytes=int(f["model/params"].size * f["model/params"].dtype.itemsize),
            timer_overhead_s=float(summary["timer_overhead_s"]),
            hosts=int(f.attrs.get("hosts", 1)),
            oversubscribed=bool(f.attrs.get("oversubscribed", 0)),
            machine=_machine(f),
        )


def read_sweep(path):
    with h5py.File(path, "r") as f:
        bench = f["bench"]
        sweep = Sweep(Path(path), int(bench.attrs["ranks"]), _text(bench.attrs["dtype"]), bench["sizes_bytes"][()],
                      hosts=int(f.attrs.get("hosts", 1)), oversubscribed=bool(f.attrs.get("oversubscribed", 0)))
        for name in bench:
            if name == "sizes_bytes":
                continue
            per_rank = np.nanmedian(bench[name]["latency_s"][()], axis=1)  # [sizes, ranks]
            sweep.latency[name] = np.median(per_rank, axis=1)
        return sweep


@dataclass
class Study:
    folder: Path
    kind: str  # "strong", "weak" or "allreduce"
    runs: list
    sweeps: list
    warnings: list
    include_oversubscribed: bool = False

    def fitted_runs(self):
        """The runs the fits use: oversubscribed ones only when asked for."""
        return [r for r in self.runs if self.include_oversubscribed or not r.oversubscribed]

    def fitted_sweeps(self):
        return [s for s in self.sweeps if self.include_oversubscribed or not s.oversubscribed]

    def by_ranks(self):
        """Rank count -> runs, in increasing rank count."""
        groups = {}
        for run in self.runs:
            groups.setdefault(run.ranks, []).append(run)
        return dict(sorted(groups.items()))


def _interrupted(path):
    """Whether a run file was written by a run that a signal stopped before its last step."""
    with h5py.File(path, "r") as f:
        return bool(f["summary"].attrs.get("interrupted", 0))


def study_files(folder):
    """(path, format) of every run file and sweep under `folder`, checkpoints left out; a file
    that is neither is a StudyError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyError(f"{folder}: no such folder; give the folder that holds the study's .h5 files")
    for path in sorted(folder.rglob("*.h5")):
        if path.name.endswith(".ckpt.h5"):
            continue  # checkpoints of a run, not runs
        try:
            with h5py.File(path, "r") as f:
                fmt = _text(f.attrs.get("format", ""))
        except OSError as e:
            raise StudyError(f"{path}: not a readable HDF5 file ({e}); remove it from the study folder")
        if fmt not in (RUN_FORMAT, BENCH_FORMAT):
            raise StudyError(f"{path}: format {fmt!r} is not {RUN_FORMAT} or {BENCH_FORMAT}; remove it from the study folder")
        yield path, fmt


def load_study(folder, include_oversubscribed=False):
    folder = Path(folder)
    runs, sweeps, skipped = [], [], []
    for path, fmt in study_files(folder):
        if fmt == RUN_FORMAT and _interrupted(path):
            skipped.append(path.name)
        elif fmt == RUN_FORMAT:
            runs.append(read_run(path))
        else:
            sweeps.append(read_sweep(path))
    if not runs and not sweeps:
        raise StudyError(f"{folder}: no run files (.h5) in it; run `make strong`, `make weak` or `make allreduce-sweep` first")
    warnings = [f"skipped {len(skipped)} interrupted run(s) (a signal stopped them early): {', '.join(skipped)}"] if skipped else []
    if runs:
        check_one_configuration(runs)
        kind = "weak" if runs[0].config.get("samples_per_rank", 0) else "strong"
        counts = {}
        for run in runs:
            counts[run.ranks] = counts.get(run.ranks, 0) + 1
        if len(counts) < 2:
            raise StudyError(f"{folder}: every run has {runs[0].ranks} rank(s); a scaling study needs at least two rank counts (RANKS=\"1 2 4\")")
        if 1 not in counts:
            raise StudyError(f"{folder}: no 1-rank run; speedup and efficiency are relative to 1 rank, so add 1 to RANKS")
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{p} ranks: {n}" for p, n in sorted(counts.items()))
            warnings.append(f"unequal repeats ({listing}): medians of different numbers of runs")
        if min(counts.values()) < 3:
            warnings.append("fewer than 3 repeats at some rank count: min-max ranges are not a spread estimate")
    else:
        kind = "allreduce"
    over = sorted({r.ranks for r in runs if r.oversubscribed} | {s.ranks for s in sweeps if s.oversubscribed})
    if over:
        use = ("included in the fits (--include-oversubscribed)" if include_oversubscribed
               else "left out of every fit (--include-oversubscribed puts them in)")
        warnings.append(f"runs on {', '.join(map(str, over))} ranks were oversubscribed (more ranks than cores on "
                        f"a host or machine: their times measure the scheduler too); {use}")
    return Study(folder, kind, runs, sweeps, warnings, include_oversubscribed)


def check_one_configuration(runs):
    reference = runs[0]
    varying = VARYING | {k for k, per_rank in WEAK_VARYING.items() if reference.config.get(per_rank, 0)}
    for run in runs[1:]:
        differ = sorted(
            k for k in set(reference.config) | set(run.config)
            if k not in varying and reference.config.get(k) != run.config.get(k)
        )
        if differ:
            details = ", ".join(f"{k}: {reference.config.get(k)!r} vs {run.config.get(k)!r}" for k in differ)
            raise StudyError(
                f"{run.path} and {reference.path} are runs of different configurations ({details}); "
                "put each configuration's runs in a folder of its own"
            )
