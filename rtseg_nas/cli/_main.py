from __future__ import annotations

import argparse
import importlib
import logging
import sys

# verb -> (module under cli/, one-line help). Modules are imported only when their verb runs,
# so `run.py info` does not pay for onnxruntime or optuna.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("rtseg_nas.cli.info", "print a model config and its parameter count"),
    "train": ("rtseg_nas.cli.train", "train a model on a dataset (synthetic by default)"),
    "evaluate": ("rtseg_nas.cli.evaluate", "evaluate a checkpoint: Dice, Jaccard, ASD, HD95, |dAoP|"),
    "export": ("rtseg_nas.cli.export", "export a model to ONNX (DSConv frozen, BN folded, parity-checked)"),
    "profile": ("rtseg_nas.cli.profile", "count params/MACs and measure latency locally, on a Jetson, or estimate it"),
    "bench": ("rtseg_nas.cli.bench", "compare runtimes and compressed variants in one run (medians, ratios)"),
    "search": ("rtseg_nas.cli.search", "multi-objective architecture search (Optuna), resumable"),
    "prune": ("rtseg_nas.cli.prune", "structured pruning (Torch-Pruning) with fine-tuning"),
    "quantize": ("rtseg_nas.cli.quantize", "INT8/FP16 ONNX and DSConv low-bit quantization"),
    "report": ("rtseg_nas.cli.report", "Pareto fronts, plots, tables and an HTML report for a study"),
    "demo": ("rtseg_nas.cli.demo", "the whole pipeline on synthetic data, ending with a report"),
    "latency-table": ("rtseg_nas.cli.latency_table", "build or show a kernel latency table (--target predict:TABLE)"),
}


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The full parser; with ``only``, just that verb's options are built (some need heavy imports)."""
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="rtseg-nas: architecture search, compression and profiling for RTSeg-Net.",
        epilog="Run 'python run.py <verb> --help' for the options of each verb.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    subparsers = {}
    for verb, (module_name, help_text) in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        p = sub.add_parser(
            verb,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs")
        if only is None or only == verb:
            module.add_arguments(p)
        p.set_defaults(_module=module)
        subparsers[verb] = p
    return parser, subparsers


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # the verb is not built yet
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    from rtseg_core import SuiteError

    argv = sys.argv[1:] if argv is None else argv
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser, subparsers = build_parser(verb if verb in COMMANDS else "")
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(message)s",
    )
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except SuiteError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        print(f"(run 'python run.py {args.verb} --help' for usage, or add --debug for a traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
