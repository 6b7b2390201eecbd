"""Input sizes at two scales: a deployment size and the training size that stands for it.

The network accepts any input of at least 16 px (its decoder resizes to each skip's size); a
multiple of 32 halves exactly in all five stride-2 stages, so deployment sizes (where a model is
timed and used) are multiples of 32. A study trains at a proxy size (e.g. 96 px on a CPU) and
times at the latency size (256); a model deployed at ``D`` trains at the same fraction
``D / latency_size`` of the training size, so a proxy run sees the scene at the same relative
resolution as the deployed model: ``scaled_size(96, 192, 256) == 72``.
"""

from __future__ import annotations

from typing import Any

from rtseg_core._errors import ConfigError

#: Deployment sizes are multiples of this: five stride-2 stages halve it exactly.
SIZE_MULTIPLE = 32
#: The smallest training size (the data's minimum side).
MIN_TRAIN_SIZE = 16


def check_deploy_size(size: Any, *, option: str, error: type[ConfigError] = ConfigError) -> int:
    """``size`` if it is a deployment size (a multiple of 32, at least 32), else ``error`` naming ``option``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        raise error(
            f"{option} {size!r}: a deployment input size must be a multiple of {SIZE_MULTIPLE} (>= {SIZE_MULTIPLE}): "
            "the network's five stride-2 stages halve it exactly (other sizes run, but round at every stage)"
        )
    return size


def scaled_size(training_size: int, deploy_size: int, latency_size: int) -> int:
    """The training size of a model deployed at ``deploy_size`` when full-size models train at
    ``training_size`` and are timed at ``latency_size``: ``round(training_size * deploy_size / latency_size)``,
    at least 16 px. E.g. (96, 192, 256) -> 72, (96, 160, 256) -> 60, (256, 192, 256) -> 192."""
    for name, value in (("training_size", training_size), ("deploy_size", deploy_size), ("latency_size", latency_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"scaled_size: {name} must be a positive integer, got {value!r}")
    return max(MIN_TRAIN_SIZE, round(training_size * deploy_size / latency_size))
