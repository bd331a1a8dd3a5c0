"""Population forward passes of masked networks (and the paper's presets)."""
from .heads import apply_head
from .mlp import MLP

__all__ = ["MLP", "apply_head"]
