"""Pruning: criteria over the prunable weights, one global threshold, and the paper's ticket makers.

A *ticket* is ``(init, mask)``: the weights a training run starts from and the weights it may use. After IMP
iteration ``k`` exactly ``round(keep**k · n)`` of the ``n`` prunable weights stay active (biases are never
pruned). Only active weights compete, so masks nest (except ``permute-permute``, which moves them on purpose);
ties are broken by position so the count is exact and the result deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import noise
from .errors import ConfigError
from .params import Mask, ParamSpec

CRITERIA = ("magnitude", "snr", "random", "movement")


def scores(criterion: str, spec: ParamSpec, *, mean, std=None, init=None, seed: int = 0, iteration: int = 0,
           snr_variance: bool = False) -> dict:
    """Per-weight importance ``{name: array}`` over the prunable tensors; higher survives.

    ``snr`` is |mean| / std with the true search std; ``snr_variance`` ranks by |mean| / std² instead, which
    is the published code's Sep-CMA-ES variant (|μ| / C: σ² is one scalar and does not change the order).
    """
    names = spec.prunable_names
    if criterion == "magnitude":
        return {n: np.abs(mean[n]) for n in names}
    if criterion == "snr":
        power = 2 if snr_variance else 1
        with np.errstate(divide="ignore", invalid="ignore"):  # pruned weights have std 0; they never compete
            return {n: np.abs(mean[n]) / np.asarray(std[n], dtype=np.float64) ** power for n in names}
    if criterion == "movement":
        return {n: np.abs(np.asarray(mean[n], np.float64) - init[n]) for n in names}
    if criterion == "random":
        words = noise.philox_uint32(seed, iteration, 1, spec.prunable_size, stream=noise.MASK)[0]
        flat = words.astype(np.float64)
        return _split(flat, spec)
    raise ConfigError(f"unknown pruning criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")


def kept_after(prunable: int, keep: float, iteration: int) -> int:
    """Active prunable weights after IMP iteration ``iteration``: sparsity 1 − keep**k to one weight."""
    return int(round(prunable * keep**iteration))


def prune_to(score: dict, mask: Mask, n_keep: int) -> tuple[Mask, float]:
    """Keep the ``n_keep`` best-scoring active weights over all layers at once.

    Returns the new mask and the threshold (the lowest surviving score; NaN when nothing survives).
    Pruned weights never come back; NaN scores rank lowest; among equal scores the earlier position survives.
    """
    spec = mask.spec
    active = _join(mask, spec)
    if n_keep > active.sum():
        raise ConfigError(f"cannot keep {n_keep} weights, only {int(active.sum())} are active")
    s = np.nan_to_num(_join(score, spec).astype(np.float64), nan=-np.inf)
    candidates = np.flatnonzero(active)
    order = np.lexsort((candidates, -s[candidates]))  # best score first, then lowest position
    survivors = candidates[order[:n_keep]]
    keep = np.zeros_like(active)
    keep[survivors] = True
    threshold = float(s[survivors].min()) if n_keep else float("nan")
    return Mask(_split(keep, spec), spec), threshold


@dataclass
class Ticket:
    init: dict
    mask: Mask
    threshold: float = float("nan")


# name → (criterion that ranks the weights, how the next init is made)
TICKETS = {
    "magnitude": ("magnitude", "rewind"),           # the paper's "final-ticket"
    "snr": ("snr", "rewind"),                       # "sig2noise"
    "random-reinit": ("random", "reinit"),
    "magnitude-permute": ("magnitude", "permute"),  # "final-ticket_permute"
    "permute-permute": ("magnitude", "permute-mask"),  # "final_permute-ticket_permute"
    "mask-reinit": ("magnitude", "reinit"),
    "movement": ("movement", "rewind"),
    "snip": ("snip", "rewind"),                     # gradient-based, at init (classification tasks)
    "grasp": ("grasp", "rewind"),
}
GRADIENT = ("snip", "grasp")  # criteria that need the task's loss (esprune.gd.criteria)
ALIASES = {"final-ticket": "magnitude", "sig2noise": "snr", "final-ticket_permute": "magnitude-permute",
           "final_permute-ticket_permute": "permute-permute"}


def canonical(kind: str) -> str:
    kind = ALIASES.get(kind, kind)
    if kind not in TICKETS:
        raise ConfigError(f"unknown pruning method {kind!r}; choose one of {', '.join(TICKETS)}")
    return kind


def next_ticket(kind: str, net, *, init: dict, mean: dict, std: dict | None, mask: Mask, iteration: int,
                keep: float, seed: int, snr_variance: bool = False, task=None) -> Ticket:
    """The ticket of IMP iteration ``iteration`` (≥ 1) from the network trained at ``iteration − 1``.

    ``init`` is the original initialization (iteration 0), ``mean``/``std`` the trained search distribution
    (``std`` None for gradient descent); ``task`` supplies the loss of the gradient criteria (SNIP, GraSP).
    """
    criterion, make_init = TICKETS[canonical(kind)]
    spec = net.spec
    if criterion in GRADIENT:
        from .gd import criteria

        score = criteria.scores(criterion, task, net, mask, init, seed)
    else:
        score = scores(criterion, spec, mean=mean, std=std, init=init, seed=seed, iteration=iteration,
                       snr_variance=snr_variance)
    new_mask, threshold = prune_to(score, mask, kept_after(spec.prunable_size, keep, iteration))
    rng = np.random.default_rng([seed, iteration, 0x7E5])
    if make_init == "rewind":
        new_init = {n: v.copy() for n, v in init.items()}
    elif make_init == "reinit":
        new_init = net.init(int(rng.integers(2**31)))
    elif make_init == "permute":
        new_init = _permute_survivors(init, new_mask, rng)
    else:  # "permute-mask": each layer's mask positions shuffled, then the surviving values shuffled
        new_mask = Mask({n: rng.permutation(new_mask[n].reshape(-1)).reshape(new_mask[n].shape)
                         for n in spec.prunable_names}, spec)
        new_init = _permute_survivors(init, new_mask, rng)
    return Ticket(new_init, new_mask, threshold)


def _permute_survivors(init: dict, mask: Mask, rng) -> dict:
    """``init`` with the values at each layer's active positions shuffled among those positions."""
    out = {n: v.copy() for n, v in init.items()}
    for n in mask:
        flat = out[n].reshape(-1)
        where = np.flatnonzero(mask[n].reshape(-1))
        flat[where] = flat[rng.permutation(where)]
    return out


def _join(tensors, spec: ParamSpec) -> np.ndarray:
    return np.concatenate([np.asarray(tensors[n]).reshape(-1) for n in spec.prunable_names])


def _split(flat: np.ndarray, spec: ParamSpec) -> dict:
    out, start = {}, 0
    for n in spec.prunable_names:
        size = spec[n].size
        out[n] = flat[start:start + size].reshape(spec[n].shape)
        start += size
    return out
