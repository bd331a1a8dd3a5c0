"""Pruning: criteria over the prunable weights, one global threshold, and the paper's ticket makers.

A *ticket* is ``(init, mask)``: the weights a training run starts from and the weights it may use. After IMP
iteration ``k`` exactly ``round(keep**k · n)`` of the ``n`` prunable weights stay active (biases are never
pruned). Only active weights compete, so masks nest (except ``permute-permute``, which moves them on purpose,
and ``random-reinit``, whose mask is drawn afresh each iteration as in the paper's code); ties are broken by
position so the count is exact and the result deterministic.

Each method's rule, and where it departs from the published code (RobertTLange/es-lottery,
``src/prune/imp.py``), is in ``METHODS`` (``esprune pruning`` prints it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import noise
from .errors import ConfigError, written
from .params import Mask, ParamSpec

CRITERIA = ("magnitude", "snr", "random", "movement")
# The published code ranks by |μ|/C only for Sep-CMA-ES, whose C is a variance; for the other strategies it reads
# their σ vector, so |μ|/std² would be neither the paper's prose nor its code (PAPER.md, "Iterative pruning").
SNR_VARIANCE_STRATEGIES = ("sep_cma_es",)


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


# Options of the ticket makers (config key ``prune_options``) → the method each applies to; every default is the
# paper code's rule.
PRUNE_OPTIONS = {
    "rescore": "snip",          # re-score at each masked init on one training batch (default: once, dense, full set)
    "nested": "random-reinit",  # nest the random masks (default: a fresh uniform global mask each iteration)
}
# What a run file written before ``prune_options`` existed did (its config lacks the key).
LEGACY_PRUNE_OPTIONS = {"rescore": True, "nested": True}


def check_options(options, kind: str | None = None) -> dict:
    """``options`` with every option present (default False); a ConfigError for an unknown name, a non-boolean
    value, or an option turned on for another method than ``kind`` (None: not checked)."""
    if not isinstance(options, dict):
        raise ConfigError(f"prune_options must be a table of options, got {written(options)}")
    unknown = sorted(set(options) - set(PRUNE_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown prune option(s) {', '.join(unknown)}; known: "
                          + ", ".join(f"{k} ({m})" for k, m in PRUNE_OPTIONS.items()))
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ConfigError(f"prune option {key} must be true or false, got {written(value)}")
        if value and kind is not None and canonical(kind) != PRUNE_OPTIONS[key]:
            raise ConfigError(f"prune option {key} applies to prune = {PRUNE_OPTIONS[key]!r} only, "
                              f"not {canonical(kind)!r}")
    return {key: bool(options.get(key, False)) for key in PRUNE_OPTIONS}


def check_snr_variance(snr_variance: bool, strategy: str) -> None:
    """``snr_variance`` is the published code's Sep-CMA-ES ranking |μ|/C; refuse it for the other strategies."""
    if snr_variance and strategy not in SNR_VARIANCE_STRATEGIES:
        raise ConfigError(f"snr_variance (rank by |μ|/std²) is the published code's Sep-CMA-ES rule, |μ|/C with C "
                          f"its diagonal covariance; the code ranks {strategy} by |μ|/σ with its σ vector, so "
                          "for it |μ|/std² is neither the paper's rule nor its code: drop snr_variance or use "
                          "strategy sep_cma_es")


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

# What each ticket maker does, for `esprune pruning`: (the published code's name, the rule, how it relates to the
# published code). Keep these true to next_ticket and gd.criteria.
METHODS = {
    "snr": ("sig2noise", "keep the highest |μ|/std of the trained search distribution; rewind to the original init",
            "as published for SNES, PGPE and DES (their σ vector); for Sep-CMA-ES std = σ√C, while the code divides "
            "by C: snr_variance = true ranks by |μ|/std² = the code's |μ|/C (refused for other strategies)"),
    "magnitude": ("final-ticket", "keep the highest |μ| of the trained mean; rewind to the original init",
                  "as published"),
    "random-reinit": ("random-reinit", "a uniformly random global mask with the same number of weights, drawn "
                      "afresh every iteration (masks do not nest), and a fresh init",
                      "as published; prune_options.nested = true nests the random masks instead"),
    "magnitude-permute": ("final-ticket_permute", "the magnitude mask; the surviving init values shuffled within "
                          "each layer", "as published"),
    "permute-permute": ("final_permute-ticket_permute", "the magnitude mask permuted along each kernel's axis 0 in "
                        "the paper's layout (dense (in, out): whole input rows, so every output unit keeps its "
                        "fan-in; conv (K, K, C_in, C_out): the first spatial axis), the surviving init values "
                        "shuffled onto the new positions", "as published"),
    "mask-reinit": ("mask-reinit", "the magnitude mask with a fresh init", "as published"),
    "movement": ("movement", "keep the highest |μ − init|; rewind to the original init",
                 "named by the published code but not reachable there"),
    "snip": ("snip", "keep the highest |θ₀·∇L(θ₀)|, scored once at the dense original init on the whole training "
             "set, one ranking for every iteration (classification tasks)",
             "as published; prune_options.rescore = true re-scores the ticket's masked init on the iteration's "
             "training batch instead"),
    "grasp": ("grasp", "the GraSP paper's rule (Wang et al. 2020): remove the highest −θ·Hg, with H the whole "
              "Hessian of the loss at temperature 200, re-scored at the ticket's masked init every iteration "
              "(classification tasks)",
              "departs from the published code, which keeps the weights above the (1 − sparsity) percentile of "
              "−θ·Hg: the wrong fraction (20% kept at 20% sparsity, masks that grow), from the end GraSP removes, "
              "with per-layer Hessian blocks and no temperature"),
}
ALIASES = {"final-ticket": "magnitude", "sig2noise": "snr", "final-ticket_permute": "magnitude-permute",
           "final_permute-ticket_permute": "permute-permute"}


