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
    elif name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; available: {', '.join(TASKS)}, or gym:<Gymnasium env id>")
    else:
        factory = TASKS[name]
    known = list(options_of(name))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"task {name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        return factory(**options)
    except ConfigError as err:  # a bad option value: say which task's option it is, as for unknown ones
        if str(err).startswith(f"task {name}") or str(err).startswith(name):
            raise
        raise type(err)(f"task {name}: {err}") from None


def options_of(name: str) -> dict:
    """The options a task takes (config table ``task_options``) with their defaults, in signature order: the
    keyword arguments of its constructor (``gym:<env id>``: of ``GymVectorTask``). Tuples become lists (JSON)."""
    if name.startswith(gym_vector.PREFIX):
        params = list(inspect.signature(gym_vector.GymVectorTask).parameters.values())[1:]
    elif name in TASKS:
        params = list(inspect.signature(TASKS[name]).parameters.values())
    else:
        raise ConfigError(f"unknown task {name!r}; available: {', '.join(TASKS)}, or gym:<Gymnasium env id>")
    return {p.name: (list(p.default) if isinstance(p.default, tuple) else p.default) for p in params}


__all__ = ["make", "options_of", "TASKS"]
