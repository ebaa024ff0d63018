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


POP_DEFINITIONS = """\
POP metrics (the POP Centre of Excellence's efficiencies), per run and then the median over
repeats. Useful time of rank i: u_i = its compute plus update seconds over all steps. T = the
step loop's time (sum over steps of the slowest rank's step). T_ideal = the same loop replayed
on an ideal network (transfers take no time): sum over steps of max_i (compute + update), as
each allreduce still waits for the last rank. Load balance LB = mean u_i / max u_i;
serialisation efficiency SerE = max u_i / T_ideal (time lost to ranks waiting on each other
step by step, beyond the whole-run imbalance); transfer efficiency TE = T_ideal / T (time the
network took); communication efficiency CommE = SerE x TE = max u_i / T; parallel efficiency
PE = LB x CommE = mean u_i / T."""


@dataclass
class Pop:
    load_balance: float
    serialisation: float
    transfer: float
    communication: float
    parallel: float


def pop(run):
    """The POP efficiencies of one run (definitions in POP_DEFINITIONS)."""
    useful_steps = run.compute + run.update
    useful = useful_steps.sum(axis=0)
    total = run.step.max(axis=1).sum()
    ideal = useful_steps.max(axis=1).sum()
    lb = useful.mean() / useful.max()
    ser = useful.max() / ideal
    te = ideal / total
    return Pop(float(lb), float(ser), float(te), float(ser * te), float(lb * ser * te))
