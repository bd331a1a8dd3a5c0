"""Gradient-based pruning scores at initialization: SNIP and GraSP (the paper's gradient-based baselines).

They need the supervised loss of a classification task. Higher survives, as for every esprune criterion:
- SNIP (Lee et al. 2019): |θ ⊙ ∇L|, the loss sensitivity of removing each weight. The paper's rule (its
  ``src/prune/snip.py``, the default): scored once, at the dense original init, on the whole training set (a
  loader batch of 60,000 = every MNIST training image), and that one ranking cut to each iteration's sparsity
  (the scores do not depend on the iteration: they are computed once per process and reused). Option
  ``rescore``: score the ticket's init under its current mask on the iteration's seeded training batch.
- GraSP (Wang et al. 2020), re-scored on the ticket's init under its current mask on one seeded training
  batch each iteration: S = −θ ⊙ Hg estimates how removing each weight changes the gradient norm; the
  paper removes the *highest* S (removal hurts gradient flow least), so the survival score here is θ ⊙ Hg.
  Hg is a central difference of gradients along g (``Objective.hvp``). As in the GraSP authors' code, the
  loss sees the logits divided by a temperature of 200: without it the score favours masks whose logits
  blow up (high loss, hence high gradient norm), and a GraSP ticket at 20% sparsity starts at a loss of ~27.
  This is the GraSP paper's rule, not the es-lottery code's: that code (``src/prune/grasp.py``, ``imp.py``)
  keeps the weights whose −θ ⊙ Hg lies above its (1 − sparsity) percentile, i.e. a fraction equal to the
  sparsity (20% kept at 20% sparsity, so its masks grow with the iterations) taken from the end the GraSP paper
  removes; it also uses only each layer's own Hessian block, no temperature, and 1,000 images at the dense init.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..errors import ConfigError
from ..params import Layout, Mask
from .losses import cross_entropy
from .objective import Objective

CRITERIA = ("snip", "grasp")
GRASP_TEMPERATURE = 200.0
SNIP_CHUNK = 500  # images per backward pass of the whole-training-set SNIP gradient (bounds the im2col memory)


def scores(criterion: str, task, net, mask, init: dict, seed: int, paper: bool = False) -> dict:
    """``{name: score}`` over the prunable tensors (pruned entries score 0; they do not compete).

    ``paper`` (SNIP only): the published rule, |θ₀ ⊙ ∇L(θ₀)| at the dense ``init`` over the whole training set,
    whatever ``mask`` and ``seed`` are. Otherwise the ticket's init under ``mask`` on the training batch of
    ``(seed, generation 0)``.
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown gradient criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if task.kind != "classify":
        raise ConfigError(f"{criterion} needs a supervised loss; {task.name} is not a classification task")
    if paper:
        if criterion != "snip":
            raise ConfigError("the once-at-init whole-training-set rule is SNIP's; GraSP re-scores each iteration")
        return snip_full_training_set(task, net, init)
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


def snip_full_training_set(task, net, init: dict) -> dict:
    """|θ₀ ⊙ ∇L(θ₀)| with L the mean cross-entropy over every training image and θ₀ the dense ``init``.

    Float32 arithmetic, as the published JAX code's; the chunks' gradients are summed in float64, weighted by
    their share of the images, in a fixed order. The scores depend only on the task's data, the network and
    ``init``, so they are computed once per process and reused at every iteration (MNIST's 60,000 images take
    minutes on 2 cores).
    """
    xtr, ytr, _, _ = task.prepare()
    key = (task.name, len(ytr), repr(net), _digest(init), _digest({"x": xtr, "y": ytr}))
    if key not in _SNIP_CACHE:
        layout = Layout(net.spec, Mask.dense(net.spec))
        theta = layout.flatten({n: np.asarray(v, dtype=np.float32) for n, v in init.items()})
        g = np.zeros(theta.size)
        for start in range(0, len(xtr), SNIP_CHUNK):
            sl = slice(start, start + SNIP_CHUNK)
            obj = Objective(net, layout, xtr[sl], ytr[sl], "cross_entropy")
            g += obj.grad(theta).astype(np.float64) * (len(ytr[sl]) / len(ytr))
        full = layout.unflatten(np.abs(theta.astype(np.float64) * g))
        _SNIP_CACHE.clear()  # one run's scores at a time
        _SNIP_CACHE[key] = {n: full[n] for n in net.spec.prunable_names}
    return {n: v.copy() for n, v in _SNIP_CACHE[key].items()}


_SNIP_CACHE: dict = {}


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _tempered_cross_entropy(out, labels):
    value, dout = cross_entropy(out / GRASP_TEMPERATURE, labels)
    return value, dout / GRASP_TEMPERATURE
