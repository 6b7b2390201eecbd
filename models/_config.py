"""The one typed configuration of the RTSeg-Net family.

Every member of the family, from UNeXt to the released RTSeg-Net to a searched variant, is an
``RTSegConfig``; ``build_model(cfg)`` is the only constructor. Field names are also the Optuna
parameter names of the search space, so ``trials_dataframe()`` columns map back to fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, NoReturn

from rtseg_core import ConfigError, brief, is_finite_number

ACTIVATIONS = ("hardswish", "relu", "gelu")
# Upper bounds far above any sensible member, so a typo (a width of 10**6) is refused before it allocates.
MAX_WIDTH = 4096
MAX_DEPTH = 32
MAX_CHANNELS = 64
MAX_CLASSES = 256
MAX_MLP_RATIO = 16.0
MAX_KERNEL = 31
# Within the field bounds above, widths of 4,096 with 32 TMP blocks of MLP ratio 16 still make a model of
# 69 billion parameters (275 GB): the allocator, not the config, would have said no. 200 million
# parameters (800 MB of float32 weights, 3.2 GB to train with AdamW) is 100x the released network.
MAX_PARAMETERS = 200_000_000
FUSIONS = ("eff", "add")
EFF_ATTN_INPUTS = ("raw", "proj")
EFF_AUX_INPUTS = ("gated", "proj")


@dataclass(frozen=True)
class RTSegConfig:
    """RTSeg-Net family member. Defaults are the released network (the ``paper`` preset).

    Stage layout is fixed (3 conv stages, 2 token stages, mirrored decoder); what varies is
    described per field. See ``docs/architecture.md`` for the blocks.
    """

    in_channels: int = 1
    num_classes: int = 3  # background, PS, FH
    conv_widths: tuple[int, int, int] = (16, 32, 128)  # encoder conv stages (and decoder up3/up4/up5)
    token_widths: tuple[int, int] = (160, 256)  # tokenized stages 4 and 5
    enc_depths: tuple[int, int] = (1, 1)  # TMP blocks in token stages 4 and 5
    dec_depths: tuple[int, int] = (1, 1)  # TMP blocks after fuse1 and fuse2
    mlp_ratio: float = 1.0  # hidden width of the shifted MLP = round(C * mlp_ratio)
    shift_size: int = 5  # channel groups shifted by -shift//2 .. shift//2 pixels
    dsconv: bool = True  # encoder convs are DSConv (no bias); False = plain conv with bias (UNeXt)
    dsconv_block_size: int = 32  # input-channel block of one KDS scale
    dsconv_bits: int | None = None  # None = float conv (released); b = VQK/KDS fake quantization
    activation: str = "hardswish"
    fusion: str = "eff"  # "eff" (RTSeg-Net) or "add" (UNeXt's additive skips)
    eff_attn_input: str = "raw"  # channel attention on F_D + F_S ("raw", released) or F_D' + F_S' ("proj", figure)
    eff_aux_input: str = "gated"  # aux head on gamma * F_D' ("gated", released) or F_D' ("proj", figure)
    eff_dilation: int = 2  # dilation of EFF's 3x3 decoder conv
    eff_gate_kernel: int = 3  # 1-D gate kernel along channels; 0 = ECA's adaptive size
    deep_supervision: bool = True  # four aux logit maps from the EFF blocks while training
    drop_path: float = 0.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        # Coerce JSON lists back to tuples so configs compare and hash equal after a round trip.
        for name in ("conv_widths", "token_widths", "enc_depths", "dec_depths"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, rule: str) -> NoReturn:
            raise ConfigError(f"RTSegConfig.{field}: {rule}, got {brief(getattr(self, field))}")

        # Types first: JSON "false" (a string) is truthy and would silently build the wrong model.
        for field in ("dsconv", "deep_supervision"):
            if not isinstance(getattr(self, field), bool):
                fail(field, "must be true or false (a JSON boolean, not a string or number)")
        for field in ("activation", "fusion", "eff_attn_input", "eff_aux_input"):
            if not isinstance(getattr(self, field), str):
                fail(field, "must be a string")
        for field in ("mlp_ratio", "drop_path", "dropout"):
            value = getattr(self, field)
            if not is_finite_number(value):
                fail(field, "must be a finite number")

        for field, n in (("conv_widths", 3), ("token_widths", 2), ("enc_depths", 2), ("dec_depths", 2)):
            value = getattr(self, field)
            if not isinstance(value, tuple) or len(value) != n or not all(_is_int(v) for v in value):
                fail(field, f"needs {n} integers (one per stage)")
        for field in ("conv_widths", "token_widths"):
            if not all(1 <= w <= MAX_WIDTH for w in getattr(self, field)):
                fail(field, f"widths must be from 1 to {MAX_WIDTH}")
        for field in ("enc_depths", "dec_depths"):
            if not all(0 <= d <= MAX_DEPTH for d in getattr(self, field)):
                fail(field, f"depths must be from 0 to {MAX_DEPTH}")
        for field, top in (
            ("in_channels", MAX_CHANNELS),
            ("num_classes", MAX_CLASSES),
            ("dsconv_block_size", MAX_WIDTH),
            ("eff_dilation", MAX_KERNEL),
        ):
            if not _is_int(getattr(self, field)) or not 1 <= getattr(self, field) <= top:
                fail(field, f"must be an integer from 1 to {top}")
        if not 0 < self.mlp_ratio <= MAX_MLP_RATIO:
            fail("mlp_ratio", f"must be > 0 and <= {MAX_MLP_RATIO:g}")
        if min(self.token_widths) * self.mlp_ratio < 1:
            fail("mlp_ratio", "gives an MLP hidden width below 1 channel")
        if not _is_int(self.shift_size) or not 1 <= self.shift_size <= MAX_KERNEL or self.shift_size % 2 == 0:
            fail("shift_size", "must be an odd integer >= 1 (shifts run from -shift//2 to shift//2)")
        if self.dsconv_bits is not None and (not _is_int(self.dsconv_bits) or not 2 <= self.dsconv_bits <= 8):
            fail("dsconv_bits", "must be null (float conv) or an integer from 2 to 8")
        if self.dsconv_bits is not None and not self.dsconv:
            fail("dsconv_bits", "needs dsconv=true")
        if (
            not _is_int(self.eff_gate_kernel)
            or not 0 <= self.eff_gate_kernel <= MAX_KERNEL
            or (self.eff_gate_kernel and self.eff_gate_kernel % 2 == 0)
        ):
            fail("eff_gate_kernel", "must be 0 (adaptive) or an odd integer >= 1")
        for field, options in (
            ("activation", ACTIVATIONS),
            ("fusion", FUSIONS),
            ("eff_attn_input", EFF_ATTN_INPUTS),
            ("eff_aux_input", EFF_AUX_INPUTS),
        ):
            if getattr(self, field) not in options:
                fail(field, f"must be one of {', '.join(options)}")
        if self.deep_supervision and self.fusion != "eff":
            fail("deep_supervision", "needs fusion='eff' (the aux heads live in the EFF blocks)")
        for field in ("drop_path", "dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                fail(field, "must be in [0, 1)")
        params = self.estimated_parameters()
        if params > MAX_PARAMETERS:
            raise ConfigError(
                f"RTSegConfig: {params:,} parameters ({params * 4 / 1e9:.1f} GB of float32 weights; widths "
                f"{list(self.conv_widths + self.token_widths)}, depths {list(self.enc_depths + self.dec_depths)}, "
                f"mlp_ratio {self.mlp_ratio:g}), more than the {MAX_PARAMETERS:,} this suite builds"
            )

    # -- derived -----------------------------------------------------------------------------
    def gate_kernel_for(self, channels: int) -> int:
        if self.eff_gate_kernel:
            return self.eff_gate_kernel
        # ECA-Net's adaptive kernel: |log2(C)/2 + 1/2|, forced odd.
        k = int(abs(math.log2(channels) / 2 + 0.5))
        return k if k % 2 else k + 1

    def estimated_parameters(self) -> int:
        """The trainable parameters of ``build_model(self)``, from the fields alone (nothing is built).

        Exact (tested against the built models); it mirrors the blocks of :mod:`models._model`.
        """
        c1, c2, c3 = self.conv_widths
        c4, c5 = self.token_widths
        k = self.num_classes

        def conv(cin: int, cout: int, kernel: int, bias: bool = True) -> int:
            return cin * cout * kernel * kernel + (cout if bias else 0)

        def token_stage(cin: int, dim: int, depth: int, embed: bool) -> int:
            hidden = max(1, round(dim * self.mlp_ratio))
            block = 2 * dim + (dim * hidden + hidden) + 10 * hidden + (hidden * dim + dim)  # LN, fc1, dw 3x3, fc2
            return (conv(cin, dim, 3) + 2 * dim if embed else 0) + depth * block + (2 * dim if depth else 0)

        encoder = sum(
            conv(cin, cout, 3, bias=not self.dsconv) + 2 * cout
            for cin, cout in ((self.in_channels, c1), (c1, c2), (c2, c3))
        )
        tokens = (
            token_stage(c3, c4, self.enc_depths[0], True)
            + token_stage(c4, c5, self.enc_depths[1], True)
            + token_stage(c4, c4, self.dec_depths[0], False)
            + token_stage(c3, c3, self.dec_depths[1], False)
        )
        decoder = sum(conv(cin, cout, 3) + 2 * cout for cin, cout in ((c5, c4), (c4, c3), (c3, c2), (c2, c1)))
        decoder += conv(c1, c1, 3) + conv(c1, k, 1)  # up5 (no norm) and the head
        if self.fusion == "eff":  # dilated 3x3, BN, 1x1, BN, alpha, beta, gate kernel and bias, aux head
            decoder += sum(10 * c * c + 4 * c + 3 + self.gate_kernel_for(c) + c * k for c in (c4, c3, c2, c1))
        return encoder + tokens + decoder

    def estimated_activation_bytes(self, size: int, *, training: bool = False) -> int:
        """Float32 bytes one image's forward pass at ``size`` x ``size`` allocates, summed over its layers.

        An upper bound of the peak at inference (maps are freed as the forward goes on); in
        training about what autograd keeps for the backward pass. Within a factor of 2 of a
        count of every tensor the forward creates (tested).
        """
        c1, c2, c3 = self.conv_widths
        c4, c5 = self.token_widths
        h1 = size // 2
        h2 = h1 // 2
        h3 = h2 // 2
        h4 = (h3 - 1) // 2 + 1  # the token stages' stride-2 patch embedding
        h5 = (h4 - 1) // 2 + 1

        def tokens(dim: int, depth: int, side: int, embed: bool) -> int:
            hidden = max(1, round(dim * self.mlp_ratio))
            block = 6 * dim + 6 * hidden  # LN, shifts, fc1, dw conv, GELU, fc2, residual
            return side * side * ((3 * dim if embed else 0) + depth * block + (2 * dim if depth else 0))

        fusion = 9 if self.fusion == "eff" else 1
        elements = (
            2 * c1 * size**2 + 2 * c1 * h1**2  # enc1: conv, BN at full size; pool, activation
            + 2 * c2 * (h1**2 + h2**2)
            + 2 * c3 * (h2**2 + h3**2)
            + tokens(c4, self.enc_depths[0], h4, True)
            + tokens(c5, self.enc_depths[1], h5, True)
            + 2 * c4 * (h5**2 + h4**2) + fusion * c4 * h4**2 + tokens(c4, self.dec_depths[0], h4, False)
            + 2 * c3 * (h4**2 + h3**2) + fusion * c3 * h3**2 + tokens(c3, self.dec_depths[1], h3, False)
            + 2 * c2 * (h3**2 + h2**2) + fusion * c2 * h2**2
            + 2 * c1 * (h2**2 + h1**2) + fusion * c1 * h1**2
            + c1 * h1**2 + 2 * c1 * size**2 + self.num_classes * size**2  # up5, head
        )  # fmt: skip
        if training and self.deep_supervision and self.fusion == "eff":
            elements += 4 * self.num_classes * (size**2 + h1**2)  # the aux maps and their resized copies
        return 4 * elements

    def check_memory(
        self, *, size: int, batch: int = 1, training: bool = False, limit_bytes: int | None = None, where: str = ""
    ) -> None:
        """Refuse, before anything is allocated, a run whose model and activations need more than the memory.

        Needed: weights (float32; in training also their gradients and AdamW's two moments) plus
        :meth:`estimated_activation_bytes` for ``batch`` images. ``limit_bytes``: the memory of the
        device the run uses (default: this machine's RAM), named by ``where``.
        """
        limit = physical_memory() if limit_bytes is None else limit_bytes
        weights = self.estimated_parameters() * (16 if training else 4)
        activations = self.estimated_activation_bytes(size, training=training) * batch
        if limit and weights + activations > limit:
            raise ConfigError(
                f"RTSegConfig: {'training' if training else 'running'} this model at {size}x{size}, batch {batch} "
                f"needs about {(weights + activations) / 2**30:.1f} GiB ({activations / 2**30:.1f} GiB of activations, "
                f"{weights / 2**30:.1f} GiB of weights{' and optimizer state' if training else ''}), more than the "
                f"{limit / 2**30:.1f} GiB of memory {where or 'this machine has'}; use a smaller --size, --batch-size "
                "or model"
            )

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> RTSegConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object of RTSegConfig fields, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(f"{source}: unknown RTSegConfig field {brief(key)}{more}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:  # e.g. a width given as a string that breaks a comparison
            raise ConfigError(f"{source}: {exc}") from None

    def replace(self, **changes: Any) -> RTSegConfig:
        return dataclasses.replace(self, **changes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def physical_memory() -> int:
    """This machine's RAM in bytes (0 when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0
