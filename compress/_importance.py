"""Channel-importance criteria for structured pruning, kept in one table: name -> factory.

Every scorer is called by Torch-Pruning with one dependency *group* (all layers coupled to a
channel set) and returns one score per channel of the group's root, higher = keep. Scorers that
need data (Taylor) or an outside tool (NNI) get :meth:`Scorer.prepare` before each pruning step,
with the current model and a few labelled batches.

NNI 3.0's pruners are used only for their masks: its ModelSpeedup fails on torch 2.x, so the
physical channel removal is always Torch-Pruning's. A mask says keep/drop per output channel of
one layer; a group's score is the mean keep-fraction over its layers, with a small L1-magnitude
term that only breaks ties.
"""

from __future__ import annotations

import copy
import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rtseg_core import CompressionError

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # images (B, C, H, W) float, masks (B, H, W) long


def _tp():
    import torch_pruning as tp

    return tp


class Scorer:
    """Base of the suite's scorers: Torch-Pruning calls it on a group; ``prepare`` runs before each step."""

    needs_data = False

    def prepare(self, model: nn.Module, batches: Sequence[Batch], ratio: float) -> None:
        """Called before each pruning step on the model being pruned (``ratio``: cumulative target)."""

    def finish(self, model: nn.Module) -> None:
        """Called after each step (e.g. to drop gradients)."""

    def __call__(self, group) -> torch.Tensor | None:  # pragma: no cover - abstract
        raise NotImplementedError


class _TPScorer(Scorer):
    """A Torch-Pruning importance used as is (data-free)."""

    def __init__(self, imp) -> None:
        self.imp = imp

    def __call__(self, group):
        return self.imp(group)


def _loss_gradients(model: nn.Module, batches: Sequence[Batch]) -> None:
    # Eval mode: BN uses its running statistics and they do not move while we score.
    from segmentation import DeepSupervisionLoss

    loss_fn = DeepSupervisionLoss()
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for x, y in batches:
                logits, aux = model.forward_with_aux(x)
                (loss_fn(logits, aux, y) / len(batches)).backward()
    finally:
        model.train(was_training)


