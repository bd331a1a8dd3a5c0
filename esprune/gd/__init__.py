"""The gradient-descent reference: exact numpy backprop of esprune's masked networks, Adam/SGD, supervised
training, PPO for control, SNIP/GraSP scores and Hessian-vector products. No autodiff framework.

``make_trainer`` lives here (as ``strategies.make`` does), above the trainers it chooses between, so that
``trainer.py`` (TrainResult) is imported by them and imports none of them: no import circle.
"""
from __future__ import annotations

import inspect

from ..errors import ConfigError
from .objective import Objective, hessian_vector_product
from .ppo import PPO
from .supervised import Supervised
from .trainer import TrainResult


def trainer_class(task):
    """The trainer a task gets: Supervised (Adam/SGD on cross-entropy) for classification, PPO for control."""
    return Supervised if task.kind == "classify" else PPO


def make_trainer(task, **options):
    """The trainer for ``task`` with ``options`` (its keyword arguments, checked by name)."""
    factory = trainer_class(task)
    known = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"gd_options for {task.name} ({factory.__name__}): unknown option(s) "
                          f"{', '.join(unknown)}; known: {', '.join(known)}")
    return factory(**options)


def network(task, config):
    """The network a run with ``config`` trains on ``task``: the GD trainer's own where it has one (PPO's
    ``policy="paper"``), else the task's default network."""
    if config.get("trainer", "es") == "gd":
        trainer = make_trainer(task, **config.get("gd_options", {}))
        if hasattr(trainer, "network"):
            return trainer.network(task)
    return task.default_net()


__all__ = ["Objective", "hessian_vector_product", "TrainResult", "make_trainer", "network", "trainer_class"]
