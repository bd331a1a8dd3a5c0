"""What every gradient-descent trainer returns, and the trainer a task gets (supervised or PPO)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError


@dataclass
class TrainResult:
    """A trained ticket in the shape an ES iteration stores: flat vectors over the layout's active parameters.

    ``train`` rows are (mean, max) fitness per logged step, as for ES: −batch loss per optimizer step for
    supervised training, mean and max episode return per PPO update. ``evals`` rows are (step, test score).
    """

    final: np.ndarray
    best: np.ndarray
    best_score: float
    best_step: int
    train: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    steps: int = 0


def make(task, **options):
    """The trainer for ``task``: supervised (Adam/SGD on cross-entropy) for classification, PPO for control.
    ``options`` are its keyword arguments, checked by name."""
    from .ppo import PPO
    from .supervised import Supervised

    factory = Supervised if task.kind == "classify" else PPO
    known = [p for p in inspect.signature(factory).parameters]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"gd_options for {task.name} ({factory.__name__}): unknown option(s) "
                          f"{', '.join(unknown)}; known: {', '.join(known)}")
    return factory(**options)


def network(task, config: dict):
    """The network a run with ``config`` trains on ``task``: the GD trainer's own where it has one (PPO's
    ``policy="paper"``), else the task's default network."""
    if config.get("trainer", "es") == "gd":
        trainer = make(task, **config.get("gd_options", {}))
        if hasattr(trainer, "network"):
            return trainer.network(task)
    return task.default_net()
