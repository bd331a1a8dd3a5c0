"""Initializers of the paper's networks (flax defaults of the published code; see PAPER.md, "Networks")."""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

# flax's variance_scaling(1, "fan_in", "truncated_normal") divides by the std of a standard normal truncated
# to [-2, 2], so the truncated draw has exactly variance 1 / fan_in.
_TRUNC_STD = 0.87962566103423978


def lecun_normal(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """Truncated normal on ±2 std with variance 1/fan_in (by inverse CDF, so one uniform per weight)."""
    lo, hi = ndtr(-2.0), ndtr(2.0)
    z = ndtri(lo + (hi - lo) * rng.random(shape))
    return (z * np.sqrt(1.0 / fan_in) / _TRUNC_STD).astype(np.float32)


def lecun_uniform(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """Uniform on ±√(3/fan_in), variance 1/fan_in: jax's ``lecun_uniform``, the paper's PPO (brax) kernels."""
    limit = np.sqrt(3.0 / fan_in)
    return ((2.0 * rng.random(shape) - 1.0) * limit).astype(np.float32)


def uniform_bias(rng: np.random.Generator, shape, high: float = 0.05) -> np.ndarray:
    """Uniform on [0, high): the paper's hidden-layer (and control output) bias init."""
    return (rng.random(shape) * high).astype(np.float32)


def tensor_rng(seed: int, index: int) -> np.random.Generator:
    """An independent generator per (seed, tensor index), so adding a layer does not shift the others' draws."""
    return np.random.default_rng([int(seed), int(index)])
