"""Named members of the family. Variants are ``replace``-d from ``paper``, not copied."""

from __future__ import annotations

import difflib
from pathlib import Path

from models._config import RTSegConfig
from rtseg_core import ConfigError, read_json

PRESETS: dict[str, RTSegConfig] = {"paper": RTSegConfig()}
# The figure's EFF wiring: attention and aux head on the projected maps.
PRESETS["paper-figure"] = PRESETS["paper"].replace(eff_attn_input="proj", eff_aux_input="proj")
# UNeXt as published (MICCAI 2022): 3-channel input, one class, plain convs, ReLU, additive skips.
PRESETS["unext"] = PRESETS["paper"].replace(
    in_channels=3, num_classes=1, dsconv=False, activation="relu", fusion="add", deep_supervision=False
)


def list_presets() -> list[str]:
    return sorted(PRESETS)


def create_config(name_or_path: str | Path | RTSegConfig, **overrides) -> RTSegConfig:
    """A preset name, a JSON file (a config, or ``{"config": {...}}`` as ``info --json`` writes), or a config.

    ``overrides`` replace fields (``None`` values are ignored so callers can pass optional CLI flags).
    """
    if isinstance(name_or_path, RTSegConfig):
        cfg = name_or_path
    elif str(name_or_path) in PRESETS:
        cfg = PRESETS[str(name_or_path)]
    elif str(name_or_path).endswith(".json") or Path(name_or_path).is_file():
        path = Path(name_or_path)
        data = read_json(path)
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = data["config"]
        cfg = RTSegConfig.from_dict(data, source=str(path))
    else:
        hint = difflib.get_close_matches(str(name_or_path), PRESETS, n=1)
        more = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"--arch: {str(name_or_path)!r} is neither a preset ({', '.join(list_presets())}) "
            f"nor a config JSON file.{more}"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        try:
            cfg = cfg.replace(**changes)
        except TypeError as exc:
            raise ConfigError(f"config override: {exc}") from None
    return cfg
