"""Study folders that cannot be analysed get a clear message, not a traceback; good ones get
every table and plot."""
import subprocess
import sys

import pytest

from analysis.__main__ import main
from analysis.runs import StudyError, load_study

from .synth import write_run


def run_cli(folder):
    return subprocess.run([sys.executable, "-m", "analysis", "report", str(folder)], capture_output=True, text=True)


def test_one_rank_count_is_refused(tmp_path):
    for r in range(3):
        write_run(tmp_path / f"r{r}.h5", 2, 1.0)
    with pytest.raises(StudyError, match="at least two rank counts"):
        load_study(tmp_path)
    result = run_cli(tmp_path)
    assert result.returncode == 2
    assert "at least two rank counts" in result.stderr and "Traceback" not in result.stderr


def test_mixed_configurations_are_refused(tmp_path):
    write_run(tmp_path / "a.h5", 1, 1.0)
    write_run(tmp_path / "b.h5", 2, 0.6, config={"lr": 0.5})
    with pytest.raises(StudyError, match="different configurations.*lr"):
        load_study(tmp_path)


def test_missing_repeats_are_reported_and_the_report_still_made(tmp_path, capsys):
    for r in range(3):
        write_run(tmp_path / f"p1-{r}.h5", 1, 1.0)
    write_run(tmp_path / "p2-0.h5", 2, 0.55)
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "unequal repeats" in err
    assert "Warning: unequal repeats" in (tmp_path / "report.md").read_text()


def test_interrupted_runs_and_checkpoints_are_left_out_with_a_warning(tmp_path):
    write_run(tmp_path / "p1.h5", 1, 1.0)
    write_run(tmp_path / "p2.h5", 2, 0.55)
    write_run(tmp_path / "p4.h5", 4, 0.1, interrupted=True)
    write_run(tmp_path / "p2.ckpt.h5", 2, 0.3)
    study = load_study(tmp_path)
    assert sorted(r.ranks for r in study.runs) == [1, 2]
    assert any("skipped 1 interrupted run(s)" in w and "p4.h5" in w for w in study.warnings)


def test_empty_and_foreign_folders(tmp_path):
    with pytest.raises(StudyError, match="no run files"):
        load_study(tmp_path)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(StudyError, match="not a readable HDF5 file"):
        load_study(tmp_path)
    with pytest.raises(StudyError, match="no such folder"):
        load_study(tmp_path / "missing")


def test_no_baseline_is_refused(tmp_path):
    write_run(tmp_path / "a.h5", 2, 1.0)
    write_run(tmp_path / "b.h5", 4, 0.6)
    with pytest.raises(StudyError, match="1-rank run"):
        load_study(tmp_path)


def test_a_strong_study_with_different_global_sizes_is_refused(tmp_path):
    write_run(tmp_path / "a.h5", 1, 1.0)
    write_run(tmp_path / "b.h5", 2, 0.6, config={"samples": 2000})
    with pytest.raises(StudyError, match="samples"):
        load_study(tmp_path)


def test_weak_study_gets_gustafson(tmp_path):
    for p in (1, 2, 4):
        for r in range(3):
            write_run(tmp_path / f"p{p}-{r}.h5", p, 1.0 + 0.1 * (p - 1), samples_per_rank=500,
                      config={"samples": 500 * p})
    assert main(["report", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Weak study")
    assert "Gustafson serial fraction" in report
    for name in ("scaled_speedup", "phases", "accuracy"):
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.svg").exists()


def test_overlapped_runs_get_the_exposed_and_in_flight_table(tmp_path):
    # 1 ms exposed, 3 ms in flight behind compute: 75 % of the communication's time in flight.
    write_run(tmp_path / "p1.h5", 1, 1.0, allreduce=0.001, overlapped=0.003)
    write_run(tmp_path / "p2.h5", 2, 0.6, allreduce=0.001, overlapped=0.003)
    assert main(["report", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "exposed communication" in report and "| 2 |" in report
    assert "75%" in report
    header = (tmp_path / "phases.csv").read_text().splitlines()[0]
    assert header.endswith("exposed_s,overlapped_s,in_flight_share")


def test_runs_without_overlap_have_no_overlap_table(tmp_path):
    write_run(tmp_path / "p1.h5", 1, 1.0)
    write_run(tmp_path / "p2.h5", 2, 0.6)
    assert main(["report", str(tmp_path)]) == 0
    assert "in flight behind compute" not in (tmp_path / "report.md").read_text()
