"""Tasks score a whole population at once: ``make(name, **options).evaluate(net, layout, pop, seed)``."""
from __future__ import annotations

import inspect

from ..errors import ConfigError
from . import classify, control, locomotion

TASKS = {**control.TASKS, **classify.TASKS, **locomotion.TASKS}


def make(name: str, **options):
    """A task by name; ``options`` are its keyword arguments (checked, so a typo is a clear error)."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; available: {', '.join(TASKS)}")
    factory = TASKS[name]
    known = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"task {name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return factory(**options)


__all__ = ["make", "TASKS"]
