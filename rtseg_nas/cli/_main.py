from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# verb -> (module under cli/, one-line help). Modules are imported only when their verb runs,
# so `rtseg-nas info` does not pay for onnxruntime or optuna.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("rtseg_nas.cli.info", "print a model config and its parameter count"),
    "train": ("rtseg_nas.cli.train", "train a model on a dataset (synthetic by default)"),
    "evaluate": ("rtseg_nas.cli.evaluate", "evaluate a checkpoint: Dice, Jaccard, ASD, HD95, |dAoP|"),
    "export": ("rtseg_nas.cli.export", "export a model to ONNX (DSConv frozen, BN folded, parity-checked)"),
    "profile": ("rtseg_nas.cli.profile", "count params/MACs and measure latency locally, on a Jetson, or estimate it"),
    "bench": ("rtseg_nas.cli.bench", "compare runtimes and compressed variants in one run (medians, ratios)"),
    "search": ("rtseg_nas.cli.search", "multi-objective architecture search (Optuna), resumable"),
    "validate": ("rtseg_nas.cli.validate", "retrain a search's front and paper at a full budget, test split, latency"),
    "supernet": ("rtseg_nas.cli.supernet", "one-shot search: train a supernet, search and extract its subnets"),
    "prune": ("rtseg_nas.cli.prune", "structured pruning (Torch-Pruning) with fine-tuning"),
    "quantize": ("rtseg_nas.cli.quantize", "INT8/FP16 ONNX and DSConv low-bit quantization"),
    "report": ("rtseg_nas.cli.report", "Pareto fronts, plots, tables and an HTML report for a study"),
    "demo": ("rtseg_nas.cli.demo", "the whole pipeline on synthetic data, ending with a report"),
    "latency-table": (
        "rtseg_nas.cli.latency_table",
        "build or show a kernel latency table (--target predict:TABLE); remeasure a predicted front",
    ),
}


EXIT_STATUS = """exit status:
  0    done
  1    the run failed: an input file missing, unreadable or damaged (checkpoint, ONNX, data, study),
       a data error, the device unreachable or refusing the connection, a runtime failure
  2    usage error: an unknown verb or option, an option's value or combination, a config file's
       fields, an output folder that needs --overwrite or cannot be written
  130  interrupted (Ctrl-C); 141: the reader of the output left (`| head`)"""


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The full parser; with ``only``, just that verb's options are built (some need heavy imports)."""
    prog = _prog()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="rtseg-nas: architecture search, compression and profiling for RTSeg-Net.",
        epilog=f"Run '{prog} <verb> --help' for the options of each verb.\n\n{EXIT_STATUS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser, default=False)
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    subparsers = {}
    for verb, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)  # a missing verb module is an error, never skipped
        p = sub.add_parser(
            verb,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p, default=argparse.SUPPRESS)  # before or after the verb, the same options
        if only is None or only == verb:
            module.add_arguments(p)
        p.set_defaults(_module=module)
        subparsers[verb] = p
    return parser, subparsers


def _add_common(p: argparse.ArgumentParser, *, default) -> None:
    """The options every verb has. On a verb they default to SUPPRESS so that a value given
    before the verb (``rtseg-nas --quiet train``) is not reset by the verb's own default."""
    p.add_argument("--version", action="version", version=f"rtseg-nas {_version()}")
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")
    p.add_argument("--quiet", "-q", action="store_true", default=default, help="only warnings, errors and the results")
    p.add_argument(
        "--no-progress",
        action="store_true",
        default=default,
        help="no progress bars (they are shown only when stderr is a terminal, and never with --quiet)",
    )


def show_progress(args: argparse.Namespace, stream=None) -> bool:
    """The one rule for progress bars: on a terminal only, and not with --no-progress or --quiet."""
    stream = sys.stderr if stream is None else stream
    if getattr(args, "no_progress", False) or getattr(args, "quiet", False):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "rtseg-nas" if name in ("", "-c", "__main__.py") or name.endswith("pytest") else name


def _version() -> str:
    from rtseg_nas import __version__

    return __version__


def strategy_alias(argv: list[str]) -> list[str]:
    """``search --strategy supernet ...`` is ``supernet search ...`` (one search verb for those who expect one);
    ``--strategy multi-trial`` is the search itself. Anything else is left to the parser to refuse."""
    verb_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if verb_at is None or argv[verb_at] != "search":
        return list(argv)
    out, strategy, i = list(argv), None, verb_at + 1
    while i < len(out):
        if out[i] == "--strategy" and i + 1 < len(out):
            strategy = out[i + 1]
            if strategy in ("supernet", "multi-trial"):
                del out[i : i + 2]
                continue
        elif out[i].startswith("--strategy="):
            strategy = out[i].partition("=")[2]
            if strategy in ("supernet", "multi-trial"):
                del out[i]
                continue
        i += 1
    if strategy == "supernet":
        out[verb_at : verb_at + 1] = ["supernet", "search"]
    return out


def main(argv: list[str] | None = None) -> int:
    from rtseg_core import SuiteError, configure_process

    # Before any verb imports PyTorch: the thread policy (rtseg_core._threads) for this process.
    try:
        configure_process()
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    argv = strategy_alias(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser, subparsers = build_parser(verb if verb in COMMANDS else "")
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    args.progress = show_progress(args)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(message)s",
    )
    if not debug:
        # paramiko logs every connection (INFO) and a failed one as ERROR lines holding a traceback;
        # the suite words each failure as its own `error:` line, so its logs show only with --debug
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except SuiteError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code  # 2: a usage error, 1: the run failed (rtseg_core._errors)
        usage = f"run '{_prog()} {args.verb} --help' for usage, or " if code == 2 else ""
        print(f"({usage}add --debug for a traceback)", file=sys.stderr)
        return code
    except KeyboardInterrupt as exc:
        # One line, no traceback; a verb that can resume says how in the interrupt's message (the search).
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rtseg-nas ... | head`: the reader left; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
