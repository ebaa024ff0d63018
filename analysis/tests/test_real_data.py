"""Training on the data sets that ship with scikit-learn (exported by analysis/datasets.py)
reaches scikit-learn's own test accuracy on the same split and standardisation, on 1 and 3
ranks; a digits CSV converted by `mpi-sgd convert` trains to the same model as the export."""
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from analysis import datasets

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "mpi-sgd"
POINTS = 0.015  # allowed shortfall against scikit-learn's accuracy
ADAM_POINTS = 0.01  # the same optimiser as scikit-learn's MLPClassifier: within 1 point


def sklearn_mlp():
    """scikit-learn's MLPClassifier with its defaults: Adam, lr 0.001, L2 alpha 1e-4."""
    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=1000, random_state=0)


# (data set, mpi-sgd options, the scikit-learn model it is compared with, allowed shortfall)
CASES = {
    "digits-softmax": ("digits", "--model softmax --batch 64 --epochs 60 --lr 0.1 --momentum 0.9 --l2 0.001",
                       lambda: LogisticRegression(max_iter=5000), POINTS),
    "digits-mlp": ("digits", "--model mlp --hidden 64 --batch 64 --epochs 30 --lr 0.1 --momentum 0.9",
                   sklearn_mlp, POINTS),
    "digits-mlp-adam": ("digits", "--model mlp --hidden 64 --optimizer adam --lr 0.001 --batch 64 --epochs 60",
                        sklearn_mlp, ADAM_POINTS),
    "breast_cancer-logistic": ("breast_cancer", "--model logistic --batch 32 --epochs 50 --lr 0.1",
                               lambda: LogisticRegression(max_iter=5000), POINTS),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets")
    assert datasets.main([str(out)]) == 0
    return out


def launch(ranks, *args):
    """`launch` of jobs/launch.sh: mpirun with the root/oversubscription flags where needed."""
    command = f'source jobs/launch.sh && launch {ranks} "$@"'
    result = subprocess.run(["bash", "-c", command, "launch", str(BINARY), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return dict(pair.split("=", 1) for pair in result.stdout.strip().splitlines()[-1].split())


def sklearn_accuracy(path, make_model):
    with h5py.File(path) as f:
        x, y, x_test, y_test = (f[k][...] for k in ("X", "y", "X_test", "y_test"))
    scaler = StandardScaler().fit(x)
    return make_model().fit(scaler.transform(x), y).score(scaler.transform(x_test), y_test)


@pytest.mark.parametrize("case", sorted(CASES))
def test_reaches_scikit_learn_accuracy_on_1_and_3_ranks(exported, case):
    name, options, make_model, points = CASES[case]
    data = exported / f"{name}.h5"
    reference = sklearn_accuracy(data, make_model)
    accuracies = []
    for ranks in (1, 3):
        summary = launch(ranks, "train", "--data", str(data), "--standardize", *options.split())
        accuracies.append(float(summary["test_accuracy"]))
        assert accuracies[-1] >= reference - points, f"{case} on {ranks} ranks: {accuracies[-1]:.4f} vs scikit-learn {reference:.4f}"
    assert abs(accuracies[0] - accuracies[1]) < 1e-9, f"{case}: 1 and 3 ranks differ: {accuracies}"


def test_converted_csv_trains_to_the_same_model_as_the_export(exported, tmp_path):
    converted = tmp_path / "digits.h5"
    subprocess.run([str(BINARY), "convert", str(exported / "digits.csv"), str(converted), "--test-fraction",
                    str(datasets.TEST_FRACTION)], check=True, capture_output=True)
    with h5py.File(converted) as c, h5py.File(exported / "digits.h5") as e:
        for key in ("X", "y", "X_test", "y_test"):
            assert np.array_equal(c[key][...], e[key][...]), key
    params = []
    for data in (exported / "digits.h5", converted):
        out = tmp_path / f"run-{data.parent.name}.h5"
        launch(1, "train", "--data", str(data), "--model", "softmax", "--standardize", "--epochs", "5",
               "--batch", "64", "--out", str(out))
        with h5py.File(out) as f:
            params.append(f["model/params"][...])
    assert np.array_equal(params[0], params[1])
