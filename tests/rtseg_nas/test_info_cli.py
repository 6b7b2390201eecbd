import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtseg_nas.cli import COMMANDS
from rtseg_nas.cli._args import emit
from rtseg_nas.cli._main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, timeout=120)


def run_in_process(capsys, *args):
    """The verb through rtseg_nas.cli.main here (no interpreter start, no second import of PyTorch):
    (exit code, stdout, stderr). An exception main did not turn into an error line propagates."""
    from rtseg_nas.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_and_config_file_round_trip(tmp_path, capsys):
    code, out, err = run_in_process(capsys, "info", "--arch", "paper", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["params"] == 1_906_507
    path = tmp_path / "paper.json"
    path.write_text(out)
    again = json.loads(run_in_process(capsys, "info", "--arch", str(path), "--json")[1])
    assert again == data


def test_info_table_and_clean_error(capsys):
    assert "1,471,921" in run_in_process(capsys, "info", "--arch", "unext")[1]
    code, _, err = run_in_process(capsys, "info", "--arch", "papr")
    assert code == 2
    assert "Did you mean 'paper'" in err and "Traceback" not in err


def test_top_level_help_lists_every_verb():
    from rtseg_nas.cli import COMMANDS

    top = run_cli("--help")
    assert top.returncode == 0, top.stderr
    verbs = top.stdout.split("<verb>\n", 1)[1]  # "    info      print a model config ..."
    listed = [line.split()[0] for line in verbs.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_each_verb_builds_its_help(verb):
    # Every module named in COMMANDS must import and describe its options (no verb is skipped).
    _, subparsers = build_parser(verb)
    text = subparsers[verb].format_help()
    assert text.startswith("usage: ") and text.split()[2] == verb  # "usage: <prog> <verb> ..."
    assert len([a for a in subparsers[verb]._actions if a.option_strings]) > 2  # --help, --debug and its own


def test_a_verb_whose_module_is_missing_fails_the_parser(monkeypatch):
    monkeypatch.setitem(COMMANDS, "ghost", ("rtseg_nas.cli.ghost", "a verb whose module was deleted"))
    with pytest.raises(ModuleNotFoundError, match="rtseg_nas.cli.ghost"):
        build_parser("ghost")


def test_json_dash_prints_only_json_and_a_path_gets_the_same_payload(tmp_path, capsys):
    payload = {"params": 3, "rows": [1, 2]}
    emit("-", payload, lambda: print("TABLE"))
    assert json.loads(capsys.readouterr().out) == payload
    emit(str(tmp_path / "out.json"), payload, lambda: print("TABLE"), what="report")
    assert capsys.readouterr().out.splitlines() == ["TABLE", f"report written to {tmp_path / 'out.json'}"]
    assert json.loads((tmp_path / "out.json").read_text()) == payload
    emit(None, payload, lambda: print("TABLE"))
    assert capsys.readouterr().out == "TABLE\n"
