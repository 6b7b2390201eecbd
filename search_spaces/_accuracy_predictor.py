"""An accuracy predictor over a supernet's subnets: inherited-weight Dice from the architecture alone.

Once-for-All's accuracy half (Cai et al., ICLR 2020): a regressor from the architecture to the
accuracy its inherited weights give, trained on a few hundred sampled subnets, lets an
evolutionary search score thousands of subnets per minute.

- **Features** come from the config as the search space's Optuna parameters
  (:func:`params_from_config`): ``onehot`` (one column per value of every parameter: the value
  grid of an integer range, the choices of a categorical) or ``numeric`` (the values themselves;
  a float DSConv, ``None``, is 0).
- **Split**: a subnet is held out when the SHA-256 of (seed, its config) falls in the lowest
  ``holdout`` share of all samples' hashes: deterministic, and independent of the order the
  samples were drawn or evaluated in.
- **Model choice**: each candidate (:data:`CANDIDATES`: ridge on one-hot features, gradient
  boosting on numeric ones) is scored by 5-fold cross-validated Spearman on the training part
  only; the best is refitted on the training part, and *that* model, never refitted on the
  held-out subnets, is the one the search uses and the held-out numbers describe.
- **Held-out agreement**: Spearman and Kendall tau with percentile-bootstrap intervals
  (:func:`rtseg_core.rank_agreement`) and the RMSE in Dice points, on subnets no candidate saw.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import RTSegConfig
from rtseg_core import ConfigError, RankAgreement, rank_agreement, spearman
from search_spaces._space import SearchSpace, params_from_config

CANDIDATES = ("ridge-onehot", "gbr-numeric", "gbr-onehot")
MIN_SAMPLES = 20  # 5 folds of at least 3 subnets each, and a held-out part of at least 4
FOLDS = 5


def _grid(kind: str, spec: Any) -> list[Any]:
    if kind == "int":
        low, high, step = spec
        return list(range(low, high + 1, step))
    return list(spec)


def feature_matrix(configs: Sequence[RTSegConfig], space: SearchSpace, kind: str) -> np.ndarray:
    """One row per config: ``onehot`` or ``numeric`` features of its search parameters (module docstring)."""
    params = space.parameters()
    rows = []
    for cfg in configs:
        values = params_from_config(cfg, space, check=False)
        row: list[float] = []
        for name, (p_kind, spec) in params.items():
            value = values[name]
            if kind == "onehot":
                row += [1.0 if value == v else 0.0 for v in _grid(p_kind, spec)]
            elif kind == "numeric":
                row.append(0.0 if value is None else float(value))
            else:
                raise ConfigError(f"accuracy predictor features {kind!r}: 'onehot' or 'numeric'")
        rows.append(row)
    return np.asarray(rows, dtype=float)


def holdout_mask(configs: Sequence[RTSegConfig], *, share: float, seed: int) -> np.ndarray:
    """True for the held-out configs (module docstring): the lowest ``share`` of the configs' hashes."""
    if not 0 < share < 1:
        raise ConfigError(f"--holdout: must be a share in (0, 1), got {share!r}")
    digests = [
        hashlib.sha256(f"{seed}:{json.dumps(c.to_dict(), sort_keys=True)}".encode()).hexdigest() for c in configs
    ]
    n_hold = max(1, round(share * len(configs)))
    order = sorted(range(len(configs)), key=lambda i: digests[i])
    mask = np.zeros(len(configs), dtype=bool)
    mask[order[:n_hold]] = True
    return mask


def _make(name: str, seed: int):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    if name == "ridge-onehot":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    if name.startswith("gbr-"):
        return GradientBoostingRegressor(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
        )
    raise ConfigError(f"accuracy predictor {name!r}: one of {', '.join(CANDIDATES)}")


def _features_of(name: str) -> str:
    return name.split("-", 1)[1]


@dataclass
class AccuracyPredictor:
    """The chosen regressor (fitted on the training part) and how well it ranks held-out subnets."""

    space: SearchSpace
    name: str
    model: Any = field(repr=False)
    n_train: int
    n_holdout: int
    cv_spearman: dict[str, float]
    holdout: RankAgreement
    rmse: float
    seed: int
    holdout_share: float

    def predict(self, configs: Sequence[RTSegConfig]) -> np.ndarray:
        return self.model.predict(feature_matrix(configs, self.space, _features_of(self.name)))

    def describe(self) -> str:
        h = self.holdout
        return (
            f"accuracy predictor {self.name} (chosen by {FOLDS}-fold CV Spearman on {self.n_train} subnets: "
            + ", ".join(f"{k} {v:.3f}" for k, v in self.cv_spearman.items())
            + f"); held out, n = {self.n_holdout}: Spearman {h.spearman:.3f} [{h.spearman_low:.3f}, "
            f"{h.spearman_high:.3f}], Kendall {h.kendall_tau:.3f} [{h.kendall_low:.3f}, {h.kendall_high:.3f}], "
            f"RMSE {self.rmse:.4f} Dice"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "candidates_cv_spearman": self.cv_spearman,
            "folds": FOLDS,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "holdout_share": self.holdout_share,
            "split": "sha256(seed:config) lowest share held out",
            "seed": self.seed,
            "holdout": self.holdout.to_dict(),
            "holdout_rmse": self.rmse,
        }


def fit_accuracy_predictor(
    configs: Sequence[RTSegConfig],
    dice: Sequence[float],
    space: SearchSpace,
    *,
    seed: int = 0,
    holdout: float = 0.2,
    candidates: Sequence[str] = CANDIDATES,
) -> AccuracyPredictor:
    """Choose, fit and judge the predictor on ``configs`` and their inherited Dice (module docstring)."""
    from sklearn.model_selection import KFold

    if len(configs) != len(dice):
        raise ConfigError(f"accuracy predictor: {len(configs)} configs but {len(dice)} Dice values")
    if len(configs) < MIN_SAMPLES:
        raise ConfigError(f"accuracy predictor: needs at least {MIN_SAMPLES} sampled subnets, got {len(configs)}")
    y = np.asarray(dice, dtype=float)
    mask = holdout_mask(configs, share=holdout, seed=seed)
    train = [c for c, m in zip(configs, mask) if not m]
    held = [c for c, m in zip(configs, mask) if m]
    y_train, y_held = y[~mask], y[mask]
    cv: dict[str, float] = {}
    folds = list(KFold(n_splits=FOLDS, shuffle=True, random_state=seed).split(np.arange(len(train))))
    for name in candidates:
        x = feature_matrix(train, space, _features_of(name))
        predicted = np.zeros(len(train))
        for fit_idx, test_idx in folds:
            predicted[test_idx] = _make(name, seed).fit(x[fit_idx], y_train[fit_idx]).predict(x[test_idx])
        rho = spearman(predicted, y_train)
        cv[name] = float(rho) if math.isfinite(rho) else -1.0
    best = max(cv, key=lambda k: cv[k])
    model = _make(best, seed).fit(feature_matrix(train, space, _features_of(best)), y_train)
    got = model.predict(feature_matrix(held, space, _features_of(best)))
    agreement = rank_agreement(got, y_held, seed=seed, a_label=f"predicted ({best})", b_label="inherited Dice")
    rmse = float(np.sqrt(np.mean((got - y_held) ** 2)))
    return AccuracyPredictor(
        space=space,
        name=best,
        model=model,
        n_train=len(train),
        n_holdout=len(held),
        cv_spearman=cv,
        holdout=agreement,
        rmse=rmse,
        seed=seed,
        holdout_share=holdout,
    )
