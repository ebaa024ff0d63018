"""The training loop's own cost, for two builds side by side: a step of about 10 us (logistic
regression, 20 features, 320 rows a step), 1 and 2 ranks, interleaved rounds. Reports the
median per-step time over steps and ranks (median, min and max over rounds), and the timer
overhead the run file records. Usage:

    python bench/step_overhead.py BINARY_A BINARY_B [--rounds 7]

Run from the repository root with the analysis venv (.venv/bin/python); launches through
jobs/launch.sh like every benchmark.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.runs import read_run  # noqa: E402  (the one reader of run files)

ARGS = ["train", "--samples", "320000", "--batch", "320", "--epochs", "2", "--test-samples", "1000"]


def one_run(binary, ranks, out):
    command = f'source jobs/launch.sh && launch {ranks} {binary} {" ".join(ARGS)} --out {out} --force'
    subprocess.run(["bash", "-c", command], check=True, capture_output=True)
    run = read_run(out)
    return float(np.median(run.step)), run.timer_overhead_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs=2)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    samples = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for ranks in (1, 2):
                for binary in args.binaries:
                    step, overhead = one_run(binary, ranks, os.path.join(tmp, "run.h5"))
                    samples.setdefault((binary, ranks), []).append((step, overhead))
    print("| binary | ranks | median step us (min-max over rounds) | timer_overhead_s us |")
    print("|---|---|---|---|")
    for (binary, ranks), values in samples.items():
        steps = [s * 1e6 for s, _ in values]
        overhead = statistics.median(o for _, o in values) * 1e6
        print(f"| {binary} | {ranks} | {statistics.median(steps):.2f} ({min(steps):.2f}-{max(steps):.2f}) | {overhead:.3f} |")


if __name__ == "__main__":
    main()