def canonical(kind: str) -> str:
    kind = ALIASES.get(kind, kind)
    if kind not in TICKETS:
        raise ConfigError(f"unknown pruning method {kind!r}; choose one of {', '.join(TICKETS)}")
    return kind


def next_ticket(kind: str, net, *, init: dict, mean: dict, std: dict | None, mask: Mask, iteration: int,
                keep: float, seed: int, snr_variance: bool = False, task=None, options: dict | None = None) -> Ticket:
    """The ticket of IMP iteration ``iteration`` (≥ 1) from the network trained at ``iteration − 1``.

    ``init`` is the original initialization (iteration 0), ``mean``/``std`` the trained search distribution
    (``std`` None for gradient descent); ``task`` supplies the loss of the gradient criteria (SNIP, GraSP);
    ``options`` are the ticket makers' options (``PRUNE_OPTIONS``; None: the defaults, the paper code's rules).
    The ticket's ``threshold`` is the lowest surviving score, NaN where no score threshold made the mask
    (``random-reinit``'s drawn mask, ``permute-permute``'s moved one).
    """
    criterion, make_init = TICKETS[canonical(kind)]
    options = check_options(options or {})
    spec = net.spec
    n_keep = kept_after(spec.prunable_size, keep, iteration)
    if criterion in GRADIENT:
        from .gd import criteria

        paper_snip = criterion == "snip" and not options["rescore"]
        score = criteria.scores(criterion, task, net, mask, init, seed, paper=paper_snip)
    else:
        score = scores(criterion, spec, mean=mean, std=std, init=init, seed=seed, iteration=iteration,
                       snr_variance=snr_variance)
    if criterion == "random" and not options["nested"]:
        # the paper's random-reinit: n_keep positions drawn uniformly from all prunable weights, whatever was
        # pruned before (its get_random_masks), so the masks do not nest
        new_mask, threshold = prune_to(score, Mask.dense(spec), n_keep)
    else:
        new_mask, threshold = prune_to(score, mask, n_keep)
    rng = np.random.default_rng([seed, iteration, 0x7E5])
    if make_init == "rewind":
        new_init = {n: v.copy() for n, v in init.items()}
    elif make_init == "reinit":
        new_init = net.init(int(rng.integers(2**31)))
    elif make_init == "permute":
        new_init = _permute_survivors(init, new_mask, rng)
    else:  # "permute-mask": the magnitude mask permuted along each kernel's paper axis 0, survivors' values moved
        moved = Mask({n: permute_paper_axis0(new_mask[n], rng) for n in spec.prunable_names}, spec)
        new_init = _move_survivors(init, new_mask, moved, rng)
        new_mask = moved
    if criterion == "random" or make_init == "permute-mask":
        threshold = float("nan")  # a drawn or moved mask is not "the weights scoring above a threshold"
    return Ticket(new_init, new_mask, threshold)


def paper_axis0(shape) -> int:
    """The esprune axis that is axis 0 of the paper's (flax) layout of a kernel: dense ``(in, out)`` is the same
    layout (axis 0, input rows); a conv kernel is ``(K, K, C_in, C_out)`` in flax and ``(C_out, C_in, K, K)``
    here, so its axis 0 (the first spatial axis) is esprune's axis 2."""
    return 2 if len(shape) == 4 else 0


def permute_paper_axis0(mask: np.ndarray, rng) -> np.ndarray:
    """``mask`` with its slices along the paper's axis 0 in a random order: ``jax.random.permutation`` of the
    whole array, as the published ``get_permuted_permuted`` does. A dense layer keeps each output unit's fan-in
    count (whole input rows move); a conv kernel keeps, per (C_out, C_in, column), the count over its rows."""
    axis = paper_axis0(mask.shape)
    return np.take(mask, rng.permutation(mask.shape[axis]), axis=axis)


def _permute_survivors(init: dict, mask: Mask, rng) -> dict:
    """``init`` with the values at each layer's active positions shuffled among those positions."""
    out = {n: v.copy() for n, v in init.items()}
    for n in mask:
        flat = out[n].reshape(-1)
        where = np.flatnonzero(mask[n].reshape(-1))
        flat[where] = flat[rng.permutation(where)]
    return out


def _move_survivors(init: dict, old: Mask, new: Mask, rng) -> dict:
    """``init`` whose values at ``old``'s active positions, shuffled, fill ``new``'s active positions (the same
    count per layer); the paper code sets them into a masked init, so the other entries never matter."""
    out = {n: v.copy() for n, v in init.items()}
    for n in new:
        values = init[n].reshape(-1)[np.flatnonzero(old[n].reshape(-1))]
        out[n].reshape(-1)[np.flatnonzero(new[n].reshape(-1))] = values[rng.permutation(values.size)]
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
