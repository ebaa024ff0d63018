"""The alpha-beta-gamma (Hockney) model of the allreduce algorithms, after Thakur,
Rabenseifner and Gropp (2005): a per message, b per byte sent, g per byte added; n bytes,
P ranks. The same formulas as the doc comments in src/comm/.
"""
import math

import numpy as np

ALGORITHMS = ["ring", "tree", "rd", "rabenseifner", "star", "hier"]


def costs(algorithm, n, p, per_host=1):
    """(a, b, g) coefficients of the critical path of `algorithm` for n bytes on p ranks.
    `hier` is priced by its network part alone, the ring among the p / per_host hosts'
    leaders (its reduce and broadcast inside a host run at shared-memory speed)."""
    if algorithm == "hier":
        return costs("ring", n, max(1, p // per_host))
    if p <= 1:
        return (0.0, 0.0, 0.0)
    lg = math.ceil(math.log2(p))
    pof2 = 1 << int(math.log2(p))
    lg2 = int(math.log2(pof2))
    fold = (2, 2 * n, n) if pof2 != p else (0, 0, 0)
    base = {
        "ring": (2 * (p - 1), 2 * n * (p - 1) / p, n * (p - 1) / p),
        "tree": (2 * lg, 2 * n * lg, n * lg),
        "rd": (lg2, n * lg2, n * lg2),
        "rabenseifner": (2 * lg2, 2 * n * (pof2 - 1) / pof2, n * (pof2 - 1) / pof2),
        "star": (2 * (p - 1), 2 * (p - 1) * n, (p - 1) * n),
    }[algorithm]
    if algorithm in ("rd", "rabenseifner"):
        base = tuple(x + y for x, y in zip(base, fold))
    return tuple(float(x) for x in base)


def fit(points):
    """Least squares, on relative error, of one (a, b, g) to `points` = [(algorithm, n, p,
    seconds[, ranks per host])]; returns the array [a, b, g] (negative values clipped to 0)."""
    rows = np.array([costs(pt[0], pt[1], pt[2], *pt[4:]) for pt in points])
    times = np.array([pt[3] for pt in points])
    priced = (rows.sum(axis=1) > 0) & (times > 0)  # a point the model prices at 0 says nothing of a, b, g
    if not priced.any():
        return np.zeros(3)
    rows, times = rows[priced], times[priced]
    coef, *_ = np.linalg.lstsq(rows / times[:, None], np.ones_like(times), rcond=None)
    return np.clip(coef, 0, None)


def fit_alpha_beta(algorithm, p, sizes, times):
    """Per-algorithm fit at one P: T(n) = L a + B(n) b, L and B the algorithm's message and
    bytes-sent coefficients. At one P the bytes-added term is proportional to the bytes-sent
    one, so b here includes the reduction's cost (gamma). Returns (a, b)."""
    rows = np.array([costs(algorithm, float(n), p)[:2] for n in sizes])
    times = np.asarray(times, dtype=float)
    coef, *_ = np.linalg.lstsq(rows / times[:, None], np.ones_like(times), rcond=None)
    return tuple(np.clip(coef, 0, None))


def predict(coef, algorithm, n, p, per_host=1):
    return float(np.dot(costs(algorithm, n, p, per_host), coef))
