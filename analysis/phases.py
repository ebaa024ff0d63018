"""Where the time of a step goes, per run.

Waiting (Scalasca's "wait at N x N"): ranks enter the allreduce when their compute phase ends.
As every rank leaves the previous step's allreduce together, rank i's arrival is its compute
time, and its wait at step t is max_j compute[t, j] - compute[t, i] (at most its allreduce
time); the rest of its allreduce time is transfer. Load balance (POP) = mean over ranks of
compute time / max over ranks; imbalance, its inverse, = max / mean.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class Breakdown:
    """Mean seconds per step, averaged over ranks."""

    compute: float
    wait: float
    transfer: float
    update: float
    imbalance: float  # max / mean of per-rank total compute time
    load_balance: float  # its inverse


def breakdown(run):
    compute, allreduce = run.compute, run.allreduce
    wait = np.minimum(compute.max(axis=1, keepdims=True) - compute, allreduce)
    per_rank = compute.sum(axis=0)
    imbalance = per_rank.max() / per_rank.mean() if per_rank.mean() > 0 else 1.0
    return Breakdown(
        compute=float(compute.mean()),
        wait=float(wait.mean()),
        transfer=float((allreduce - wait).mean()),
        update=float(run.update.mean()),
        imbalance=float(imbalance),
        load_balance=float(1 / imbalance),
    )
