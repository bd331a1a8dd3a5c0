"""The one Adam step, shared by the gradient-based strategies (OpenAI-ES, PGPE) and the gradient-descent
reference (``gd.optim.Adam``). It sits low in the import floors so that both can use it."""
from __future__ import annotations


def adam_step(grad, m, v, t: int, lrate: float, beta1: float, beta2: float, eps: float):
    """One bias-corrected Adam descent step along ``grad`` (Kingma & Ba 2015, Algorithm 1; t counts from 1).
    Works on numpy or cupy arrays of any shape; returns (step, m, v), the step to *add* to the parameters."""
    m = (1 - beta1) * grad + beta1 * m
    v = (1 - beta2) * grad * grad + beta2 * v
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return -lrate * m_hat / (v_hat**0.5 + eps), m, v
