import json
import os
import stat

import pytest
import torch

from rtseg_core import ConfigError, atomic_save_torch, atomic_write_json, atomic_write_text, read_json


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}
    assert os.listdir(path.parent) == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(path, "old")

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": Boom()})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_torch_save_loads_with_weights_only(tmp_path):
    path = atomic_save_torch({"w": torch.ones(2), "n": 3}, tmp_path / "c.pt")
    data = torch.load(path, weights_only=True)
    assert data["n"] == 3 and torch.equal(data["w"], torch.ones(2))


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        read_json(bad)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / f"report_{umask:o}.html", "<p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # 0644 under the usual 022, not 0600


def test_replacing_a_file_keeps_its_mode(tmp_path):
    path = atomic_write_text(tmp_path / "shared.json", "{}")
    path.chmod(0o664)
    atomic_write_json(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
