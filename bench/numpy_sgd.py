"""The peers mpi-sgd is measured against: synchronous minibatch SGD written with NumPy, as a user
would write it, sequential (`python numpy_sgd.py`) or data-parallel with mpi4py
(`mpirun -n P python numpy_sgd.py --mpi`).

`--plain` (logistic regression only) is the loop anyone writes first, with nothing else in it:

    for epoch in range(E):
        for i in range(0, n, B):
            xb, yb = X[i:i+B], y[i:i+B]
            w -= lr * xb.T @ (1 / (1 + np.exp(-(xb @ w))) - yb) / len(yb)

(over mpi4py, the gradient `xb.T @ (...)` summed with one Allreduce). Without it:

Same workload as `mpi-sgd train`: the same models, loss, update and per-epoch test evaluation,
the loss and accuracy of every batch computed, the global batch split across ranks and the
gradient summed with one MPI_Allreduce per step. Prints one `key=value` line; `wall_s` is the
training loop (after data generation), max over ranks. Set OPENBLAS_NUM_THREADS=1 for
single-threaded BLAS, as mpi-sgd uses.
"""
import argparse
import time

import numpy as np


def make_data(args, rows, rng):
    """Synthetic rows of the same distributions as mpi-sgd's generators."""
    hidden_rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((rows, args.features))
    if args.model == "logistic":
        w_star = hidden_rng.standard_normal(args.features)
        y = (x @ w_star > 0).astype(np.int64)
    else:
        centres = hidden_rng.standard_normal((args.classes, args.features))
        y = rng.integers(0, args.classes, rows)
        x += centres[y]
    return x.astype(args.dtype), y


def init_params(args):
    if args.model == "logistic":
        return [np.zeros(args.features, args.dtype), np.zeros(1, args.dtype)]
    widths = [args.features] + args.hidden + [args.classes]
    rng = np.random.default_rng(args.seed)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(args.dtype))
        params.append(np.zeros(fan_out, args.dtype))
    return params


def logistic(params, x, y, want_grad):
    w, b = params
    z = x @ w + b[0]
    loss = np.sum(np.logaddexp(0, z) - y * z)
    correct = np.sum((z > 0) == (y == 1))
    if not want_grad:
        return loss, correct, None
    r = 1 / (1 + np.exp(-z)) - y
    return loss, correct, [x.T @ r, np.array([r.sum()], x.dtype)]


def mlp(params, x, y, want_grad):
    acts = [x]
    layers = len(params) // 2
    for l in range(layers):
        z = acts[-1] @ params[2 * l] + params[2 * l + 1]
        acts.append(np.maximum(z, 0) if l < layers - 1 else z)
    logits = acts[-1]
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    rows = np.arange(len(y))
    loss = np.sum(lse - logits[rows, y])
    correct = np.sum(logits.argmax(axis=1) == y)
    if not want_grad:
        return loss, correct, None
    delta = np.exp(logits - lse[:, None])
    delta[rows, y] -= 1
    grads = [None] * len(params)
    for l in reversed(range(layers)):
        grads[2 * l] = acts[l].T @ delta
        grads[2 * l + 1] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ params[2 * l].T) * (acts[l] > 0)
    return loss, correct, grads


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpi", action="store_true", help="data-parallel over MPI ranks (mpi4py)")
    p.add_argument("--model", choices=["logistic", "mlp"], default="logistic")
    p.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[128, 64])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--test-samples", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--dtype", choices=["f32", "f64"], default="f64")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--plain", action="store_true", help="the bare logistic loop: no bias, no loss or accuracy, no evaluation")
    args = p.parse_args()
    if args.plain and args.model != "logistic":
        p.error("--plain is the logistic-regression loop")
    args.dtype = np.float32 if args.dtype == "f32" else np.float64
    if args.model == "logistic":
        args.classes = 2

    if args.mpi:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()

        def allreduce(a):
            out = np.empty_like(a)
            comm.Allreduce(a, out, op=MPI.SUM)
            return out

        barrier, clock = comm.Barrier, MPI.Wtime
    else:
        rank, size = 0, 1
        allreduce, barrier, clock = (lambda a: a), (lambda: None), time.perf_counter

    # This rank's share of every global batch: batch t's rows split in contiguous shares.
    steps = -(-args.samples // args.batch)
    bounds = []
    for t in range(steps):
        rows = min(args.batch, args.samples - t * args.batch)
        base, extra = divmod(rows, size)
        bounds.append((rows, base + (rank < extra)))
    rng = np.random.default_rng([args.seed, rank])
    x, y = make_data(args, sum(share for _, share in bounds), rng)
    test_x, test_y = make_data(args, args.test_samples // size, rng)
    params = init_params(args)
    forward = logistic if args.model == "logistic" else mlp
    sizes = [p.size for p in params]
    split = np.cumsum(sizes)[:-1]

    if args.plain:
        return plain(args, x, y, test_x, test_y, bounds, allreduce, barrier, clock, rank, size)
    barrier()
    begin = clock()
    for epoch in range(args.epochs):
        seen = np.zeros(3)
        offset = 0
        for rows, share in bounds:
            xb, yb = x[offset : offset + share], y[offset : offset + share]
            offset += share
            loss, correct, grads = forward(params, xb, yb, True)
            flat = allreduce(np.concatenate([g.ravel() for g in grads]))
            for p_, g in zip(params, np.split(flat, split)):
                p_ -= args.dtype(args.lr / rows) * g.reshape(p_.shape)
            seen += (loss, correct, share)
        loss, correct, _ = forward(params, test_x, test_y, False)
        seen, tested = np.split(allreduce(np.concatenate([seen, [loss, correct, len(test_y)]])), 2)
    wall = clock() - begin
    if args.mpi:
        wall = comm.allreduce(wall, op=MPI.MAX)
    if rank == 0:
        print(
            f"peer={'mpi4py' if args.mpi else 'numpy'} ranks={size} model={args.model} "
            f"wall_s={wall:.6f} loss={seen[0] / seen[2]:.6f} test_accuracy={tested[1] / tested[2]:.6f}"
        )


def plain(args, x, y, test_x, test_y, bounds, allreduce, barrier, clock, rank, size):
    """The bare loop of the module docstring; accuracy is measured after the clock stops."""
    w = np.zeros(args.features, args.dtype)
    y = y.astype(args.dtype)
    barrier()
    begin = clock()
    for epoch in range(args.epochs):
        offset = 0
        for rows, share in bounds:
            xb, yb = x[offset : offset + share], y[offset : offset + share]
            offset += share
            w -= args.dtype(args.lr / rows) * allreduce(xb.T @ (1 / (1 + np.exp(-(xb @ w))) - yb))
    wall = clock() - begin
    correct = allreduce(np.array([np.sum((test_x @ w > 0) == (test_y == 1)), len(test_y)], np.float64))
    if size > 1:
        from mpi4py import MPI

        wall = MPI.COMM_WORLD.allreduce(wall, op=MPI.MAX)
    if rank == 0:
        print(f"peer=plain ranks={size} model=logistic wall_s={wall:.6f} test_accuracy={correct[0] / correct[1]:.6f}")


if __name__ == "__main__":
    main()
