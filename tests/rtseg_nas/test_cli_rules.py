"""The rules every verb follows: light --help, --version, one --json, one progress rule, --quiet,
and the installed ``rtseg-nas`` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rtseg_nas.cli import COMMANDS, main
from rtseg_nas.cli._main import build_parser, show_progress

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "onnxruntime", "optuna", "torch_pruning", "matplotlib")

# A fresh interpreter per verb: which modules did `<verb> --help` import?
_PROBE = """
import contextlib, io, json, sys
from rtseg_nas.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main([{verb!r}, "--help"])
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env()
    )


def _env() -> dict[str, str]:
    # This checkout first, whatever copy of the package pip installed.
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_help_imports_no_heavy_module(verb):
    out = _python(_PROBE.format(verb=verb, heavy=HEAVY))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"{verb} --help imports heavy modules"


def test_choice_lists_match_the_compression_tables():
    from compress import ACTIVATION_TYPES, CALIBRATIONS, GRAPH_FORMATS, TARGETS, QuantFormat, list_importances
    from rtseg_nas.cli import _choices

    assert list(_choices.IMPORTANCES) == list_importances()
    assert list(_choices.QUANT_FORMATS) == [f.value for f in QuantFormat]
    assert list(_choices.QUANT_TARGETS) == list(TARGETS)
    assert tuple(_choices.CALIBRATIONS) == tuple(CALIBRATIONS)
    assert tuple(_choices.ACTIVATION_TYPES) == tuple(ACTIVATION_TYPES)
    assert tuple(_choices.GRAPH_FORMATS) == tuple(GRAPH_FORMATS)


def test_every_json_option_means_the_same():
    with_json = []
    for verb in COMMANDS:
        _, subparsers = build_parser(verb)
        action = next((a for a in subparsers[verb]._actions if "--json" in a.option_strings), None)
        if action is None:
            continue
        with_json.append(verb)
        assert action.nargs == "?" and action.const == "-", verb  # bare --json = '-' = stdout
        assert "'-'" in action.help and "stdout" in action.help, verb
    # the README's list; train, search, supernet, demo and latency-table write their own files instead
    assert sorted(with_json) == sorted(
        ["info", "export", "evaluate", "profile", "bench", "prune", "quantize", "report", "validate"]
    )


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_verb_answers_version(verb, capsys):
    from rtseg_nas import __version__

    parser, _ = build_parser(verb)
    argv = [verb, "train", "--version"] if verb == "supernet" else [verb, "--version"]
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"rtseg-nas {__version__}"


