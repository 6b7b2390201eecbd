import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, timeout=120)


def test_info_json_and_config_file_round_trip(tmp_path):
    out = run_cli("info", "--arch", "paper", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["params"] == 1_906_507
    path = tmp_path / "paper.json"
    path.write_text(out.stdout)
    again = json.loads(run_cli("info", "--arch", str(path), "--json").stdout)
    assert again == data


def test_info_table_and_clean_error():
    out = run_cli("info", "--arch", "unext")
    assert "1,471,921" in out.stdout
    bad = run_cli("info", "--arch", "papr")
    assert bad.returncode == 2
    assert "Did you mean 'paper'" in bad.stderr and "Traceback" not in bad.stderr


def test_every_verb_has_help():
    from rtseg_nas.cli import COMMANDS

    top = run_cli("--help")
    assert top.returncode == 0
    for verb in COMMANDS:
        if (ROOT / "cli" / f"{verb}.py").exists():
            res = run_cli(verb, "--help")
            assert res.returncode == 0 and "usage:" in res.stdout, verb
