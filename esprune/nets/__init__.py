"""Population forward passes of masked networks (and the paper's presets)."""
from .cnn import CNN, mnist_cnn
from .heads import apply_head
from .loss import accuracy, correct, cross_entropy
from .mlp import MLP

__all__ = ["MLP", "CNN", "mnist_cnn", "apply_head", "cross_entropy", "accuracy", "correct"]
