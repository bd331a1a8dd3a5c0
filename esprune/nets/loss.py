"""Classification losses per member on any array module, so fitness never leaves the device."""
from __future__ import annotations

from .. import backend as _backend
from .heads import apply_head


def cross_entropy(outputs, labels):
    """Mean cross-entropy per member ``(P,)`` of ``outputs`` ``(P, B, K)`` (logits or log-probabilities: a
    log-softmax of log-probabilities changes nothing) against integer ``labels`` ``(B,)``."""
    xp = _backend.array_module(outputs)
    logp = apply_head(xp, outputs.astype(xp.float64), "log_softmax")
    labels = xp.asarray(labels).astype(xp.int64)
    picked = xp.take_along_axis(logp, labels[None, :, None], axis=2)[..., 0]
    return -picked.mean(axis=1)


def correct(outputs, labels):
    """Correct predictions per member ``(P,)`` (argmax, first index on ties)."""
    xp = _backend.array_module(outputs)
    return (outputs.argmax(axis=2) == xp.asarray(labels)[None, :]).sum(axis=1)


def accuracy(outputs, labels):
    """Fraction of correct predictions per member ``(P,)``."""
    return correct(outputs, labels) / outputs.shape[1]
