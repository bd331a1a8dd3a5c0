"""Output heads applied to a population's logits ``(P, B, out)`` on any array module."""
from __future__ import annotations

HEADS = ("linear", "tanh", "softmax", "log_softmax")


def apply_head(xp, y, head: str):
    if head == "linear":
        return y
    if head == "tanh":
        return xp.tanh(y)
    shifted = y - y.max(axis=-1, keepdims=True)  # stable: the largest logit becomes 0
    if head == "log_softmax":
        return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    e = xp.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
