"""Where the time of a step goes, per run.

Waiting (Scalasca's "wait at N x N"): ranks enter the allreduce when their compute phase ends.
As every rank leaves the previous step's allreduce together, rank i's arrival is its compute
time, and its wait at step t is max_j compute[t, j] - compute[t, i] (at most its allreduce
time); the rest of its allreduce time is transfer. Load balance (POP) = mean over ranks of
compute time / max over ranks; imbalance, its inverse, = max / mean.

With --overlap the gradient's allreduce runs during the backward pass: `exposed` is the
communication a rank waited for after it (the allreduce phase), `overlapped` the time some of
it was in flight behind the compute, and `in_flight_share` = overlapped / (overlapped +
exposed), the share of the communication's duration that ran behind compute. Time in flight
is not time saved (a bucket moves slower while the backward pass holds the core); what overlap
saved is the allreduce of a run without it minus the exposed time of one with it.
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
    exposed: float = 0.0
    overlapped: float = 0.0
    in_flight_share: float = 0.0


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
        exposed=float(run.exposed.mean()),
        overlapped=float(run.overlapped.mean()),
        in_flight_share=in_flight_share(run),
    )


def in_flight_share(run):
    """overlapped / (overlapped + exposed), summed over steps and ranks (0 with no communication)."""
    total = run.overlapped.sum() + run.exposed.sum()
    return float(run.overlapped.sum() / total) if total > 0 else 0.0
