"""The range of every strategy hyperparameter, checked before a run starts (``esprune run`` validates the whole
config up front, so a value that would fail or poison the search deep inside a run is refused in one line).

One table, by name: a hyperparameter means the same thing in every strategy that takes it. The ranges are those
where the update rules are defined (PAPER.md, "The five strategies"); ``SIGMA_MAX`` bounds initial search stds,
since network weights are O(1) and larger stds overflow the float32 population.
"""
from __future__ import annotations

import math

from ..errors import ConfigError, written
from .base import TIES
from .pgpe import SIGMA_RULES
from .sep_cma_es import LEARNING_RATES

SIGMA_MAX = 1e4

# name → (lower, upper, lower open?, upper open?) for numbers; a tuple of choices for strings; bool for flags.
RANGES = {
    "centered_rank": bool, "z_score": bool, "norm_range": bool,
    "w_decay": (0.0, math.inf, False, True),
    "mean_decay": (0.0, 1.0, False, True),
    "opt": ("adam", "sgd"),
    "momentum": (0.0, 1.0, False, True),
    "lrate_init": (0.0, math.inf, True, True),
    "lrate_decay": (0.0, 1.0, True, False),
    "lrate_limit": (0.0, math.inf, False, True),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "eps": (0.0, math.inf, True, True),
    "sigma_init": (0.0, SIGMA_MAX, True, False),
    "sigma_decay": (0.0, 1.0, True, False),
    "sigma_limit": (0.0, SIGMA_MAX, False, False),
    "sigma_lrate": (0.0, math.inf, False, True),
    "sigma_max_change": (0.0, 1.0, False, True),
    "elite_ratio": (0.0, 1.0, True, False),
    "temperature": (0.0, math.inf, False, True),  # 0: SNES's rank utilities; < 0 would favour the worst members
    "lrate_mean": (0.0, math.inf, True, True),
    "lrate_sigma": (0.0, math.inf, False, True),  # None too, where a strategy derives it (SNES)
    "sigma_rule": tuple(SIGMA_RULES),
    "ties": tuple(TIES),
    "learning_rates": tuple(LEARNING_RATES),
}


def check(strategy: str, hparams: dict, defaults: dict) -> None:
    """Raise ConfigError naming the first hyperparameter of ``hparams`` whose type or value is out of range.

    ``defaults`` are the strategy's own (a None default admits None)."""
    for name, value in hparams.items():
        rule = RANGES.get(name)
        where = f"{strategy}: {name}"
        if rule is None or (value is None and defaults.get(name, 0) is None):
            continue
        if rule is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {written(value)}")
        elif isinstance(rule[0], str):
            if value not in rule:
                raise ConfigError(f"{where} must be one of {', '.join(rule)}, got {written(value)}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where} must be a number, got {written(value)}")
            lo, hi, lo_open, hi_open = rule
            inside = (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
            if not math.isfinite(value) or not inside:
                raise ConfigError(f"{where} must lie in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                                  f"{')' if hi_open else ']'} and be finite, got {written(value)}")
