"""The five evolution strategies of the paper, by name: ``make(name, dim, popsize, seed, **hparams)``."""
from __future__ import annotations

from ..errors import ConfigError
from .base import SHAPING_DEFAULTS, Strategy
from .des import DES
from .open_es import OpenES
from .pgpe import PGPE
from .sep_cma_es import SepCMAES
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


__all__ = ["make", "hyperparameters", "canonical", "REGISTRY", "Strategy"]
