"""The fits recover what the synthetic studies were built with."""
import numpy as np
import pytest

from analysis import commmodel, laws, phases
from analysis.report import write_report
from analysis.runs import load_study, read_run

from .synth import write_run, write_sweep


def amdahl(t1, f, p):
    return t1 * (f + (1 - f) / p)


@pytest.mark.parametrize("f", [0.0, 0.05, 0.3])
def test_amdahl_fit_recovers_the_serial_fraction(tmp_path, f):
    rng = np.random.default_rng(1)
    for p in (1, 2, 4, 8, 16):
        for r in range(5):
            write_run(tmp_path / f"p{p}-r{r}.h5", p, amdahl(10.0, f, p) * (1 + 0.01 * rng.standard_normal()))
    study = load_study(tmp_path)
    groups = {k: np.array([x.wall_s for x in v]) for k, v in study.by_ranks().items()}
    p = np.concatenate([[k] * len(v) for k, v in groups.items()])
    t = np.concatenate(list(groups.values()))
    fitted, t1 = laws.fit_amdahl(p, t)
    assert fitted == pytest.approx(f, abs=0.01)
    assert t1 == pytest.approx(10.0, rel=0.02)
    lo, hi = laws.bootstrap(groups, lambda pp, tt: laws.fit_amdahl(pp, tt)[0], rounds=300)
    assert lo <= fitted <= hi and hi - lo < 0.05


def test_karp_flatt_equals_amdahl_f_on_exact_data():
    p = np.array([2, 4, 8])
    s = 1 / (0.1 + 0.9 / p)
    assert np.allclose(laws.karp_flatt(s, p), 0.1)
    assert np.isnan(laws.karp_flatt(np.array([1.0]), np.array([1]))[0])


def test_gustafson_fit_recovers_the_serial_share():
    p = np.array([1, 2, 4, 8, 16])
    assert laws.fit_gustafson(p, p - 0.2 * (p - 1)) == pytest.approx(0.2)


def test_alpha_beta_gamma_fit_recovers_the_model(tmp_path):
    coef = np.array([2e-6, 0.5e-9, 0.2e-9])
    for ranks in (4, 6):
        write_sweep(tmp_path / f"sweep{ranks}.h5", ranks, coef)
    study = load_study(tmp_path)
    points = [(a, float(n), sw.ranks, float(sw.latency[a][i])) for sw in study.sweeps
              for a in commmodel.ALGORITHMS for i, n in enumerate(sw.sizes)]
    assert np.allclose(commmodel.fit(points), coef, rtol=1e-6)
    assert study.kind == "allreduce"
    report = write_report(study).read_text()
    # At one P, beta absorbs gamma: b + g/2 for ring, b + g for recursive doubling.
    assert "| ring | 2.000 | 0.6000 | 0% |" in report
    assert "| rd | 2.000 | 0.7000 | 0% |" in report


def test_imbalance_and_waiting_follow_the_per_rank_compute(tmp_path):
    write_run(tmp_path / "run.h5", 4, 1.0, compute_per_rank=[1.0, 1.0, 1.0, 2.0], allreduce=0.5)
    b = phases.breakdown(read_run(tmp_path / "run.h5"))
    assert b.imbalance == pytest.approx(2.0 / 1.25)
    assert b.load_balance == pytest.approx(1.25 / 2.0)
    assert b.wait == pytest.approx(0.75)  # three ranks wait 1 s, one waits 0
    assert b.transfer == pytest.approx(0.5)
