"""Tasks score a whole population at once: ``make(name, **options).evaluate(net, layout, pop, seed)``."""
from __future__ import annotations

import functools
import inspect

from ..errors import ConfigError
from . import classify, control, gym_vector, locomotion

TASKS = {**control.TASKS, **classify.TASKS, **locomotion.TASKS}


def make(name: str, **options):
    """A task by name; ``options`` are its keyword arguments (checked, so a typo is a clear error).
    ``gym:<env id>`` is any Gymnasium environment through the vector API (``gym_vector``, the slow path)."""
    if name.startswith(gym_vector.PREFIX):
        factory = functools.partial(gym_vector.make, name)
        known = list(inspect.signature(gym_vector.GymVectorTask).parameters)[1:]
    elif name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; available: {', '.join(TASKS)}, or gym:<Gymnasium env id>")
    else:
        factory = TASKS[name]
        known = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"task {name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return factory(**options)


__all__ = ["make", "TASKS"]
