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


def test_read_json_refuses_hostile_nesting_and_integers_naming_the_file(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # json.loads: RecursionError
    with pytest.raises(ConfigError, match=r"deep.json: JSON nested 100000 levels deep; .* at most 100$"):
        read_json(deep)
    big = tmp_path / "big.json"
    big.write_text('{"seed": 1,\n "conv_widths": [8, 16, ' + "9" * 5000 + "]}")  # int(): ValueError
    with pytest.raises(ConfigError, match=r"big.json: line 2: an integer of 5000 digits \(999999999999\.\.\.\)"):
        read_json(big)
    # what our files do hold still reads: brackets inside strings, NaN as Python writes it, 64-bit integers
    fine = tmp_path / "fine.json"
    fine.write_text(json.dumps({"note": "[" * 500, "x": float("nan"), "n": -(2**63), "nested": [[[[1]]]] * 50}))
    data = read_json(fine)
    assert data["note"] == "[" * 500 and data["x"] != data["x"] and data["n"] == -(2**63)


def test_brief_shows_any_value_without_failing():
    from rtseg_core import brief

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert brief(deep) == "[[<list of 1>]]"  # repr(): RecursionError
    assert brief(10**5000) == "an integer of about 5001 digits"  # repr(): ValueError
    assert brief("x" * 500).endswith("...") and len(brief("x" * 500)) == 80
    assert brief({"a": [1, 2, 3, 4, 5]}) == "{'a': [1, 2, 3, 4, ...]}" and brief(torch.zeros(2, 3)) == (
        "<Tensor of shape [2, 3]>"
    )


def test_a_file_holding_code_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    from rtseg_core import load_torch_data

    class Code:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"w": Code()}, tmp_path / "code.pt")
    with pytest.raises(ConfigError) as info:
        load_torch_data(tmp_path / "code.pt", what="checkpoint")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'code.pt'}: refused: the checkpoint holds Python objects (posix.system)")
    assert "weights_only" not in message and "False" not in message and not (tmp_path / "ran").exists()
