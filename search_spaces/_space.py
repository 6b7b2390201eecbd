"""The architecture search space around the released RTSeg-Net, expressed with Optuna's define-by-run API.

One place documents what a search varies: :class:`SearchSpace` holds the ranges, and
:func:`suggest_config` is the only function that calls ``trial.suggest_*``. Everything a search
does not vary comes from the ``base`` preset (``paper`` by default).

Default space (widths are multiples of ``width_step`` = 8, hardware-friendly for GPUs/TensorRT):

================================  ==========================  ==============  ===================
Optuna parameter                  RTSegConfig field           ``paper``       range
================================  ==========================  ==============  ===================
``conv_widths.0/1/2``             ``conv_widths`` (C1-C3)     16, 32, 128     8-24, 16-48, 64-160
``token_widths.0/1``              ``token_widths`` (C4, C5)   160, 256        96-192, 128-320
``enc_depths.0/1``                ``enc_depths``              1, 1            0-3 each
``dec_depths.0/1``                ``dec_depths``              1, 1            0-2 each
``mlp_ratio``                     ``mlp_ratio``               1               1-4 (integers)
``shift_size``                    ``shift_size``              5               3, 5, 7
``dsconv_bits`` (only if chosen)  ``dsconv_bits``             none            e.g. none, 8, 4
``input_size`` (only if chosen)   (the deployment input)      latency size    e.g. 256, 192, 160
================================  ==========================  ==============  ===================

``input_size`` (``--input-sizes``) is not a config field: it is the side of the input a member is
deployed (timed) at, a multiple of 32, the largest being the study's latency size; the member's
proxy training runs at the training size scaled by ``input_size / latency size``
(``rtseg_core.scaled_size``; 96 px for 256 gives 72 px for 192). :func:`input_size_of` reads it.

Parameter names are the config field names; a tuple field's entries are ``field.index``
(``conv_widths.0`` is C1), so ``trials_dataframe()`` columns (``params_conv_widths.0``) map back
to fields with :func:`config_from_params`. A range whose low equals its high, or a choice list
with one entry, is fixed and not suggested at all.

Every proposal counts: with ``increasing_widths`` (default; C1 <= C2 <= ... <= C5, as in every
UNeXt-family network) the widths after C1 are not sampled directly, since the ranges of C1/C2,
C3/C4 and C4/C5 overlap and a sampler would propose narrowings that must be thrown away (6 of 16
proposals in a default 10-trial search were). Instead stage k >= 2 samples ``<field>.<i>.inc``,
its width above the smallest one it may take after stage k-1::

    C(k) = min(high(k), max(low(k), C(k-1)) + inc(k)),    inc(k) in [0, high(k) - low(k)], step 8

so every proposal is non-decreasing. The reachable set is exactly the non-decreasing width
tuples inside the ranges (each is reached by ``inc(k) = C(k) - max(low(k), C(k-1))``, which
:func:`params_from_config` returns, so ``paper`` round-trips); only where the ranges overlap do
several increments reach the top width (C(k) = high(k)), which is the price of fixed ranges
(samplers such as NSGA-II recombine only parameters whose range is the same in every trial).
Increment parameter names keep the field prefix (``conv_widths.1.inc``), so
``trials_dataframe()`` columns still map back to fields. :func:`check_config` remains as a guard
(an enqueued out-of-range value can still narrow) and gives the reason.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from models import PRESETS, RTSegConfig
from rtseg_core import ConfigError, brief, check_deploy_size

if TYPE_CHECKING:
    import optuna

# The tuple fields of RTSegConfig that a search varies entry by entry, with their lengths.
_TUPLE_FIELDS: dict[str, int] = {"conv_widths": 3, "token_widths": 2, "enc_depths": 2, "dec_depths": 2}
# The five stage widths C1..C5 in order, as (field, index).
_WIDTHS: tuple[tuple[str, int], ...] = (("conv_widths", 0), ("conv_widths", 1), ("conv_widths", 2),
                                        ("token_widths", 0), ("token_widths", 1))  # fmt: skip
INC = ".inc"  # suffix of an increment parameter (module docstring)
INPUT_SIZE = "input_size"  # the searched deployment input size (module docstring)


@dataclass(frozen=True)
class SearchSpace:
    """The ranges one search draws architectures from. Defaults: the table in the module docstring.

    Ranges are inclusive ``(low, high)`` pairs; widths move in steps of ``width_step`` and must
    be multiples of it. ``shift_size`` and ``dsconv_bits`` are choice lists (``None`` in
    ``dsconv_bits`` means a float DSConv, as released). ``base`` is the preset every field not
    searched comes from.
    """

    conv_widths: tuple[tuple[int, int], ...] = ((8, 24), (16, 48), (64, 160))
    token_widths: tuple[tuple[int, int], ...] = ((96, 192), (128, 320))
    width_step: int = 8
    enc_depths: tuple[int, int] = (0, 3)  # range of each of the two encoder token stages
    dec_depths: tuple[int, int] = (0, 2)  # range of each of the two decoder token stages
    mlp_ratio: tuple[int, int] = (1, 4)
    shift_size: tuple[int, ...] = (3, 5, 7)
    dsconv_bits: tuple[int | None, ...] = (None,)
    input_sizes: tuple[int, ...] = ()  # deployment sizes searched; () or one: the study's latency size
    increasing_widths: bool = True
    base: str = "paper"

    def __post_init__(self) -> None:
        # JSON gives lists; store tuples so spaces compare and hash equal after a round trip.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(tuple(v) if isinstance(v, list) else v for v in value))
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, rule: str) -> NoReturn:
            raise ConfigError(f"SearchSpace.{field}: {rule}, got {brief(getattr(self, field))}")

        if self.base not in PRESETS:
            fail("base", f"must be a preset ({', '.join(sorted(PRESETS))})")
        if not _is_int(self.width_step) or self.width_step < 1:
            fail("width_step", "must be an integer >= 1")
        for field, n in (("conv_widths", 3), ("token_widths", 2)):
            ranges = getattr(self, field)
            if len(ranges) != n or not all(_is_range(r) for r in ranges):
                fail(field, f"needs {n} (low, high) integer pairs with 1 <= low <= high")
            for low, high in ranges:
                if low % self.width_step or high % self.width_step:
                    fail(field, f"bounds must be multiples of width_step={self.width_step}")
        for field, minimum in (("enc_depths", 0), ("dec_depths", 0), ("mlp_ratio", 1)):
            r = getattr(self, field)
            if not _is_range(r, minimum=minimum):
                fail(field, f"must be an integer (low, high) pair with {minimum} <= low <= high")
        if not self.shift_size or not all(_is_int(s) and s >= 1 and s % 2 for s in self.shift_size):
            fail("shift_size", "must list odd integers >= 1")
        if not self.dsconv_bits or not all(b is None or (_is_int(b) and 2 <= b <= 8) for b in self.dsconv_bits):
            fail("dsconv_bits", "must list None (float) and/or integers from 2 to 8")
        if len(set(self.shift_size)) != len(self.shift_size) or len(set(self.dsconv_bits)) != len(self.dsconv_bits):
            fail("shift_size" if len(set(self.shift_size)) != len(self.shift_size) else "dsconv_bits", "has duplicates")
        for size in self.input_sizes:
            check_deploy_size(size, option="SearchSpace.input_sizes")
        if len(set(self.input_sizes)) != len(self.input_sizes):
            fail("input_sizes", "has duplicates")
        if any(b is not None for b in self.dsconv_bits) and not PRESETS[self.base].dsconv:
            fail("dsconv_bits", f"needs a base preset with DSConv encoder convs ({self.base!r} has plain convs)")
        if self.increasing_widths:
            highs = [high for _low, high in self.width_ranges()]
            for k in range(1, len(highs)):
                if highs[k] < highs[k - 1]:
                    fail(
                        "conv_widths" if k < 3 else "token_widths",
                        f"with increasing_widths the high end of C{k + 1} ({highs[k]}) must not be below that of "
                        f"C{k} ({highs[k - 1]}), or some widths of C{k} could not be followed",
                    )

    def width_ranges(self) -> list[tuple[int, int]]:
        """The (low, high) range of C1..C5 in stage order."""
        return [tuple(getattr(self, f)[i]) for f, i in _WIDTHS]

    # -- what is searched ---------------------------------------------------------------------
    def parameters(self) -> dict[str, tuple[str, Any]]:
        """Every searched Optuna parameter: ``name -> ("int", (low, high, step)) | ("categorical", choices)``.

        Fixed ranges (low == high, one choice) are left out; :func:`config_from_params` fills them in.
        """
        out: dict[str, tuple[str, Any]] = {}
        for k, ((field, i), (low, high)) in enumerate(zip(_WIDTHS, self.width_ranges())):
            if low == high:
                continue
            if k == 0 or not self.increasing_widths:
                out[f"{field}.{i}"] = ("int", (low, high, self.width_step))
            else:
                out[f"{field}.{i}{INC}"] = ("int", (0, high - low, self.width_step))
        for field in ("enc_depths", "dec_depths"):
            low, high = getattr(self, field)
            if low != high:
                for i in range(_TUPLE_FIELDS[field]):
                    out[f"{field}.{i}"] = ("int", (low, high, 1))
        if self.mlp_ratio[0] != self.mlp_ratio[1]:
            out["mlp_ratio"] = ("int", (self.mlp_ratio[0], self.mlp_ratio[1], 1))
        if len(self.shift_size) > 1:
            # An ordered integer range when the choices are 3, 5, 7...: samplers can then exploit order.
            s = sorted(self.shift_size)
            if s == list(range(s[0], s[-1] + 1, 2)):
                out["shift_size"] = ("int", (s[0], s[-1], 2))
            else:
                out["shift_size"] = ("categorical", tuple(self.shift_size))
        if len(self.dsconv_bits) > 1:
            out["dsconv_bits"] = ("categorical", tuple(self.dsconv_bits))
        if len(self.input_sizes) > 1:
            out[INPUT_SIZE] = ("categorical", tuple(sorted(self.input_sizes, reverse=True)))
        return out

    def fixed_values(self) -> dict[str, Any]:
        """The value of every parameter the space fixes (low == high, one choice)."""
        searched = self.parameters()
        fixed: dict[str, Any] = {}
        for (field, i), (low, high) in zip(_WIDTHS, self.width_ranges()):
            if low == high:  # a fixed width, in either parametrisation
                fixed[f"{field}.{i}"] = low
        for field in ("enc_depths", "dec_depths"):
            for i in range(_TUPLE_FIELDS[field]):
                if f"{field}.{i}" not in searched:
                    fixed[f"{field}.{i}"] = getattr(self, field)[0]
        if "mlp_ratio" not in searched:
            fixed["mlp_ratio"] = self.mlp_ratio[0]
        if "shift_size" not in searched:
            fixed["shift_size"] = self.shift_size[0]
        if "dsconv_bits" not in searched:
            fixed["dsconv_bits"] = self.dsconv_bits[0]
        return fixed

    def size(self) -> int:
        """How many distinct architectures the space holds (with ``increasing_widths``: only
        non-decreasing width tuples, every one of which a proposal can reach)."""
        n = 1
        for name, (kind, spec) in self.parameters().items():
            if self._is_width(name):
                continue
            n *= (spec[1] - spec[0]) // spec[2] + 1 if kind == "int" else len(spec)
        return n * self._width_count()

    def _is_width(self, name: str) -> bool:
        return name.removesuffix(INC) in {f"{f}.{i}" for f, i in _WIDTHS}

    def _width_count(self) -> int:
        """Width tuples C1..C5 inside the ranges (non-decreasing ones with ``increasing_widths``)."""
        step = self.width_step
        counts: dict[int, int] = {0: 1}
        for low, high in self.width_ranges():
            nxt: dict[int, int] = {}
            for w in range(low, high + 1, step):
                nxt[w] = sum(c for v, c in counts.items() if v <= w or not self.increasing_widths)
            counts = nxt
        return sum(counts.values())

    def contains(self, cfg: RTSegConfig) -> bool:
        """Whether :func:`suggest_config` can produce ``cfg`` (fields outside the space must equal ``base``)."""
        try:
            params = params_from_config(cfg, self)
        except ConfigError:
            return False
        return config_from_params(params, self) == cfg and all(
            _in_spec(params[name], spec) for name, spec in self.parameters().items()
        )

    def member_error(self, cfg: RTSegConfig) -> str | None:
        """Why ``cfg`` is not an architecture of this space (one line naming the field), or ``None``.

        A supernet trained only the members of its space: a width off the grid or a shift size it
        never drew would run on weights that never learned it.
        """
        try:
            params_from_config(cfg, self)  # every field the space does not search is the base preset's
        except ConfigError as exc:
            return str(exc)
        for (field, i), (low, high) in zip(_WIDTHS, self.width_ranges()):
            width = getattr(cfg, field)[i]
            if not low <= width <= high or (width - low) % self.width_step:
                return (
                    f"RTSegConfig.{field}[{i}]: {width} is not a width of the space "
                    f"({low} to {high} in steps of {self.width_step})"
                )
        for field in ("enc_depths", "dec_depths"):
            low, high = getattr(self, field)
            for i, depth in enumerate(getattr(cfg, field)):
                if not low <= depth <= high:
                    return f"RTSegConfig.{field}[{i}]: {depth} is outside the space's {low} to {high}"
        low, high = self.mlp_ratio
        if not float(cfg.mlp_ratio).is_integer() or not low <= cfg.mlp_ratio <= high:
            return f"RTSegConfig.mlp_ratio: {cfg.mlp_ratio} is not an integer from {low} to {high}"
        for field in ("shift_size", "dsconv_bits"):
            if getattr(cfg, field) not in getattr(self, field):
                return (
                    f"RTSegConfig.{field}: {getattr(cfg, field)} is not one of the space's {list(getattr(self, field))}"
                )
        reason = check_config(cfg, self)
        if reason is None and not self.contains(cfg):  # a last guard: every check above passed
            reason = "not reachable from the space's parameters"
        return reason

    def smallest_config(self) -> RTSegConfig:
        """The config with every range at its low end (fewest parameters): a lower bound for ``--max-params``."""
        params = {}
        for name, (kind, spec) in self.parameters().items():
            params[name] = spec[0] if kind == "int" else min(spec, key=lambda v: -1 if v is None else v)
        return config_from_params(params, self)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "search space") -> SearchSpace:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown SearchSpace field(s) {unknown} (known: {sorted(names)})")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def describe(self) -> str:
        """A plain-text table of the space: parameter, paper value, range."""
        paper = params_from_config(PRESETS["paper"], self, check=False)
        rows = [("parameter", "paper", "range")]
        for name, (kind, spec) in self.parameters().items():
            if kind == "int":
                rng = f"{spec[0]}-{spec[1]}" + (f" step {spec[2]}" if spec[2] != 1 else "")
            else:
                rng = ", ".join("none" if v is None else str(v) for v in spec)
            rows.append((name, _fmt(paper.get(name)), rng))
        for name, value in self.fixed_values().items():
            rows.append((name, _fmt(paper.get(name)), f"fixed {_fmt(value)}"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
        ranges = ", ".join(
            f"C{k + 1} {f}.{i} {lo}-{hi} step {self.width_step}"
            for k, ((f, i), (lo, hi)) in enumerate(zip(_WIDTHS, self.width_ranges()))
        )
        lines.append(f"widths: {ranges}")
        if self.increasing_widths:
            lines.append(
                "C1 <= C2 <= C3 <= C4 <= C5 by construction: Ck = min(high, max(low, C(k-1)) + Ck.inc), "
                "so every proposal is a valid architecture"
            )
        lines.append(f"other fields from preset {self.base!r}; {self.size():,} combinations")
        return "\n".join(lines)


def suggest_config(trial: optuna.trial.BaseTrial, space: SearchSpace, *, check: bool = True) -> RTSegConfig:
    """Draw one architecture from ``space`` (the only place of the suite that calls ``trial.suggest_*``).

    With ``check``, raises :class:`ConfigError` with the reason when the drawn combination is
    impossible (see :func:`check_config`); the parameters are already recorded on the trial by then.
    """
    params: dict[str, Any] = {}
    for name, (kind, spec) in space.parameters().items():
        if kind == "int":
            low, high, step = spec
            params[name] = trial.suggest_int(name, low, high, step=step)
        else:
            params[name] = trial.suggest_categorical(name, list(spec))
    cfg = config_from_params(params, space)
    reason = check_config(cfg, space) if check else None
    if reason:
        raise ConfigError(reason)
    return cfg


def config_from_params(params: dict[str, Any], space: SearchSpace) -> RTSegConfig:
    """The config for Optuna ``params`` (missing ones take the space's fixed values).

    Raises :class:`ConfigError` naming the parameter when a value does not make a valid config.
    """
    values = {**space.fixed_values(), **params}
    unknown = sorted(set(values) - set(space.parameters()) - set(space.fixed_values()))
    if unknown:
        raise ConfigError(f"search parameters {unknown} are not in the search space ({sorted(space.parameters())})")
    widths = _decode_widths(values, space)
    changes: dict[str, Any] = {}
    for field, n in _TUPLE_FIELDS.items():
        if field in ("conv_widths", "token_widths"):
            changes[field] = tuple(widths[f"{field}.{i}"] for i in range(n))
        else:
            changes[field] = tuple(int(values[f"{field}.{i}"]) for i in range(n))
    changes["mlp_ratio"] = float(values["mlp_ratio"])
    changes["shift_size"] = int(values["shift_size"])
    bits = values["dsconv_bits"]
    changes["dsconv_bits"] = None if bits is None else int(bits)
    try:
        return PRESETS[space.base].replace(**changes)
    except ConfigError as exc:
        raise ConfigError(f"search parameters {params}: {exc}") from None


def params_from_config(cfg: RTSegConfig, space: SearchSpace, *, check: bool = True) -> dict[str, Any]:
    """The Optuna parameters (searched ones only) that give ``cfg``; used to enqueue the ``paper`` trial.

    With ``check`` a config that differs from the space's base preset in a field the space does
    not search raises :class:`ConfigError` (such a config cannot be expressed as parameters).
    """
    flat: dict[str, Any] = {}
    for field, n in _TUPLE_FIELDS.items():
        for i in range(n):
            flat[f"{field}.{i}"] = getattr(cfg, field)[i]
    ratio = cfg.mlp_ratio
    flat["mlp_ratio"] = int(ratio) if float(ratio).is_integer() else ratio
    flat["shift_size"] = cfg.shift_size
    flat["dsconv_bits"] = cfg.dsconv_bits
    if space.input_sizes:  # the reference is deployed at the full (latency) size
        flat[INPUT_SIZE] = max(space.input_sizes)
    if space.increasing_widths:  # the inverse of _decode_widths: increments above the smallest allowed width
        prev = None
        for (field, i), (low, _high) in zip(_WIDTHS, space.width_ranges()):
            width = getattr(cfg, field)[i]
            if prev is not None:
                flat[f"{field}.{i}{INC}"] = width - max(low, prev)
            prev = width
    if check:
        searched = {f.name for f in dataclasses.fields(RTSegConfig)} - {*_TUPLE_FIELDS, "mlp_ratio", "shift_size"}
        searched.discard("dsconv_bits")
        base = PRESETS[space.base]
        differ = sorted(f for f in searched if getattr(cfg, f) != getattr(base, f))
        if differ:
            raise ConfigError(
                f"the config differs from the search space's base preset {space.base!r} in {differ}, "
                "which the space does not search"
            )
    return {name: flat[name] for name in space.parameters()}


def reference_params(space: SearchSpace) -> dict[str, Any]:
    """The parameters to enqueue for the space's reference (its ``base`` preset, ``paper`` by default).

    Integer parameters may lie outside their range (Optuna accepts such a fixed value with a
    warning); a categorical choice cannot, so a space whose choices lack the reference's value
    raises :class:`ConfigError`: every study must contain the reference.
    """
    params = params_from_config(PRESETS[space.base], space)
    for name, (kind, spec) in space.parameters().items():
        if kind == "categorical" and params[name] not in spec:
            raise ConfigError(
                f"SearchSpace.{name.split('.')[0]}: the choices {list(spec)} lack the reference "
                f"{space.base!r}'s value {params[name]!r}; add it (every study contains the reference)"
            )
    return params


def input_size_of(params: dict[str, Any], space: SearchSpace, latency_size: int) -> int:
    """The deployment input size of a trial with Optuna ``params``: the searched ``input_size``, the
    space's one input size, or ``latency_size`` when the space does not search it."""
    if INPUT_SIZE in params:
        return int(params[INPUT_SIZE])
    return space.input_sizes[0] if len(space.input_sizes) == 1 else latency_size


def _decode_widths(values: dict[str, Any], space: SearchSpace) -> dict[str, int]:
    """C1..C5 from the parameters (direct widths, or C1 and increments: module docstring)."""
    out: dict[str, int] = {}
    prev: int | None = None
    for k, ((field, i), (low, high)) in enumerate(zip(_WIDTHS, space.width_ranges())):
        name = f"{field}.{i}"
        if low == high:
            width = low
        elif k == 0 or not space.increasing_widths:
            width = int(values[name])
        else:
            width = min(high, max(low, prev) + int(values[name + INC]))
        out[name] = width
        prev = width
    return out


def check_config(cfg: RTSegConfig, space: SearchSpace) -> str | None:
    """Why ``cfg`` is impossible in ``space`` (a one-line reason), or ``None`` if it may be built and trained."""
    if space.increasing_widths:
        widths = cfg.conv_widths + cfg.token_widths
        for i in range(len(widths) - 1):
            if widths[i] > widths[i + 1]:
                return (
                    f"widths must not decrease from stage to stage (increasing_widths): "
                    f"C{i + 1}={widths[i]} > C{i + 2}={widths[i + 1]} in {list(widths)}"
                )
    return None


def summarize_config(cfg: RTSegConfig) -> str:
    """A one-line summary of the searched fields, e.g. ``C16/32/128/160/256 e1,1 d1,1 r1 s5``."""
    widths = "/".join(str(w) for w in cfg.conv_widths + cfg.token_widths)
    ratio = cfg.mlp_ratio
    text = (
        f"C{widths} e{cfg.enc_depths[0]},{cfg.enc_depths[1]} d{cfg.dec_depths[0]},{cfg.dec_depths[1]} "
        f"r{int(ratio) if float(ratio).is_integer() else ratio} s{cfg.shift_size}"
    )
    if cfg.dsconv_bits is not None:
        text += f" b{cfg.dsconv_bits}"
    return text


def _in_spec(value: Any, spec: tuple[str, Any]) -> bool:
    kind, s = spec
    if kind == "int":
        low, high, step = s
        return _is_int(value) and low <= value <= high and (value - low) % step == 0
    return value in s


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_range(value: Any, *, minimum: int = 1) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(_is_int(v) for v in value)
        and minimum <= value[0] <= value[1]
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)
