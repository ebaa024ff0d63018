"""Exports the data sets that ship inside scikit-learn (digits, breast_cancer, iris) into the
HDF5 layout of `mpi-sgd train --data`, with a fixed, seeded train/test split, and as CSV.

    python -m analysis.datasets OUT_DIR

writes OUT_DIR/NAME.h5 (X, y, X_test, y_test, feature_names, label_values) and OUT_DIR/NAME.csv
(a header, the feature columns and a `label` column; the training rows, then the test rows),
so that `mpi-sgd convert NAME.csv NAME.h5 --test-fraction 0.25` makes the same split.
"""
import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

LOADERS = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "iris": datasets.load_iris,
}
TEST_FRACTION = 0.25
SEED = 0


def split(name):
    """(X_train, X_test, y_train, y_test) of a data set: stratified, seeded, with exactly
    round(n * TEST_FRACTION) test rows (what `mpi-sgd convert --test-fraction` takes)."""
    bunch = LOADERS[name]()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    test_rows = int(round(len(y) * TEST_FRACTION))
    parts = train_test_split(x, y, test_size=test_rows, random_state=SEED, stratify=y)
    return parts, [str(f) for f in bunch.feature_names]


def export(name, out_dir):
    (x, x_test, y, y_test), features = split(name)
    with h5py.File(out_dir / f"{name}.h5", "w") as f:
        f["X"], f["y"], f["X_test"], f["y_test"] = x, y, x_test, y_test
        f["feature_names"] = np.array(features, dtype=h5py.string_dtype())
        f["label_values"] = np.unique(np.concatenate([y, y_test]))
        f.attrs["source"] = f"sklearn.datasets.load_{name}"
        f.attrs["split"] = f"train_test_split(test_size={len(y_test)}, random_state={SEED}, stratify=y)"
    header = ",".join(f.replace(",", " ") for f in features) + ",label"
    table = np.column_stack([np.vstack([x, x_test]), np.concatenate([y, y_test])])
    # %.17g writes every float64 so that parsing gives back the same bits.
    np.savetxt(out_dir / f"{name}.csv", table, delimiter=",", header=header, comments="",
               fmt=["%.17g"] * x.shape[1] + ["%d"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m analysis.datasets", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", choices=sorted(LOADERS), action="append", help="export these only")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(LOADERS):
        export(name, args.out_dir)
        print(f"wrote {args.out_dir / name}.h5 and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
