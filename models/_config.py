"""The one typed configuration of the RTSeg-Net family.

Every member of the family, from UNeXt to the released RTSeg-Net to a searched variant, is an
``RTSegConfig``; ``build_model(cfg)`` is the only constructor. Field names are also the Optuna
parameter names of the search space, so ``trials_dataframe()`` columns map back to fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, NoReturn

from rtseg_core import ConfigError

ACTIVATIONS = ("hardswish", "relu", "gelu")
# Upper bounds far above any sensible member, so a typo (a width of 10**6) is refused before it allocates.
MAX_WIDTH = 4096
MAX_DEPTH = 32
MAX_CHANNELS = 64
MAX_CLASSES = 256
MAX_MLP_RATIO = 16.0
MAX_KERNEL = 31
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
            raise ConfigError(f"RTSegConfig.{field}: {rule}, got {getattr(self, field)!r}")

        # Types first: JSON "false" (a string) is truthy and would silently build the wrong model.
        for field in ("dsconv", "deep_supervision"):
            if not isinstance(getattr(self, field), bool):
                fail(field, "must be true or false (a JSON boolean, not a string or number)")
        for field in ("activation", "fusion", "eff_attn_input", "eff_aux_input"):
            if not isinstance(getattr(self, field), str):
                fail(field, "must be a string")
        for field in ("mlp_ratio", "drop_path", "dropout"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
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

    # -- derived -----------------------------------------------------------------------------
    def gate_kernel_for(self, channels: int) -> int:
        if self.eff_gate_kernel:
            return self.eff_gate_kernel
        # ECA-Net's adaptive kernel: |log2(C)/2 + 1/2|, forced odd.
        k = int(abs(math.log2(channels) / 2 + 0.5))
        return k if k % 2 else k + 1

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
                raise ConfigError(f"{source}: unknown RTSegConfig field {key!r}{more}")
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
