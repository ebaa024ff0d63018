"""`make compare-algorithms` on a small workload, then the comparison: every algorithm on every
rank count (async-ps from 2 ranks), times and bytes that are the run files' own, a target every
run reached, and the plot."""
import csv
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np

from analysis import compare

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = "--model mlp --hidden 16 --samples 3000 --test-samples 500 --epochs 3 --lr 0.05"


def test_compare_algorithms_then_report(tmp_path):
    study = tmp_path / "compare"
    env = dict(os.environ, WORKLOAD=WORKLOAD)
    result = subprocess.run(["make", "--no-print-directory", "compare-algorithms", "RANKS=1 2", f"STUDY={study}"],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    names = sorted(p.name for p in study.glob("*.h5"))
    expected = sorted(f"{a}-p{p}.h5" for a in ("sync", "local", "easgd", "fedavg", "async-ps") for p in (1, 2)
                      if not (a == "async-ps" and p == 1))
    assert names == expected
    rows = list(csv.DictReader(open(study / "time_to_accuracy.csv")))
    assert len(rows) == 9
    assert all(r["seconds"] != "" for r in rows), "the default target is one every run reached"
    by_name = {(r["algorithm"], int(r["ranks"])): r for r in rows}
    with h5py.File(study / "sync-p2.h5") as f:
        steps, evals = f["timings/step"][()], f["timings/eval"][()]
        per_epoch = len(steps) // len(evals)
        seconds = sum(steps[e * per_epoch:(e + 1) * per_epoch].sum(axis=0).max() + evals[e].max()
                      for e in range(len(evals)))
        sent = int(f["comm/bytes_sent"][()].sum())
    assert np.isclose(float(by_name[("sync", 2)]["total_seconds"]), seconds, rtol=1e-12)
    assert int(by_name[("sync", 2)]["total_bytes"]) == sent
    with h5py.File(study / "async-ps-p2.h5") as f:
        sent = int(f["comm/bytes_sent"][()].sum() + f["async/server_bytes_sent"][()].sum())
    assert int(by_name[("async-ps", 2)]["total_bytes"]) == sent
    assert by_name[("local", 1)]["algorithm"] == "local"
    assert (study / "accuracy.png").stat().st_size > 0
    assert "| easgd | 2 |" in (study / "compare.md").read_text()


def test_the_first_epoch_at_the_target_is_the_one_reported():
    curve = compare.Curve("sync", 2, Path("x.h5"), np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]),
                          np.array([0.5, 0.9, 0.95]), False)
    assert compare.first_reaching(curve, 0.9) == (2.0, 20.0)
    assert compare.first_reaching(curve, 0.99) is None
