"""Gradient-based pruning scores at initialization: SNIP and GraSP (the paper's gradient-based baselines).

Both are computed on the ticket's init under its current mask, on one seeded training batch of a
classification task (they need a supervised loss). Higher survives, as for every esprune criterion:
- SNIP (Lee et al. 2019): |θ ⊙ ∇L|, the loss sensitivity of removing each weight.
- GraSP (Wang et al. 2020): S = −θ ⊙ Hg estimates how removing each weight changes the gradient norm; the
  paper removes the *highest* S (removal hurts gradient flow least), so the survival score here is θ ⊙ Hg.
  Hg is a central difference of gradients along g (``Objective.hvp``). As in the GraSP authors' code, the
  loss sees the logits divided by a temperature of 200: without it the score favours masks whose logits
  blow up (high loss, hence high gradient norm), and a GraSP ticket at 20% sparsity starts at a loss of ~27.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..params import Layout
from .losses import cross_entropy
from .objective import Objective

CRITERIA = ("snip", "grasp")
GRASP_TEMPERATURE = 200.0


def scores(criterion: str, task, net, mask, init: dict, seed: int) -> dict:
    """``{name: score}`` over the prunable tensors (pruned entries score 0; they do not compete)."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown gradient criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if task.kind != "classify":
        raise ConfigError(f"{criterion} needs a supervised loss; {task.name} is not a classification task")
    xtr, ytr, _, _ = task.prepare()
    idx = task.batch(seed, 0)
    layout = Layout(net.spec, mask)
    loss = _tempered_cross_entropy if criterion == "grasp" else "cross_entropy"
    obj = Objective(net, layout, xtr[idx], ytr[idx], loss)
    theta = layout.flatten({n: np.asarray(v, dtype=np.float64) for n, v in init.items()})
    g = obj.grad(theta)
    s = np.abs(theta * g) if criterion == "snip" else theta * obj.hvp(theta, g)
    full = layout.unflatten(s)
    return {n: full[n] for n in net.spec.prunable_names}


def _tempered_cross_entropy(out, labels):
    value, dout = cross_entropy(out / GRASP_TEMPERATURE, labels)
    return value, dout / GRASP_TEMPERATURE
