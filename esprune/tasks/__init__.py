"""Tasks score a whole population at once: ``make(name, **options).evaluate(net, layout, pop, seed)``."""
from .control import TASKS, make

__all__ = ["make", "TASKS"]
