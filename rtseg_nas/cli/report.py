"""Build a study's report: feasible Pareto fronts, hypervolume, plots, tables and one HTML page.

Reads STUDY_DIR (trials/*/candidate.json, compressed/*/candidate.json, study.json, history.csv,
environment.json) and writes STUDY_DIR/report/: dice_fps, dice_macs, dice_params and hypervolume
plots (PNG and SVG), front.csv/.md, candidates.csv, summary.json and a self-contained report.html
(images embedded). Prints the path of the report.

Example:
  python run.py report --study runs/demo/study
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import add_json_out, write_json_out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, metavar="DIR", help="study directory written by search (and compress)")
    p.add_argument(
        "--out", metavar="DIR", help="output directory: new, empty or an earlier report (default: STUDY_DIR/report)"
    )
    p.add_argument("--overwrite", action="store_true", help="write the report into a folder holding other files")
    add_json_out(p, "the summary (front, ship choice, hypervolume; also STUDY_DIR/report/summary.json)")


def run(args: argparse.Namespace) -> int:
    from reports import build_report, compute_report, report_summary

    path = build_report(args.study, args.out, overwrite=args.overwrite)
    summary = report_summary(compute_report(args.study))
    if args.json:
        write_json_out(args.json, summary)
        if args.json == "-":
            return 0
    ship = summary["ship"]
    print(f"front: {', '.join(summary['front']) or '(empty)'}")
    if ship["best"]:
        print(f"best feasible Dice: {ship['best']} ({ship['best_dice']:.4f})")
    if ship["fastest_within_tolerance"]:
        print(f"fastest within {ship['tolerance_dice']:g} Dice of it: {ship['fastest_within_tolerance']}")
    print(f"report: {path}")
    return 0