class TaylorScorer(Scorer):
    """First-order Taylor (Molchanov et al., CVPR 2019): |w * dL/dw| summed per channel, grouped."""

    needs_data = True

    def __init__(self) -> None:
        self.imp = _tp().importance.GroupTaylorImportance()

    def prepare(self, model, batches, ratio):
        _loss_gradients(model, batches)

    def finish(self, model):
        model.zero_grad(set_to_none=True)

    def __call__(self, group):
        for dep, _ in group:
            weight = getattr(dep.target.module, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.requires_grad and weight.grad is None:
                # A layer the loss does not reach has no gradient: it scores zero, not an error.
                weight.grad = torch.zeros_like(weight)
        return self.imp(group)


class NNIMaskScorer(Scorer):
    """Channel scores from an NNI 3.0 pruner's masks (L1, FPGM or Taylor); see the module docstring."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.needs_data = algorithm == "taylor"
        self.keep: dict[nn.Module, torch.Tensor] = {}
        self.tiebreak = _tp().importance.MagnitudeImportance(p=1)

    def prepare(self, model, batches, ratio):
        nni_pruning = _import_nni()
        from models import class_layers, replace_dsconv_standins

        skip = {id(m) for m in class_layers(model)}
        targets = [
            n
            for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in skip and _out_width(m) > 1
        ]
        work = copy.deepcopy(model)  # NNI wraps modules and, for Taylor, runs a training loop
        # NNI knows layers by class name; give it plain convs in place of the pruning view's DSConv.
        replace_dsconv_standins(work, _plain_conv)
        config = [{"op_names": targets, "sparse_ratio": float(min(max(ratio, 0.0), 0.99))}]
        try:
            if self.algorithm == "l1":
                pruner = nni_pruning.L1NormPruner(work, config)
            elif self.algorithm == "fpgm":
                pruner = nni_pruning.FPGMPruner(work, config)
            else:
                if not batches:
                    raise CompressionError("importance 'nni-taylor' needs labelled batches (pass --data)")
                pruner = nni_pruning.TaylorPruner(
                    work, config, _nni_evaluator(work, batches), training_steps=len(batches)
                )
            _, masks = pruner.compress()
            pruner.unwrap_model()
        except CompressionError:
            raise
        except Exception as exc:  # NNI 3.0 fails in many ways on newer torch; say which and how to avoid it
            raise CompressionError(
                f"importance 'nni-{self.algorithm}': NNI {getattr(_import_nni, 'version', '3.0')} failed on this "
                f"torch ({type(exc).__name__}: {str(exc)[:200]}); use the Torch-Pruning criterion "
                f"'{'l1' if self.algorithm == 'l1' else self.algorithm}' instead"
            ) from None
        by_name = dict(model.named_modules())
        self.keep = {}
        for name, entry in masks.items():
            mask = entry.get("weight") if isinstance(entry, dict) else None
            if mask is None or name not in by_name:
                continue
            self.keep[by_name[name]] = mask.detach().float().flatten(1).mean(1).cpu()
        log.debug("nni-%s: masks for %d layers at ratio %.3f", self.algorithm, len(self.keep), ratio)

    def __call__(self, group):
        tp = _tp()
        out_fns = (tp.pruner.function.prune_conv_out_channels, tp.pruner.function.prune_linear_out_channels)
        total, count = None, None
        for i, (dep, idxs) in enumerate(group):
            keep = self.keep.get(dep.target.module)
            if keep is None or dep.handler not in out_fns:
                continue
            root = torch.as_tensor(group[i].root_idxs, dtype=torch.long)
            local = keep[torch.as_tensor(idxs, dtype=torch.long)]
            if total is None:
                n = len(group[0].idxs)
                total, count = torch.zeros(n), torch.zeros(n)
            total.scatter_add_(0, root, local)
            count.scatter_add_(0, root, torch.ones_like(local))
        magnitude = self.tiebreak(group)
        if total is None:
            return magnitude
        score = total / count.clamp(min=1)
        if magnitude is not None:
            score = score + 1e-3 * magnitude / magnitude.max().clamp(min=1e-12)
        return score


def _plain_conv(m: nn.Conv2d) -> nn.Conv2d:
    conv = nn.Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding, bias=m.bias is not None
    )
    conv.weight = m.weight
    if m.bias is not None:
        conv.bias = m.bias
    return conv


def _out_width(m: nn.Module) -> int:
    return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features


def _import_nni():
    try:
        import nni
        from nni.compression import pruning as nni_pruning
    except Exception as exc:  # ImportError, or NNI's own import-time failures on new numpy/torch
        raise CompressionError(
            f"NNI importance criteria need NNI 3.0 ('pip install nni==3.0' or the 'nni' extra); "
            f"importing it failed ({type(exc).__name__}: {str(exc)[:160]}). The Torch-Pruning criteria "
            "(l1, l2, fpgm, taylor, ...) need nothing extra."
        ) from None
    _import_nni.version = getattr(nni, "__version__", "?")
    return nni_pruning


def _nni_evaluator(model: nn.Module, batches: Sequence[Batch]):
    """NNI's TorchEvaluator over ``model`` (the scored copy): gradients only, nothing learns."""
    import nni
    from nni.compression import TorchEvaluator

    from segmentation import DeepSupervisionLoss

    loss_fn = DeepSupervisionLoss()

    def training_step(batch, model):
        x, y = batch
        logits, aux = model.forward_with_aux(x)
        return loss_fn(logits, aux, y)

    def training_func(model, optimizers, training_step, lr_schedulers=None, max_steps=None, max_epochs=None):
        # Eval mode (BN statistics frozen) and lr 0: the copy's weights stay as they are.
        model.eval()
        for step, batch in enumerate(batches):
            if max_steps is not None and step >= max_steps:
                break
            optimizers.zero_grad()
            training_step(batch, model).backward()
            optimizers.step()

    optimizer = nni.trace(torch.optim.SGD)(model.parameters(), lr=0.0)
    return TorchEvaluator(training_func, optimizer, training_step)


@dataclass(frozen=True)
class ImportanceOption:
    factory: Callable[[], Scorer]
    needs_data: bool
    description: str


def _magnitude(p: int, **kw) -> Callable[[], Scorer]:
    return lambda: _TPScorer(_tp().importance.MagnitudeImportance(p=p, **kw))


IMPORTANCES: dict[str, ImportanceOption] = {
    "l1": ImportanceOption(_magnitude(1), False, "L1 norm of the group's weights (Torch-Pruning, mean-normalised)"),
    "l2": ImportanceOption(_magnitude(2), False, "L2 norm of the group's weights (Torch-Pruning)"),
    "group-norm": ImportanceOption(
        _magnitude(2, group_reduction="sum", normalizer=None),
        False,
        "un-normalised group L2 norm summed over every coupled layer (DepGraph's group norm)",
    ),
    "bn-scale": ImportanceOption(
        lambda: _TPScorer(_tp().importance.BNScaleImportance()),
        False,
        "|gamma| of the coupled BatchNorms (network slimming); groups without BN fall back to none",
    ),
    "fpgm": ImportanceOption(
        lambda: _TPScorer(_tp().importance.FPGMImportance()), False, "distance to the geometric median (FPGM)"
    ),
    "taylor": ImportanceOption(TaylorScorer, True, "first-order Taylor |w * grad| on a few training batches"),
    "random": ImportanceOption(
        lambda: _TPScorer(_tp().importance.RandomImportance()), False, "random scores (a baseline, not a method)"
    ),
    "nni-l1": ImportanceOption(lambda: NNIMaskScorer("l1"), False, "NNI 3.0 L1NormPruner masks as channel scores"),
    "nni-fpgm": ImportanceOption(lambda: NNIMaskScorer("fpgm"), False, "NNI 3.0 FPGMPruner masks as channel scores"),
    "nni-taylor": ImportanceOption(lambda: NNIMaskScorer("taylor"), True, "NNI 3.0 TaylorPruner masks (needs data)"),
}


def list_importances() -> list[str]:
    return list(IMPORTANCES)


def get_importance(name: str) -> ImportanceOption:
    if name not in IMPORTANCES:
        hint = difflib.get_close_matches(name, IMPORTANCES, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise CompressionError(
            f"PruneSpec.importance: unknown criterion {name!r}{more}; choose from {list(IMPORTANCES)}"
        )
    return IMPORTANCES[name]
