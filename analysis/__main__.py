"""python -m analysis report STUDY_DIR [--out DIR]
python -m analysis compare STUDY_DIR [--target ACCURACY] [--out DIR]"""
import argparse
import sys

from .compare import write_comparison
from .report import write_report
from .runs import StudyError, load_study


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m analysis", description="Scaling-study reports from mpi-sgd run files.")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="tables, plots and report.md for one study folder")
    rep.add_argument("study", help="folder of run files (and/or bench-allreduce sweeps)")
    rep.add_argument("--out", help="where to write (default: the study folder)")
    cmp = sub.add_parser("compare", help="training algorithms side by side: accuracy against time and bytes")
    cmp.add_argument("study", help="folder of run files of one workload (make compare-algorithms)")
    cmp.add_argument("--target", type=float, help="test accuracy to time (default: the best all runs reached, less 0.005)")
    cmp.add_argument("--out", help="where to write (default: the study folder)")
    args = parser.parse_args(argv)
    if args.command == "compare":
        try:
            path = write_comparison(args.study, args.target, args.out)
        except StudyError as e:
            print(f"analysis: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0
    try:
        study = load_study(args.study)
        path = write_report(study, args.out)
    except StudyError as e:
        print(f"analysis: {e}", file=sys.stderr)
        return 2
    for w in study.warnings:
        print(f"analysis: warning: {w}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
