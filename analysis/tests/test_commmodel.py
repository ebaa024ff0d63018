"""The Python cost model (analysis/commmodel.py) against the Rust one (each algorithm's file in
src/comm/, printed by `mpi-sgd algorithms --ranks --bytes`): the same algorithms and the same
coefficients for a grid of P and n, so the two cannot drift apart."""
import csv
import io
import subprocess
from pathlib import Path

import pytest

from analysis import commmodel

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "mpi-sgd"
RANKS = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 64, 100, 1024]
BYTES = [8, 1000, 4096, 1 << 20, 3 * (1 << 24) + 8]


def rust_costs():
    assert BINARY.exists(), f"{BINARY} is missing: build it first (cargo build --release, as make test does)"
    ranks = ",".join(map(str, RANKS))
    sizes = ",".join(map(str, BYTES))
    result = subprocess.run([BINARY, "algorithms", "--ranks", ranks, "--bytes", sizes],
                            capture_output=True, text=True, check=True)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_the_same_algorithms_are_modelled():
    names = {row["algorithm"] for row in rust_costs()}
    assert names == set(commmodel.ALGORITHMS)


@pytest.mark.parametrize("row", rust_costs(), ids=lambda r: f"{r['algorithm']}-P{r['ranks']}-n{r['bytes']}")
def test_coefficients_match_the_rust_formulas(row):
    ours = commmodel.costs(row["algorithm"], float(row["bytes"]), int(row["ranks"]))
    theirs = (float(row["messages"]), float(row["bytes_sent"]), float(row["bytes_added"]))
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
