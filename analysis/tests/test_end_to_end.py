"""`make strong` on a small problem, then `make analyze`: every plot, and a report whose numbers
are the run files' (run from the repository root, as `make test` does)."""
import csv
import subprocess
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLOTS = ["speedup", "efficiency", "phases", "accuracy", "prediction"]  # prediction: with 2 fitted rank counts


def make(*args):
    result = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_strong_study_then_report(tmp_path):
    study = tmp_path / "strong"
    make("strong", "RANKS=1 2 3", "REPEAT=2", f"STUDY={study}", "ARGS=--samples 20000 --epochs 1 --batch 1000")
    runs = sorted(study.glob("p*-r*.h5"))
    assert [r.name for r in runs] == ["p1-r1.h5", "p1-r2.h5", "p2-r1.h5", "p2-r2.h5", "p3-r1.h5", "p3-r2.h5"]
    make("analyze", f"STUDY={study}")
    for plot in PLOTS:
        assert (study / f"{plot}.png").stat().st_size > 0 and (study / f"{plot}.svg").exists(), plot
    walls = {}
    for r in runs:
        with h5py.File(r) as f:
            walls.setdefault(int(f["config"].attrs["ranks"]), []).append(float(f["summary"].attrs["wall_s"]))
    rows = list(csv.DictReader(open(study / "scaling.csv")))
    assert [int(r["ranks"]) for r in rows] == [1, 2, 3]
    t1 = np.median(walls[1])
    for row in rows:
        p = int(row["ranks"])
        assert float(row["t_median_s"]) == np.median(walls[p])
        assert float(row["speedup"]) == t1 / np.median(walls[p])
    report = (study / "report.md").read_text()
    assert f"| 2 | 2 | {np.median(walls[2]):.4f}" in report
    # This test's machine may have fewer than 3 cores: oversubscribed rank counts are marked and
    # left out of the fit, and the report says so.
    over = {int(r["ranks"]): int(r["oversubscribed"]) for r in rows}
    assert over[1] == 0
    fitted = [p for p in (1, 2, 3) if not over[p]]
    assert f"Amdahl fit to {2 * len(fitted)} runs at {len(fitted)} rank counts" in report
    if over[3]:
        assert "| 3 (oversubscribed) |" in report and "left out of every fit" in report
