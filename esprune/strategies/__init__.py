"""The five evolution strategies of the paper, by name: ``make(name, dim, popsize, seed, **hparams)``."""
from __future__ import annotations

from ..errors import ConfigError
from .base import SHAPING_DEFAULTS, TIES, Strategy
from .des import DES
from .open_es import OpenES
from .pgpe import PGPE, SIGMA_RULES
from .sep_cma_es import LEARNING_RATES, SepCMAES
from .snes import SNES

REGISTRY = {cls.name: cls for cls in (OpenES, PGPE, SNES, SepCMAES, DES)}
# The paper's (evosax) spellings.
ALIASES = {"OpenES": "open_es", "PGPE": "pgpe", "SNES": "snes", "Sep_CMA_ES": "sep_cma_es", "DES": "des"}


def canonical(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(REGISTRY)} "
                          f"(or {', '.join(ALIASES)})")
    return key


def make(name: str, dim: int, popsize: int, seed: int = 0, backend="numpy", **hparams) -> Strategy:
    """A strategy by its name or the paper's spelling, with hyperparameters overriding its defaults."""
    return REGISTRY[canonical(name)](dim, popsize, seed=seed, backend=backend, **hparams)


def hyperparameters(name: str) -> dict:
    """Every hyperparameter a strategy takes, with its default."""
    cls = REGISTRY[canonical(name)]
    return {**SHAPING_DEFAULTS, **cls.defaults}


def choices(name: str) -> dict:
    """The hyperparameters that choose a rule rather than set a number: ``{option: {value: description}}``."""
    out = {"ties": dict(TIES)}
    if canonical(name) == "sep_cma_es":
        out["learning_rates"] = dict(LEARNING_RATES)
    if canonical(name) == "pgpe":
        out["sigma_rule"] = dict(SIGMA_RULES)
    return out


def resolved_options(name: str, options: dict) -> dict:
    """``options`` plus the default of every rule-choosing hyperparameter not given, so that a stored config
    says which variant ran even if a default changes later."""
    defaults = hyperparameters(name)
    return {**{key: defaults[key] for key in choices(name)}, **options}


__all__ = ["make", "hyperparameters", "choices", "resolved_options", "canonical", "REGISTRY", "Strategy"]
