"""First-order optimizers on a flat parameter vector; the state is plain arrays so it can be saved exactly."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..optim import adam_step


class SGD:
    """``v ← μ·v + g;  θ ← θ − lr·v`` (heavy-ball momentum μ; μ = 0 is plain SGD)."""

    def __init__(self, dim: int, lr: float = 0.01, momentum: float = 0.9):
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity = np.zeros(dim)

    def step(self, theta, grad):
        self.velocity = self.momentum * self.velocity + grad
        return (theta - self.lr * self.velocity).astype(theta.dtype)


class Adam:
    """Kingma & Ba (2015), Algorithm 1, with bias correction; defaults β = (0.9, 0.999), ε = 1e-8 (optax's)."""

    def __init__(self, dim: int, lr: float = 3e-4, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.m, self.v, self.t = np.zeros(dim), np.zeros(dim), 0

    def step(self, theta, grad):
        self.t += 1
        step, self.m, self.v = adam_step(grad, self.m, self.v, self.t, self.lr, self.beta1, self.beta2, self.eps)
        return theta + step.astype(theta.dtype)


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def make(name: str, dim: int, lr: float, **options):
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise ConfigError(f"learning rate must be positive, got {lr}")
    return OPTIMIZERS[name](dim, lr=lr, **options)
