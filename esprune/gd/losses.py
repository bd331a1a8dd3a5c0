"""Losses of one network's batch output, each returning the value and its derivative with respect to the output."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..nets import apply_head


def cross_entropy(out, labels):
    """Mean cross-entropy of outputs ``(B, K)`` (logits or log-probabilities) against integer ``labels``;
    the same number as ``esprune.nets.cross_entropy``."""
    logp = apply_head(np, out[None], "log_softmax")[0]
    B = out.shape[0]
    rows = np.arange(B)
    value = -logp[rows, labels].mean()
    dout = np.exp(logp)
    dout[rows, labels] -= 1
    return value, dout / B


def mse(out, target):
    """Mean over every entry of (out − target)²; ``target`` has the output's shape."""
    target = np.asarray(target, dtype=out.dtype).reshape(out.shape)
    diff = out - target
    return float((diff * diff).mean()), 2 * diff / diff.size


LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def get(name: str):
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
