"""Build a study's report: feasible Pareto fronts, hypervolume, plots, tables and one HTML page.

Reads STUDY_DIR (trials/*/candidate.json, compressed/*/candidate.json, study.json, history.csv,
environment.json) and writes STUDY_DIR/report/: dice_fps, dice_macs, dice_params and hypervolume
plots (PNG and SVG), front.csv/.md, candidates.csv, summary.json and a self-contained report.html
(images embedded). A multi-fidelity study also gets rungs.png/.svg, rungs.csv and rung_ranks.csv
(how rank changes with budget). Prints the path of the report.

--compare DIR DIR ... --out OUT compares several studies' VALIDATED fronts instead (each study
must have run `validate`, all with the same budget and latency conditions): strategy, search
compute as recorded, hypervolume under one reference point, best validated candidate, the study's
own paper and whether a candidate is within 0.5 Dice points of it at >= 1.5x lower latency.
Writes OUT/compare.csv, compare.json, compare.png/.svg and compare.html.

Examples:
  rtseg-nas report --study runs/demo/study
  rtseg-nas report --compare runs/fixed runs/multi runs/oneshot --out runs/compare
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import add_json_out, check_file_outputs, overwrite_help, write_json_out


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", metavar="DIR", help="study directory written by search (and compress)")
    which.add_argument(
        "--compare",
        nargs="+",
        metavar="DIR",
        help="two or more validated study directories: compare their validated fronts (needs --out)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output directory: new, empty or an earlier report (default with --study: STUDY_DIR/report)",
    )
    p.add_argument("--overwrite", action="store_true", help=overwrite_help("--out"))
    add_json_out(
        p,
        "the summary (front, ship choice, hypervolume; also STUDY_DIR/report/summary.json; with --compare: "
        "the comparison, also OUT/compare.json)",
    )


def run(args: argparse.Namespace) -> int:
    check_file_outputs(args, {"--json": args.json}, "study", "compare")
    if args.compare is not None:
        return _compare(args)
    from reports import build_report, compute_report, report_summary

    path = build_report(args.study, args.out, overwrite=args.overwrite)
    summary = report_summary(compute_report(args.study))
    if args.json:
        write_json_out(args.json, summary)
        if args.json == "-":
            return 0
    ship = summary["ship"]
    print(f"front: {', '.join(summary['front']) or '(empty)'}")
    if ship.get("pick"):
        basis = "validated" if ship["basis"] == "validated" else "PROXY-ONLY, not validated"
        fps = f"{ship['fps']:.1f} FPS" if ship.get("fps") is not None else "FPS not recorded"
        ms = f"{ship['latency_ms']:.2f} ms ({fps})" if ship.get("latency_ms") is not None else "no latency"
        dice = f"Dice {ship['dice']:.4f}" if ship.get("dice") is not None else "no Dice"
        print(f"ship ({basis}): {ship['pick']}, {ms}, {dice}; {ship['conditions']['text']}")
        print(f"  vs paper: {(ship['vs_paper'] or {}).get('text') or ship['vs_paper_missing']}")
        print(f"  {ship['runs']}")
        print(f"  file: {ship['file']} (in the study{'' if ship['file_found'] else ', NOT FOUND'})")
        if ship["export_command"]:
            print(f"  export for a Jetson Nano: {ship['export_command']}")
        if ship.get("menu"):
            print("  menu, the validated front against paper (fastest first):")
            for m in ship["menu"]:
                mark = " <- pick" if m["pick"] else ""
                print(f"    {m['name']}: {m['speed']}; Dice {m['dice']}{mark}")
    else:
        print("ship: no candidate is feasible and meets the constraints")
    print(f"report: {path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from rtseg_core import ConfigError

    if not args.out:
        raise ConfigError("--compare: give --out DIR for compare.csv, compare.json and compare.html")
    from reports import build_comparison

    path, info = build_comparison(args.compare, args.out, overwrite=args.overwrite)
    if args.json:
        write_json_out(args.json, info.to_dict())
        if args.json == "-":
            return 0
    ref = info.reference
    print("validated hypervolume per strategy (mean over its studies):")
    for g in info.groups:
        print(f"  {g.strategy}{' (baseline)' if g.baseline else ''}: {g.hypervolume_text()}")
        print(f"    vs random sampling: {g.baseline_text()}; search compute: {g.cpu_text()}")
    print(f"hypervolume of the validated fronts (reference Dice {ref[0]:.4f}, latency {ref[1]:.4g} ms):")
    for s in info.studies:
        print(f"  {s.label}: {s.hypervolume:.5g}  [{s.strategy}; {s.n_validated} validated]")
        print(f"    vs its own paper: {s.check.message}")
        print(f"    search compute: {s.compute.describe()}")
    print(f"comparison: {path}")
    return 0