def test_json_dash_prints_only_json_and_a_path_writes_a_file(tmp_path):
    run = [sys.executable, str(ROOT / "run.py"), "info", "--arch", "unext"]
    out = subprocess.run([*run, "--json", "-"], capture_output=True, text=True, timeout=120, env=_env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"] == 1_471_921  # nothing but the JSON on stdout
    path = tmp_path / "info.json"
    out = subprocess.run([*run, "--json", str(path)], capture_output=True, text=True, timeout=120, env=_env())
    assert json.loads(path.read_text())["params"] == 1_471_921 and "1,471,921" in out.stdout


def test_evaluate_json_dash_prints_the_summary_and_still_writes_the_files(tmp_path):
    run = [sys.executable, str(ROOT / "run.py")]
    out_dir = tmp_path / "tiny"
    # the checkpoint is trained in-process (the subject is evaluate's stdout, which needs its own process)
    train = ["-q", "train", "--data", "synthetic:12", "--size", "32", "--epochs", "1", "--batch-size", "4"]
    assert main([*train, "--out", str(out_dir)]) == 0
    ckpt = out_dir / "checkpoint.pt"
    out = subprocess.run(
        [*run, "evaluate", "--checkpoint", str(ckpt), "--json", "-"], capture_output=True, text=True, timeout=300,
        env=_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)  # only JSON on stdout
    assert summary["split"] == "test" and 0.0 <= summary["mean"]["dice"] <= 1.0
    assert json.loads((out_dir / "evaluation_test.json").read_text()) == summary
    assert (out_dir / "evaluation_test.csv").is_file()


def test_train_without_a_terminal_logs_each_epoch_and_its_splits(tmp_path):
    """Under nohup or CI (no terminal, so no bar) a run is not silent until "done": one line per
    epoch and one per split, at the default log level."""
    run = [sys.executable, str(ROOT / "run.py"), "train", "--data", "synthetic:12", "--size", "32", "--epochs", "2"]
    out = subprocess.run(
        [*run, "--batch-size", "4", "--out", str(tmp_path / "t")], capture_output=True, text=True, timeout=300,
        env=_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"], out.stderr
    assert all("loss " in ln and "val Dice " in ln and " s (" in ln for ln in epochs), epochs
    assert "synthetic:12 train: 9 images" in lines and "synthetic:12 val: 1 image" in lines, out.stderr
    quiet = subprocess.run(
        [*run, "-q", "--batch-size", "4", "--out", str(tmp_path / "q")], capture_output=True, text=True, timeout=300,
        env=_env(),
    )  # fmt: skip
    assert quiet.returncode == 0 and "epoch " not in quiet.stderr, quiet.stderr


@pytest.mark.parametrize("argv", [["-q", "info"], ["info", "-q"], ["--quiet", "info", "--no-progress"]])
def test_common_options_work_before_or_after_the_verb(argv):
    parser, _ = build_parser("info")
    args = parser.parse_args(argv)
    assert args.quiet and not show_progress(args)


def test_progress_only_on_a_terminal():
    parser, _ = build_parser("info")
    master, slave = os.openpty()  # a real terminal
    try:
        with os.fdopen(slave, "w", closefd=True) as tty:
            assert show_progress(parser.parse_args(["info"]), tty)
            assert not show_progress(parser.parse_args(["info", "--no-progress"]), tty)
            assert not show_progress(parser.parse_args(["info", "--quiet"]), tty)
    finally:
        os.close(master)
    with open(os.devnull, "w") as not_a_tty:  # a pipe or a file: no bars, no flag needed
        assert not show_progress(parser.parse_args(["info"]), not_a_tty)


def test_version():
    from rtseg_nas import __version__

    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--version"], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert out.returncode == 0 and out.stdout.strip() == f"rtseg-nas {__version__}"


def test_the_installed_console_command():
    exe = shutil.which("rtseg-nas")
    assert exe, "rtseg-nas is not on PATH: install the package (pip install -e .)"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, env=_env(), cwd=ROOT)
    assert version.returncode == 0 and version.stdout.startswith("rtseg-nas "), version.stderr
    info = subprocess.run(
        [exe, "info", "--arch", "paper", "--json"], capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT
    )
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["params"] == 1_906_507
    usage = subprocess.run([exe, "nosuchverb"], capture_output=True, text=True, timeout=60, env=_env(), cwd=ROOT)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: rtseg-nas")


def test_exit_status_2_for_usage_errors_and_1_for_failed_runs(tmp_path, capsys):
    """The epilog of `rtseg-nas --help`: 2 = the command line cannot work as given, 1 = the run
    failed (a missing input, the data, the device)."""
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    cases = [
        (["profile", "--size", "0"], 2, "argument --size"),  # argparse
        (["prune", "--checkpoint", "c.pt", "--ratio", "0.3"], 2, "--out: required"),  # option combination
        (["profile", "--arch", "papr", "--no-count"], 2, "Did you mean 'paper'"),  # option value
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt")], 1, "none.pt: checkpoint not found"),
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", "psfhs:/nonexistent"], 1, "not found"),
        (["train", "--out", str(tmp_path / "t"), "--data", f"jnu-ifm:{tmp_path / 'nodata'}"], 1, "does not exist"),
        (
            ["profile", "--arch", "paper", "--size", "32", "--no-count", "--target", f"ssh://u@127.0.0.1:{port}",
             "--known-hosts", str(known), "--connect-timeout", "5"],
            1, "refused",
        ),
    ]  # fmt: skip
    for argv, status, fragment in cases:
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse exits by itself
            rc = exc.code
        err = capsys.readouterr().err
        assert rc == status and fragment in err and "Traceback" not in err, (argv, rc, err[-1500:])
    parser, _ = build_parser()
    epilog = parser.format_help()
    assert "exit status:" in epilog and "2    usage error" in epilog and "1    the run failed" in epilog


def test_printed_hints_name_the_installed_command():
    """Hints a user copies must work outside the checkout: `rtseg-nas <verb>`, never `python run.py <verb>`
    (the report's pages are checked by the reports tests)."""
    packages = [
        "compress",
        "models",
        "profiling",
        "rtseg_core",
        "rtseg_nas",
        "search_spaces",
        "segmentation",
        "validate",
    ]
    stale = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "run.py " in line and "same entry" not in line and path.name != "_supernet_search.py"
    ]
    assert stale == [], stale
