"""Training the weight-sharing supernet of a search space (one-shot NAS, the sandwich rule).

The supernet (:class:`models.ElasticRTSegNet`) holds the weights of the space's widest member
(every range at its high end) and runs any member on slices of them. Training follows BigNAS's
**sandwich rule with in-place distillation** (Yu et al., ECCV 2020), chosen over Once-for-All's
progressive shrinking because it needs no phase schedule and trains every member size from the
first step, which suits the short CPU budgets here:

- every step draws the **largest** member, the **smallest** member and ``random_subnets`` members
  uniformly from the space (impossible ones redrawn), all on the same batch;
- the largest learns from the labels with the loss of ``segmentation.train``
  (:class:`segmentation.DeepSupervisionLoss`: Dice+CE on the main logits, Dice on the four deep
  supervision maps); its main logits, detached, are the teacher;
- every other member learns from ``kd_weight`` x KL(teacher || member) on the main logits (per
  pixel, temperature ``kd_temperature``) plus ``1 - kd_weight`` x the label loss;
- gradients of all members accumulate into the shared weights; one AdamW step with the cosine
  schedule of ``segmentation.train`` follows;
- only the largest member updates the shared BatchNorm statistics; every other member is
  recalibrated before evaluation (:func:`models.recalibrate_batchnorm`), because its statistics
  differ from the largest's.

Data, augmentation, loss, optimizer and schedule are those of ``segmentation.train``
(:class:`segmentation.TrainConfig`). The members drawn at (seed, epoch, step) do not depend on
when the run was interrupted: a resumed run continues exactly as an uninterrupted one would,
from the atomic checkpoint written after every epoch.

Files: ``OUT/supernet.pt`` (plain data, loads with ``torch.load(weights_only=True)``: the space,
the container config, weights, optimizer and scheduler state, epoch, history) and
``OUT/supernet.json``, its training record (:func:`rtseg_core.write_supernet_training`; not
``metrics.json``, which is the trainer's schema), with every epoch's wall and CPU seconds
(``time.process_time``: what ``report --compare`` counts as the supernet's compute).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from models import PRESETS, Checkpoint, ElasticRTSegNet, RTSegConfig, recalibrate_batchnorm, save_checkpoint
from rtseg_core import (
    ConfigError,
    Fields,
    InputFileError,
    atomic_save_torch,
    atomic_write_json,
    brief,
    is_finite_number,
    load_torch_data,
    resolve_device,
    write_supernet_training,
)
from search_spaces._space import SearchSpace, check_config, config_from_params, summarize_config
from segmentation import (
    DeepSupervisionLoss,
    TrainConfig,
    TrainingDiverged,
    check_training_memory,
    cosine_lr,  # the cosine schedule of `train`, shared rather than copied
    load_split,
    seed_everything,
    validation_dice,
)

log = logging.getLogger(__name__)

FORMAT = "rtseg-nas/supernet"
VERSION = 1
# Members drawn at random per step: every one is a forward and backward pass more per step; the
# sandwich rule's papers draw 2 to 4. A million was accepted and would never finish a step.
MAX_RANDOM_SUBNETS = 16


@dataclass(frozen=True)
class SandwichConfig:
    """The sandwich rule's settings (see the module docstring)."""

    random_subnets: int = 2  # members drawn at random per step, besides the largest and the smallest
    kd_weight: float = 0.5  # share of the distillation loss in every member but the largest
    kd_temperature: float = 1.0
    bn_batches: int = 4  # batches that recalibrate BatchNorm of the smallest before its per-epoch val Dice

    def __post_init__(self) -> None:
        def integer(value: Any, low: int, high: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        if not integer(self.random_subnets, 0, MAX_RANDOM_SUBNETS):
            raise ConfigError(
                f"--random-subnets: must be an integer from 0 to {MAX_RANDOM_SUBNETS} (each is one more forward and "
                f"backward pass per step), got {brief(self.random_subnets)}"
            )
        if not is_finite_number(self.kd_weight) or not 0.0 <= self.kd_weight <= 1.0:
            raise ConfigError(f"--kd-weight: must be a number in [0, 1], got {brief(self.kd_weight)}")
        if not is_finite_number(self.kd_temperature) or not 0 < self.kd_temperature <= 100:
            raise ConfigError(f"--kd-temperature: must be a number in (0, 100], got {brief(self.kd_temperature)}")
        if not integer(self.bn_batches, 1, 10_000):
            raise ConfigError(f"--bn-batches: must be an integer from 1 to 10000, got {brief(self.bn_batches)}")


@dataclass
class SupernetEpoch:
    epoch: int
    loss_largest: float
    loss_children: float
    val_dice_largest: float
    val_dice_smallest: float
    lr: float
    seconds: float
    subnets_per_s: float  # member forward+backward passes per second
    # CPU seconds of this process in the epoch (time.process_time: every thread; comparable across machine
    # loads, unlike seconds); None in checkpoints written before it was recorded
    cpu_s: float | None = None


@dataclass
class SupernetResult:
    out_dir: Path
    checkpoint: Path
    epochs: list[SupernetEpoch] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass(frozen=True)
class Supernet:
    """A loaded supernet: the network and what it was trained on."""

    net: ElasticRTSegNet
    space: SearchSpace
    train: Any  # segmentation.TrainConfig
    sandwich: SandwichConfig
    epoch: int
    history: list[dict[str, Any]]
    path: Path | None = None
    optimizer: dict[str, Any] | None = None  # {"optimizer": ..., "scheduler": ...} state for --resume


# -- the space's extremes and random members -----------------------------------------------------
def largest_config(space: SearchSpace) -> RTSegConfig:
    """The container: every range at its high end. Shift size and DSConv bits have no weights, so the
    container takes the base preset's (or the first choice), and every choice runs on the same weights."""
    base = PRESETS[space.base]
    params: dict[str, Any] = {}
    for name, (kind, spec) in space.parameters().items():
        if kind == "int":
            params[name] = spec[1]
    if len(space.shift_size) > 1:
        params["shift_size"] = base.shift_size if base.shift_size in space.shift_size else space.shift_size[0]
    if len(space.dsconv_bits) > 1:
        params["dsconv_bits"] = None if None in space.dsconv_bits else space.dsconv_bits[0]
    return config_from_params(params, space)


def smallest_config(space: SearchSpace) -> RTSegConfig:
    """Every range at its low end (shift size and DSConv bits as in :func:`largest_config`)."""
    big = largest_config(space)
    return space.smallest_config().replace(shift_size=big.shift_size, dsconv_bits=big.dsconv_bits)


def random_config(space: SearchSpace, rng: random.Random, *, tries: int = 1000) -> RTSegConfig:
    """A member drawn uniformly from the space (impossible combinations redrawn)."""
    for _ in range(tries):
        params: dict[str, Any] = {}
        for name, (kind, spec) in space.parameters().items():
            if kind == "int":
                low, high, step = spec
                params[name] = low + step * rng.randrange((high - low) // step + 1)
            else:
                params[name] = rng.choice(list(spec))
        cfg = config_from_params(params, space)
        if check_config(cfg, space) is None:
            return cfg
    raise ConfigError(f"the search space gave no possible member in {tries} random draws")


def _step_rng(seed: int, epoch: int, step: int) -> random.Random:
    digest = hashlib.sha256(f"supernet:{seed}:{epoch}:{step}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


# -- checkpoints -----------------------------------------------------------------------------------
def save_supernet(
    path: Path,
    net: ElasticRTSegNet,
    space: SearchSpace,
    train_cfg,
    sandwich: SandwichConfig,
    *,
    epoch: int,
    history: list[dict[str, Any]],
    optimizer=None,
    scheduler=None,
) -> Path:
    state = {k: v.detach().cpu() for k, v in net.net.state_dict().items()}
    data = {
        "format": FORMAT,
        "version": VERSION,
        "space": space.to_dict(),
        "config": net.config.to_dict(),
        "train": asdict(train_cfg),
        "sandwich": asdict(sandwich),
        "state_dict": state,
        "optimizer": None
        if optimizer is None
        else {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        "epoch": epoch,
        "history": history,
    }
    return atomic_save_torch(data, path)


def load_supernet(path: str | Path) -> Supernet:
    """Load ``supernet.pt`` (``weights_only=True``), every field checked; errors name the file and field."""
    path = Path(path).expanduser().resolve()  # absolute: a study records which supernet it searched
    if path.is_dir():
        path = path / "supernet.pt"
    if not path.is_file():
        raise InputFileError(f"{path}: supernet checkpoint not found (train one with `rtseg-nas supernet train`)")
    data = load_torch_data(path, what="supernet checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputFileError(f"{path}: not an rtseg-nas supernet (no 'format': {FORMAT!r}; a model checkpoint?)")
    if data.get("version") != VERSION:
        raise InputFileError(
            f"{path}: supernet version {brief(data.get('version'))} is not supported (expected {VERSION})"
        )
    try:
        return _read_supernet(data, path)
    except InputFileError:
        raise
    except ConfigError as exc:  # a damaged input file: the run fails on it (exit status 1)
        raise InputFileError(str(exc)) from None


_FIELDS = ("format", "version", "space", "config", "train", "sandwich", "state_dict", "optimizer", "epoch", "history")


def _read_supernet(data: dict[str, Any], path: Path) -> Supernet:
    """The typed reader behind :func:`load_supernet` (a crafted file gets one error line, never a traceback)."""
    f = Fields(data, str(path))
    f.unknown(_FIELDS)
    space = SearchSpace.from_dict(f.dict("space"), source=f"{path}: space")
    config = RTSegConfig.from_dict(f.dict("config"), source=f"{path}: config")
    container = largest_config(space)
    if config != container:
        rule = f"must be the container of the supernet's space ({summarize_config(container)})"
        raise f.error("config", rule, summarize_config(config))
    train = _settings(f.object("train"), TrainConfig)
    sandwich = _settings(f.object("sandwich"), SandwichConfig)
    epoch = f.int("epoch", minimum=0, maximum=train.epochs)
    state = _weights(f.object("state_dict"))
    optimizer = None
    saved = f.object("optimizer", optional=True)
    if saved is not None:
        saved.unknown(("optimizer", "scheduler"))
        optimizer = {"optimizer": saved.dict("optimizer"), "scheduler": saved.dict("scheduler")}
    entries = f.list("history", optional=True) or []
    history = [_epoch_entry(Fields(e, str(path), f"history[{i}].")) for i, e in enumerate(entries)]
    if len(history) != epoch:
        raise f.error("history", f"must hold one entry per finished epoch ({epoch}); it holds {len(history)}")
    net = ElasticRTSegNet(config)
    try:
        net.net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:
        detail = "; ".join(line.strip() for line in str(exc).strip().splitlines()[:3])
        raise ConfigError(f"{path}: 'state_dict' does not match the supernet's config ({detail[:300]})") from None
    return Supernet(
        net=net.eval(),
        space=space,
        train=train,
        sandwich=sandwich,
        epoch=epoch,
        history=history,
        path=path,
        optimizer=optimizer,
    )


def _settings(f: Fields, cls):
    """``cls(**fields)`` for a frozen settings dataclass; unknown, missing and bad fields name the file and field."""
    names = [x.name for x in fields(cls)]
    f.unknown(names)
    for name in names:  # save_supernet writes every field: none may fall back to a default
        if name not in f:
            raise f.error(name, "is missing")
    try:
        return cls(**dict(f.data))
    except ConfigError as exc:
        raise ConfigError(f"{f.source}: '{f.prefix.rstrip('.')}': {exc}") from None


def _weights(f: Fields) -> dict[str, torch.Tensor]:
    """The state dict: tensors by name, none of them holding NaN or infinity (named when one does)."""
    state = {}
    for name, tensor in f.data.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"{f.source}: 'state_dict' entry {brief(name)} must be a tensor, got {brief(tensor)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ConfigError(
                f"{f.source}: 'state_dict' tensor {name!r} holds NaN or infinite values; the supernet is broken "
                "(a diverged run?) and none of its members can be used"
            )
        state[name] = tensor
    return state


def _epoch_entry(f: Fields) -> dict[str, Any]:
    names = [x.name for x in fields(SupernetEpoch)]
    f.unknown(names)
    entry: dict[str, Any] = {"epoch": f.int("epoch", minimum=1, maximum=10**6)}
    for name in names[1:]:
        if name == "cpu_s":  # absent from checkpoints written before it was recorded
            entry[name] = f.number(name, minimum=0.0, maximum=1e30, optional=True)
        else:
            entry[name] = f.number(name, minimum=-1e30, maximum=1e30)
    return entry


# -- training --------------------------------------------------------------------------------------
def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-pixel KL(teacher || student) over classes, averaged over pixels, times T^2 (Hinton et al.)."""
    t = temperature
    log_p = F.log_softmax(student / t, dim=1)
    q = F.softmax(teacher / t, dim=1)
    return F.kl_div(log_p, q, reduction="none").sum(1).mean() * (t * t)


def train_supernet(
    space: SearchSpace,
    train_cfg,
    out_dir: str | Path,
    *,
    sandwich: SandwichConfig | None = None,
    resume: bool = False,
    progress: bool = True,
) -> SupernetResult:
    """Train the supernet of ``space`` with the sandwich rule; see the module docstring.

    ``train_cfg`` is a :class:`segmentation.TrainConfig` (data, size, epochs, steps, batch, lr,
    seed, device). With ``resume`` an existing ``OUT/supernet.pt`` continues from its next epoch;
    its space and training settings must be the same.
    """
    if space.input_sizes:  # its members share weights trained at one size; a drawn input would go unused
        raise ConfigError(
            f"SearchSpace.input_sizes {list(space.input_sizes)}: the multi-trial search only (search --input-sizes); "
            "a supernet trains and searches at one input size"
        )
    sandwich = sandwich or SandwichConfig()
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "supernet.pt"
    device = resolve_device(train_cfg.device)
    check_training_memory(largest_config(space), train_cfg, device)  # the container trains every step
    seed_everything(train_cfg.seed)
    if ckpt_path.is_file() and not resume:
        raise ConfigError(f"{ckpt_path}: exists; pass --resume to continue it or choose another --out")

    train_ds = load_split(train_cfg.data, "train", size=train_cfg.size, seed=train_cfg.seed, frames=train_cfg.frames)
    val_ds = load_split(train_cfg.data, "val", size=train_cfg.size, seed=train_cfg.seed, frames=train_cfg.frames)
    largest, smallest = largest_config(space), smallest_config(space)
    if largest.in_channels != train_ds.in_channels or largest.num_classes != train_ds.num_classes:
        raise ConfigError(
            f"--data {train_cfg.data}: {train_ds.in_channels} channel(s) and {train_ds.num_classes} classes, but the "
            f"space's base preset {space.base!r} takes {largest.in_channels} and predicts {largest.num_classes}"
        )
    gen = torch.Generator().manual_seed(train_cfg.seed)
    train_loader = DataLoader(
        train_ds,
        batch_size=train_cfg.batch_size,
        shuffle=True,
        drop_last=len(train_ds) > train_cfg.batch_size,
        num_workers=train_cfg.workers,
        generator=gen,
    )
    val_loader = DataLoader(val_ds, batch_size=max(train_cfg.batch_size, 16), shuffle=False)
    bn_images = calibration_batches(train_cfg, sandwich.bn_batches)
    steps = (
        len(train_loader) if train_cfg.steps_per_epoch is None else min(train_cfg.steps_per_epoch, len(train_loader))
    )

    net = ElasticRTSegNet(largest).to(device)
    opt_cls = torch.optim.AdamW if train_cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(net.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    total = train_cfg.epochs * steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: cosine_lr(i, total, train_cfg.lr, train_cfg.min_lr) / train_cfg.lr
    )
    loss_fn = DeepSupervisionLoss(train_cfg.aux_weight)
    result = SupernetResult(out_dir=out_dir, checkpoint=ckpt_path)
    start_epoch = 0
    if resume and ckpt_path.is_file():
        prev = load_supernet(ckpt_path)
        # More epochs may be asked for (as `train --resume` allows); anything else must match.
        for name, mine, theirs in (
            ("space", space, prev.space),
            ("training settings", replace(train_cfg, epochs=prev.train.epochs), prev.train),
            ("sandwich settings", sandwich, prev.sandwich),
        ):
            if mine != theirs:
                differ = [f.name for f in fields(mine) if getattr(mine, f.name) != getattr(theirs, f.name)]
                raise ConfigError(f"{ckpt_path}: --resume with different {name} than the checkpoint's: {differ}")
        net.net.load_state_dict(prev.net.net.state_dict())
        if prev.optimizer:
            try:
                optimizer.load_state_dict(prev.optimizer["optimizer"])
                scheduler.load_state_dict(prev.optimizer["scheduler"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"{ckpt_path}: optimizer: the saved optimizer state does not fit this supernet "
                    f"({type(exc).__name__}: {str(exc)[:200]})"
                ) from None
        result.epochs = [SupernetEpoch(**e) for e in prev.history]
        start_epoch = prev.epoch
        log.info("resuming %s from epoch %d/%d", ckpt_path, start_epoch, train_cfg.epochs)

    t_start = time.perf_counter()
    cpu_start = time.process_time()
    for epoch in range(start_epoch, train_cfg.epochs):
        gen.manual_seed(train_cfg.seed * 1000 + epoch)  # the data order of `train`, resumable
        train_ds.set_epoch(epoch)
        net.train()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        sums, passes, seen = [0.0, 0.0], 0, 0
        for step, batch in enumerate(train_loader):
            if step >= steps:
                break
            x = batch["image"].to(device)
            y = batch["mask"].to(device)
            rng = _step_rng(train_cfg.seed, epoch, step)
            children = [smallest] + [random_config(space, rng) for _ in range(sandwich.random_subnets)]
            optimizer.zero_grad(set_to_none=True)
            logits, aux = net.forward_subnet_with_aux(largest, x, share_bn_stats=True)
            loss = loss_fn(logits, aux, y)
            _check_finite(loss, "largest", epoch, step)
            loss.backward()
            teacher = logits.detach()
            sums[0] += loss.item()
            child_sum = 0.0
            for child in children:
                c_logits, c_aux = net.forward_subnet_with_aux(child, x)
                c_loss = sandwich.kd_weight * distillation_loss(c_logits, teacher, sandwich.kd_temperature)
                if sandwich.kd_weight < 1.0:
                    c_loss = c_loss + (1.0 - sandwich.kd_weight) * loss_fn(c_logits, c_aux, y)
                _check_finite(c_loss, f"subnet {child}", epoch, step)
                c_loss.backward()
                child_sum += c_loss.item()
            sums[1] += child_sum / max(len(children), 1)
            optimizer.step()
            scheduler.step()
            passes += 1 + len(children)
            seen += x.shape[0]
        net.eval()
        dice_largest = validation_dice(net, val_loader, device, max_batches=train_cfg.val_batches)["mean"]
        small = net.extract(smallest)
        recalibrate_batchnorm(small, bn_images)
        dice_smallest = validation_dice(small, val_loader, device, max_batches=train_cfg.val_batches)["mean"]
        seconds = time.perf_counter() - t0
        cpu_s = round(time.process_time() - cpu0, 3)
        entry = SupernetEpoch(
            epoch=epoch + 1,
            loss_largest=sums[0] / max(steps, 1),
            loss_children=sums[1] / max(steps, 1),
            val_dice_largest=dice_largest,
            val_dice_smallest=dice_smallest,
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            subnets_per_s=passes / seconds,
            cpu_s=cpu_s,
        )
        result.epochs.append(entry)
        log.log(
            logging.INFO if progress else logging.DEBUG,
            "epoch %d/%d  loss largest %.4f, others %.4f  val Dice largest %.4f, smallest %.4f  %.1f s",
            entry.epoch,
            train_cfg.epochs,
            entry.loss_largest,
            entry.loss_children,
            dice_largest,
            dice_smallest,
            seconds,
        )
        save_supernet(
            ckpt_path,
            net,
            space,
            train_cfg,
            sandwich,
            epoch=epoch + 1,
            history=[asdict(e) for e in result.epochs],
            optimizer=optimizer,
            scheduler=scheduler,
        )
    result.wall_s = time.perf_counter() - t_start
    write_supernet_training(
        out_dir,
        {
            "train": asdict(train_cfg),
            "sandwich": asdict(sandwich),
            "space": space.to_dict(),
            "largest": largest.to_dict(),
            "smallest": smallest.to_dict(),
            "epochs": [asdict(e) for e in result.epochs],
            "wall_s_this_run": result.wall_s,
            "cpu_s_this_run": round(time.process_time() - cpu_start, 3),
            # every epoch's CPU seconds, earlier runs' included (None where an epoch predates the record)
            "cpu_s": _total_cpu(result.epochs),
            "device": str(device),
        },
    )
    return result


def _total_cpu(epochs: list[SupernetEpoch]) -> float | None:
    values = [e.cpu_s for e in epochs]
    return None if not values or any(v is None for v in values) else round(sum(values), 3)


def calibration_batches(train_cfg, n: int) -> list[torch.Tensor]:
    """``n`` fixed batches of training images (no augmentation) that recalibrate BatchNorm.

    The same images for every subnet, so subnets are compared on equal terms.
    """
    ds = load_split(
        train_cfg.data, "train", size=train_cfg.size, seed=train_cfg.seed, augment=False, frames=train_cfg.frames
    )
    gen = torch.Generator().manual_seed(train_cfg.seed + 7919)
    loader = DataLoader(ds, batch_size=train_cfg.batch_size, shuffle=True, generator=gen)
    out = []
    for batch in loader:
        if len(out) >= n:
            break
        out.append(batch["image"])
    return out


def _check_finite(loss: torch.Tensor, who: str, epoch: int, step: int) -> None:
    if not math.isfinite(loss.item()):
        raise TrainingDiverged(
            f"supernet training diverged: {who}'s loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}"
        )


# -- extraction ------------------------------------------------------------------------------------
def extract_subnet(supernet: Supernet, cfg: RTSegConfig, out_dir: str | Path, *, bn_batches: int | None = None) -> Path:
    """Write member ``cfg`` as an ordinary checkpoint: ``OUT/checkpoint.pt`` and ``OUT/config.json``.

    The weights are the supernet's slices with BatchNorm recalibrated on ``bn_batches`` fixed training
    batches (default: the supernet's setting). Epoch 0 and no optimizer state: ``train --arch
    OUT/config.json --out OUT --resume`` fine-tunes it from the inherited weights, and ``evaluate``,
    ``prune``, ``quantize``, ``profile`` take it like any trained checkpoint.
    """
    out_dir = Path(out_dir)
    try:
        supernet.net.check_member(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{supernet.path}: cannot extract {summarize_config(cfg)}: {exc}") from None
    reason = supernet.space.member_error(cfg)
    if reason is not None:  # inside the container, but never drawn in training: untrained weights
        raise ConfigError(
            f"{supernet.path}: cannot extract {summarize_config(cfg)}: {reason}; the supernet trained only "
            "the members of its space"
        )
    model = supernet.net.extract(cfg)
    n = bn_batches or supernet.sandwich.bn_batches
    recalibrate_batchnorm(model, calibration_batches(supernet.train, n))
    ckpt = Checkpoint(
        config=cfg,
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        epoch=0,
        meta={
            "train": asdict(supernet.train),
            "history": [],
            "recipe": "supernet-extract",
            "supernet": {"path": str(supernet.path), "epoch": supernet.epoch, "bn_batches": n},
        },
    )
    path = save_checkpoint(ckpt, out_dir / "checkpoint.pt")
    atomic_write_json(out_dir / "config.json", cfg.to_dict())
    return path
