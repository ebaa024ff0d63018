"""python -m analysis report STUDY_DIR [--out DIR] [--include-oversubscribed]
python -m analysis compare STUDY_DIR [--target ACCURACY] [--out DIR]
python -m analysis emulated STUDY_DIR [--out DIR] [--include-oversubscribed]
python -m analysis extrap STUDY_DIR [--out DIR]"""
import argparse
import sys
from pathlib import Path

from .compare import write_comparison
from .emulated import write_emulated_report
from .extrap import export
from .report import size_folders, write_family_report, write_report
from .runs import StudyError, load_study

OVERSUBSCRIBED_HELP = "fit runs with more ranks than cores on a host too (marked in the report)"


def report(args):
    """One study, or one per data-set size (`make strong SIZES=...`) and their family."""
    subs = size_folders(args.study) if Path(args.study).is_dir() else []
    if subs:
        studies = [load_study(d, args.include_oversubscribed) for d in subs]
        for st in studies:
            write_report(st)
        return write_family_report(studies, args.study, args.out), [w for st in studies for w in st.warnings]
    study = load_study(args.study, args.include_oversubscribed)
    return write_report(study, args.out), study.warnings


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m analysis", description="Scaling-study reports from mpi-sgd run files.")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="tables, plots and report.md for one study folder")
    rep.add_argument("study", help="folder of run files (and/or bench-allreduce sweeps), or of samples-N folders")
    rep.add_argument("--out", help="where to write (default: the study folder)")
    rep.add_argument("--include-oversubscribed", action="store_true", help=OVERSUBSCRIBED_HELP)
    cmp = sub.add_parser("compare", help="training algorithms side by side: accuracy against time and bytes")
    cmp.add_argument("study", help="folder of run files of one workload (make compare-algorithms)")
    cmp.add_argument("--target", type=float, help="test accuracy to time (default: the best all runs reached, less 0.005)")
    cmp.add_argument("--out", help="where to write (default: the study folder)")
    emu = sub.add_parser("emulated", help="models fitted on an emulated cluster, checked where they were not fitted")
    emu.add_argument("study", help="the folder make emulated-study wrote")
    emu.add_argument("--out", help="where to write (default: the study folder)")
    emu.add_argument("--include-oversubscribed", action="store_true", help=OVERSUBSCRIBED_HELP)
    ext = sub.add_parser("extrap", help="the measurements in Extra-P's JSON Lines format (extrap --json FILE)")
    ext.add_argument("study", help="a study folder")
    ext.add_argument("--out", help="where to write (default: the study folder)")
    args = parser.parse_args(argv)
    warnings = []
    try:
        if args.command == "compare":
            paths = [write_comparison(args.study, args.target, args.out)]
        elif args.command == "emulated":
            paths = [write_emulated_report(args.study, args.out, args.include_oversubscribed)]
        elif args.command == "extrap":
            paths = export(args.study, args.out)
        else:
            path, warnings = report(args)
            paths = [path]
    except StudyError as e:
        print(f"analysis: {e}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"analysis: warning: {w}", file=sys.stderr)
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
