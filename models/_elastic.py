"""A weight-sharing RTSeg-Net supernet: every member of a search space runs on slices of one weight set.

How a subnet runs (no copy of any block code): the supernet owns the weights of its widest
member (``container``, a plain :func:`build_model` network). A subnet ``cfg`` is run by the
family's own modules, ``build_model(cfg)``, through :func:`torch.func.functional_call` with
every parameter and buffer replaced by a *slice* of the container's tensor of the same name:

- channel widths (conv stages, token stages, EFF blocks, decoder) and the MLP hidden width are
  prefixes: ``w[:out, :in, ...]``; a stage with fewer TMP blocks uses the first k blocks (their
  names ``blocks.0 .. blocks.k-1`` are the container's);
- the EFF gate kernel, where its length differs, is the centred slice (Once-for-All's elastic
  kernel); everything else of a kernel is whole;
- shift size and DSConv bits have no parameters: the member's modules apply them to the slices
  (DSConv quantizes the *sliced* weight, so its blocks of input channels are the member's own).

Slices are views, so gradients of a subnet's loss flow into the shared weights, and a subnet's
forward is by construction the forward of ``build_model(cfg)`` with the sliced weights copied in
(:meth:`ElasticRTSegNet.extract`; tested to 1e-5).

Note on the shift: its channel groups are ``ceil(C / shift)`` channels each, so a shared channel
can be shifted by different amounts in members of different widths. That is the family's
definition of the block, kept as is; the supernet's training has to absorb it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch
from torch import nn
from torch.func import functional_call

from models._config import RTSegConfig
from models._model import RTSegNet, build_model
from rtseg_core import ConfigError

# The RTSegConfig fields a subnet may choose freely (within the container's sizes); every other
# field is fixed by the container.
ELASTIC_FIELDS = ("conv_widths", "token_widths", "enc_depths", "dec_depths", "mlp_ratio", "shift_size", "dsconv_bits")
_CACHE_SIZE = 32


class ElasticRTSegNet(nn.Module):
    """The supernet: the widest member's weights, and any smaller member run on slices of them."""

    def __init__(self, container: RTSegConfig) -> None:
        super().__init__()
        self.config = container
        self.net = build_model(container)
        # Member skeletons are built once per architecture; their own weights are never used.
        self._skeletons: OrderedDict[RTSegConfig, RTSegNet] = OrderedDict()

    # -- members -------------------------------------------------------------------------------
    def check_member(self, cfg: RTSegConfig) -> None:
        """Raise :class:`ConfigError` naming the field when ``cfg`` is not a subnet of this supernet."""
        big = self.config
        for f in RTSegConfig.__dataclass_fields__:
            if f not in ELASTIC_FIELDS and getattr(cfg, f) != getattr(big, f):
                raise ConfigError(
                    f"RTSegConfig.{f}: {getattr(cfg, f)!r} differs from the supernet's {getattr(big, f)!r} "
                    f"(a supernet varies only {', '.join(ELASTIC_FIELDS)})"
                )
        for f in ("conv_widths", "token_widths", "enc_depths", "dec_depths"):
            for i, (a, b) in enumerate(zip(getattr(cfg, f), getattr(big, f))):
                if a > b:
                    raise ConfigError(f"RTSegConfig.{f}[{i}]: {a} exceeds the supernet's {b}")
        for dim, big_dim in zip(cfg.token_widths, big.token_widths):
            hidden, big_hidden = max(1, round(dim * cfg.mlp_ratio)), max(1, round(big_dim * big.mlp_ratio))
            if hidden > big_hidden:
                raise ConfigError(
                    f"RTSegConfig.mlp_ratio: {cfg.mlp_ratio} gives an MLP hidden width of {hidden} for "
                    f"{dim} channels, more than the supernet's {big_hidden}"
                )

    def sliced_state(self, cfg: RTSegConfig, *, check: bool = True) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of member ``cfg`` as a slice (a view) of the supernet's tensors."""
        if check:
            self.check_member(cfg)
        own = dict(self.net.named_parameters())
        own.update(self.net.named_buffers())
        out: dict[str, torch.Tensor] = {}
        for name, ref in self._skeleton(cfg).state_dict(keep_vars=True).items():
            if name not in own:
                raise ConfigError(f"supernet: member tensor {name!r} has no counterpart in the supernet")
            out[name] = slice_like(own[name], tuple(ref.shape), name=name)
        return out

    def forward_subnet(self, cfg: RTSegConfig, x: torch.Tensor, *, share_bn_stats: bool = False) -> torch.Tensor:
        """Member ``cfg``'s logits, as ``RTSegNet.forward`` (its train/eval behaviour follows ``self.training``).

        In training mode BatchNorm updates running statistics. With ``share_bn_stats`` they go into
        the supernet's buffers (the sandwich rule does this for the largest member only, so the
        shared statistics are the largest member's); otherwise into throw-away copies, since
        every subnet is recalibrated (:func:`recalibrate_batchnorm`) before it is evaluated.
        """
        return self._call(cfg, x, share_bn_stats=share_bn_stats, with_aux=False)

    def forward_subnet_with_aux(
        self, cfg: RTSegConfig, x: torch.Tensor, *, share_bn_stats: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Member ``cfg``'s ``(logits, aux)``, as ``RTSegNet.forward_with_aux`` (for the training loss)."""
        return self._call(cfg, x, share_bn_stats=share_bn_stats, with_aux=True)

    def _call(self, cfg: RTSegConfig, x: torch.Tensor, *, share_bn_stats: bool, with_aux: bool):
        state = self.sliced_state(cfg)
        if self.training and not share_bn_stats:
            buffers = {n for n, _ in self.net.named_buffers()}
            state = {n: (t.clone() if n in buffers else t) for n, t in state.items()}
        skeleton = self._skeleton(cfg).train(self.training)
        if not with_aux:
            return functional_call(skeleton, state, (x,), strict=True)
        # functional_call runs ``forward``; a wrapper whose forward is forward_with_aux gives the aux maps.
        wrapper = _WithAux(skeleton).train(self.training)
        return functional_call(wrapper, {f"net.{n}": t for n, t in state.items()}, (x,), strict=True)

    def forward(self, x: torch.Tensor):
        """The container (the widest member) itself."""
        return self.net(x)

    @torch.no_grad()
    def extract(self, cfg: RTSegConfig) -> RTSegNet:
        """Member ``cfg`` as an ordinary ``build_model(cfg)`` network holding copies of its slices."""
        model = build_model(cfg)
        state = {n: t.detach().clone() for n, t in self.sliced_state(cfg).items()}
        model.load_state_dict(state, strict=True)
        return model.to(next(self.net.parameters()).device)

    def _skeleton(self, cfg: RTSegConfig) -> RTSegNet:
        skeleton = self._skeletons.get(cfg)
        if skeleton is None:
            skeleton = build_model(cfg)
            # Keep its tensors out of the way: on the meta device they cost no memory and can never
            # be used by mistake (functional_call replaces every one of them).
            skeleton.to("meta")
            self._skeletons[cfg] = skeleton
            while len(self._skeletons) > _CACHE_SIZE:
                self._skeletons.popitem(last=False)
        else:
            self._skeletons.move_to_end(cfg)
        return skeleton


def slice_like(tensor: torch.Tensor, shape: tuple[int, ...], *, name: str = "tensor") -> torch.Tensor:
    """The member slice of a supernet tensor: a prefix along every axis, the centre of a gate kernel."""
    if len(shape) != tensor.dim():
        raise ConfigError(f"supernet: {name} has {tensor.dim()} axes, the member's has {len(shape)}")
    index = []
    for axis, (have, want) in enumerate(zip(tensor.shape, shape)):
        if want > have:
            raise ConfigError(f"supernet: {name} axis {axis} has {have} entries, the member needs {want}")
        if name.endswith("gate_weight") and axis == tensor.dim() - 1:
            start = (have - want) // 2  # a shorter 1-D kernel is the centre of the longer one
            if (have - want) % 2:
                raise ConfigError(f"supernet: {name}: a kernel of {want} is not centred in one of {have}")
            index.append(slice(start, start + want))
        else:
            index.append(slice(0, want))
    return tensor[tuple(index)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate every BatchNorm's running mean/variance of ``model`` from ``batches`` of images.

    Statistics are reset, then averaged over all batches with equal weight (momentum None); only
    BatchNorm modules run in training mode, so dropout and drop-path stay off and no weight
    changes. Returns the number of images seen; the model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    device = next(model.parameters()).device
    seen = 0
    try:
        for x in batches:
            model(x.to(device))
            seen += x.shape[0]
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    if norms and seen == 0:
        raise ConfigError("BatchNorm recalibration got no images")
    return seen


class _WithAux(nn.Module):
    """``forward`` is the wrapped member's ``forward_with_aux`` (so that functional_call can run it)."""

    def __init__(self, net: RTSegNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return self.net.forward_with_aux(x)
