"""Scaling arithmetic, with the definitions the report states (docs/scaling.md).

S(p) = T(1) / T(p) with T(1) mpi-sgd on one rank; E(p) = S(p) / p; Karp-Flatt serial fraction
e(p) = (1/S - 1/p) / (1 - 1/p); Amdahl T(p) = T1 (f + (1 - f)/p), fitted by linear least squares
in (T1 f, T1 (1 - f)) over every run; Gustafson scaled speedup S(p) = p - f_s (p - 1) with
f_s fitted by least squares; confidence intervals by bootstrap over the repeats.
"""
import numpy as np


def speedup(t1, tp):
    return t1 / tp


def efficiency(t1, tp, p):
    return t1 / tp / p


def karp_flatt(s, p):
    """Experimentally determined serial fraction; undefined (NaN) at p = 1."""
    p = np.asarray(p, dtype=float)
    s = np.asarray(s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 1, (1 / s - 1 / p) / (1 - 1 / p), np.nan)


def fit_amdahl(p, t):
    """Least-squares fit of T(p) = a + b / p over every run; returns (f, T1) with
    f = a / (a + b), T1 = a + b."""
    p, t = np.asarray(p, dtype=float), np.asarray(t, dtype=float)
    design = np.column_stack([np.ones_like(p), 1 / p])
    (a, b), *_ = np.linalg.lstsq(design, t, rcond=None)
    return a / (a + b), a + b


def fit_gustafson(p, scaled_speedup):
    """Least-squares f_s of S(p) = p - f_s (p - 1)."""
    p, s = np.asarray(p, dtype=float), np.asarray(scaled_speedup, dtype=float)
    x = p - 1
    return float(-np.sum((s - p) * x) / np.sum(x * x))


def medians(p, t):
    """The distinct rank counts and the median time at each."""
    p, t = np.asarray(p), np.asarray(t, dtype=float)
    ranks = np.unique(p)
    return ranks, np.array([np.median(t[p == q]) for q in ranks])


def fit_gustafson_runs(p, t):
    """f_s from every run of a weak study (rank counts p, times t; the first rank count 1):
    fitted to the scaled speedups p T(1)/T(p) of the median times."""
    ranks, med = medians(p, t)
    return fit_gustafson(ranks, ranks * med[0] / med)


def bootstrap(groups, statistic, rounds=2000, seed=0):
    """95% interval of `statistic(p, t)` when each group's runs (rank count -> times) are
    resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        p, t = [], []
        for ranks, times in groups.items():
            pick = rng.choice(times, size=len(times), replace=True)
            p += [ranks] * len(pick)
            t += list(pick)
        values.append(statistic(np.array(p), np.array(t)))
    return tuple(np.percentile(values, [2.5, 97.5]))
