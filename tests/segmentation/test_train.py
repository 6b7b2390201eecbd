import csv
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from models import create_config, load_checkpoint, load_model
from rtseg_core import ConfigError
from segmentation import (
    EvalSummary,
    StopTraining,
    TrainConfig,
    TrainingDiverged,
    evaluate_checkpoint,
    load_split,
    load_train_config,
    train,
    validation_dice,
)

TINY = create_config("paper", conv_widths=(8, 8, 16), token_widths=(16, 24))


def tiny_train_config(**changes):
    base = dict(data="synthetic:24", size=32, epochs=2, batch_size=4, seed=3, device="cpu")
    return TrainConfig(**{**base, **changes})


def test_train_writes_a_plain_data_checkpoint_and_metrics(tmp_path):
    result = train(TINY, tiny_train_config(), tmp_path, progress=False)
    assert [e.epoch for e in result.epochs] == [1, 2]
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # plain data only
    assert raw["epoch"] == 2 and raw["config"] == TINY.to_dict()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["val_dice"] == result.epochs[-1].val_dice == metrics["epochs"][-1]["val_dice"]
    assert metrics["train"]["seed"] == 3 and metrics["device"] == "cpu"


def test_resume_keeps_the_history_and_runs_only_the_missing_epochs(tmp_path):
    first = train(TINY, tiny_train_config(), tmp_path, progress=False)
    more = train(TINY, tiny_train_config(epochs=3), tmp_path, resume=True, progress=False)
    assert [e.epoch for e in more.epochs] == [1, 2, 3]
    assert more.epochs[:2] == first.epochs  # epochs 1-2 come from the checkpoint, not re-run
    assert load_checkpoint(tmp_path / "checkpoint.pt").epoch == 3


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    def interrupt(entry):
        raise StopTraining  # as if the process had been killed after epoch 1's checkpoint

    full = train(TINY, tiny_train_config(epochs=2), tmp_path / "full", progress=False)
    train(TINY, tiny_train_config(epochs=2), tmp_path / "split", progress=False, on_epoch_end=interrupt)
    resumed = train(TINY, tiny_train_config(epochs=2), tmp_path / "split", resume=True, progress=False)
    assert resumed.epochs[-1].loss == pytest.approx(full.epochs[-1].loss, rel=1e-4)


def test_resume_with_another_arch_is_refused(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    other = TINY.replace(shift_size=3)
    with pytest.raises(ConfigError, match="different --arch"):
        train(other, tiny_train_config(epochs=2), tmp_path, resume=True, progress=False)


def test_diverging_loss_is_an_error(tmp_path):
    with pytest.raises(TrainingDiverged, match="diverged"):
        train(TINY, tiny_train_config(lr=1e12, min_lr=1e11, epochs=3), tmp_path, progress=False)


def test_callback_can_stop_training(tmp_path):
    def stop(entry):
        raise StopTraining

    result = train(TINY, tiny_train_config(epochs=3), tmp_path, progress=False, on_epoch_end=stop)
    assert result.stopped_early and len(result.epochs) == 1


def test_model_must_match_the_data(tmp_path):
    with pytest.raises(ConfigError, match="channel"):
        train(TINY.replace(in_channels=3), tiny_train_config(), tmp_path, progress=False)


def test_evaluate_checkpoint_dice_matches_the_trainers_validation_dice(tmp_path):
    # Two implementations of per-image Dice (both-empty = 1) must agree on the same images.
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt", split="test", progress=False)
    model, _ = load_model(tmp_path / "checkpoint.pt")
    loader = DataLoader(load_split("synthetic:24", "test", size=32, seed=3, augment=False), batch_size=16)
    expected = validation_dice(model, loader, torch.device("cpu"))
    assert result.summary.ps.dice == pytest.approx(expected["PS"])
    assert result.summary.fh.dice == pytest.approx(expected["FH"])
    assert result.dice == pytest.approx(expected["mean"])
    assert result.summary.ps.n == len(result.rows) == 5  # 20% of 24 synthetic images


def test_evaluation_files_hold_the_summary_and_one_row_per_image(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt", split="test", progress=False)
    result.write(tmp_path / "eval.json", tmp_path / "eval.csv")
    data = json.loads((tmp_path / "eval.json").read_text())
    assert EvalSummary.from_dict(data) == result.summary
    assert (data["data"], data["split"], data["size"]) == ("synthetic:24", "test", 32)
    with open(tmp_path / "eval.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [r["id"] for r in result.rows]
    assert np.mean([float(r["PS_dice"]) for r in rows]) == pytest.approx(result.summary.ps.dice)


def test_evaluation_table_prints_each_structures_dice(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt", split="test", progress=False)
    rows = {line.split()[0]: line.split() for line in result.table().splitlines()[2:]}
    assert rows["PS"][1] == f"{result.summary.ps.dice:.4f}"
    assert rows["FH"][1] == f"{result.summary.fh.dice:.4f}"
    assert rows["mean"][1] == f"{result.dice:.4f}"


def test_train_config_is_read_back_from_the_checkpoint(tmp_path):
    cfg = tiny_train_config(epochs=1)
    train(TINY, cfg, tmp_path, progress=False)
    assert load_train_config(load_checkpoint(tmp_path / "checkpoint.pt").meta) == cfg
    assert load_train_config({"train": {"data": "synthetic:8", "size": 48}}) == TrainConfig(data="synthetic:8", size=48)
    with pytest.raises(ConfigError, match="old.pt: meta.train has unknown field"):
        load_train_config({"train": {"data": "synthetic", "colour": True}}, source="old.pt")


def test_mismatched_weights_are_a_clear_error(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    raw["config"]["token_widths"] = [16, 32]
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="bad.pt: the weights do not match the config"):
        load_model(tmp_path / "bad.pt")


def test_a_data_seed_fixes_the_split_while_the_training_seed_varies(tmp_path):
    """validate --seeds: seed s of two candidates is paired only if every seed sees the same images."""
    a = train(TINY, tiny_train_config(epochs=1, seed=5, data_seed=3), tmp_path / "a", progress=False)
    b = train(TINY, tiny_train_config(epochs=1, seed=3), tmp_path / "b", progress=False)
    train(TINY, tiny_train_config(epochs=1, seed=5), tmp_path / "c", progress=False)
    assert a.epochs[0].loss != b.epochs[0].loss  # another initialization and batch order
    # the default evaluation split of a checkpoint is its data seed's: the same images as seed 3's
    ids = {p: [r["id"] for r in evaluate_checkpoint(tmp_path / p / "checkpoint.pt", split="test").rows]
           for p in ("a", "b", "c")}  # fmt: skip
    assert ids["a"] == ids["b"] != ids["c"]
    with pytest.raises(ConfigError, match="data_seed"):
        tiny_train_config(data_seed=-1)
