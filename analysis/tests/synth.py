"""Run files and sweeps with known properties, written in the formats mpi-sgd writes."""
import h5py
import numpy as np

from analysis import commmodel


def write_run(path, ranks, wall_s, steps=20, config=None, compute_per_rank=None, allreduce=0.001,
              samples_per_rank=0, accuracy=0.99, interrupted=False, overlapped=0.0, oversubscribed=False,
              hosts=1, grad_bytes=168):
    """A run file of `ranks` ranks taking `wall_s`; rank r computes compute_per_rank[r] seconds
    per step (default equal shares of 0.01 s), with `overlapped` seconds of communication in
    flight behind it (--overlap)."""
    if compute_per_rank is None:
        compute_per_rank = np.full(ranks, 0.01 / ranks)
    compute = np.tile(np.asarray(compute_per_rank, dtype=float), (steps, 1))
    wait = compute.max(axis=1, keepdims=True) - compute
    allreduce_t = wait + allreduce
    update = np.full((steps, ranks), 1e-5)
    cfg = dict(model="logistic", hidden="", data="synthetic", samples=1000, samples_per_rank=samples_per_rank,
               features=20, classes=2, test_samples=100, label_noise=0.0, epochs=1, batch=100, lr=0.1,
               momentum=0.0, l2=0.0, warmup_epochs=0.0, allreduce="mpi", average_every="off",
               dtype="f64", seed=42, log_every=0)
    cfg.update(config or {})
    cfg["ranks"] = ranks
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "mpi-sgd/1"
        f.attrs["oversubscribed"], f.attrs["hosts"] = np.uint64(oversubscribed), np.uint64(hosts)
        f.attrs["cpu_model"] = "Test CPU"
        f["ranks/cores_on_host"] = np.full(ranks, 2, dtype=np.uint64)
        c = f.create_group("config")
        for k, v in cfg.items():
            c.attrs[k] = v
        t = f.create_group("timings")
        t["compute"], t["allreduce"], t["update"] = compute, allreduce_t, update
        t["step"] = compute + allreduce_t + update
        t["exposed"], t["overlapped"] = allreduce_t, np.full((steps, ranks), float(overlapped))
        f["comm/bytes_sent"] = np.full((steps, ranks), 168, dtype=np.uint64)
        f["model/params"] = np.zeros(grad_bytes // 8)
        s = f.create_group("summary")
        s.attrs["wall_s"], s.attrs["steps"] = float(wall_s), steps
        s.attrs["loss"], s.attrs["test_accuracy"] = 0.1, accuracy
        s.attrs["interrupted"] = np.uint8(interrupted)
        s.attrs["timer_overhead_s"] = 1e-7


def write_sweep(path, ranks, coef, algorithms=commmodel.ALGORITHMS, sizes=None, iterations=3, hosts=None,
                oversubscribed=False, noise=None):
    """A bench-allreduce file whose latencies follow the alpha-beta-gamma model exactly (times
    `noise(alg, n)` where given), on `hosts` hosts (default one rank each)."""
    hosts = hosts or ranks
    sizes = np.array(sizes if sizes is not None else [8 << i for i in range(20)], dtype=np.uint64)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "mpi-sgd-bench/1"
        f.attrs["hosts"], f.attrs["oversubscribed"] = np.uint64(hosts), np.uint64(oversubscribed)
        b = f.create_group("bench")
        b.attrs["ranks"], b.attrs["dtype"] = ranks, "f64"
        b["sizes_bytes"] = sizes
        for alg in algorithms:
            model = "ring" if alg == "mpi" else alg  # the library: priced as a ring
            t = np.array([commmodel.predict(coef, model, float(n), ranks, ranks // hosts)
                          * (noise(alg, n) if noise else 1.0) for n in sizes])
            b[f"{alg}/latency_s"] = np.repeat(t[:, None, None], iterations, axis=1).repeat(ranks, axis=2)
