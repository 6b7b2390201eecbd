import json

import pytest
import torch

from models import create_config, load_checkpoint, load_model
from rtseg_core import ConfigError
from segmentation import StopTraining, TrainConfig, TrainingDiverged, evaluate_checkpoint, train

TINY = create_config("paper", conv_widths=(8, 8, 16), token_widths=(16, 24))


def tiny_train_config(**changes):
    base = dict(data="synthetic:24", size=32, epochs=2, batch_size=4, seed=3, device="cpu")
    return TrainConfig(**{**base, **changes})


def test_train_writes_checkpoint_and_metrics_then_resumes(tmp_path):
    result = train(TINY, tiny_train_config(), tmp_path, progress=False)
    assert [e.epoch for e in result.epochs] == [1, 2]
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # plain data only
    assert raw["epoch"] == 2 and raw["config"] == TINY.to_dict()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2 and 0.0 <= metrics["val_dice"] <= 1.0

    more = train(TINY, tiny_train_config(epochs=3), tmp_path, resume=True, progress=False)
    assert [e.epoch for e in more.epochs] == [1, 2, 3]  # history kept, only epoch 3 ran
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


def test_evaluate_checkpoint_writes_summary_and_rows(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    result = evaluate_checkpoint(tmp_path / "checkpoint.pt", split="test", progress=False)
    assert set(result.summary) >= {"PS", "FH", "mean"}
    assert len(result.rows) == 5  # 20% of 24 synthetic images
    result.write(tmp_path / "eval.json", tmp_path / "eval.csv")
    data = json.loads((tmp_path / "eval.json").read_text())
    for value in (data["PS"]["dice"], data["FH"]["hd95"], data["mean"]["asd"]):
        assert value == value  # never NaN
    assert (tmp_path / "eval.csv").read_text().count("\n") == 6
    assert "PS" in result.table() and "FH" in result.table()


def test_mismatched_weights_are_a_clear_error(tmp_path):
    train(TINY, tiny_train_config(epochs=1), tmp_path, progress=False)
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    raw["config"]["token_widths"] = [16, 32]
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="bad.pt: the weights do not match the config"):
        load_model(tmp_path / "bad.pt")
