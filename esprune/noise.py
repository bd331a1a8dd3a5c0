"""Counter-based Gaussian noise: (seed, generation, member, index) → ε, identical on every backend.

Philox4x32-10 keyed by ``(seed, generation)`` with the counter ``(index // 4, member, stream, 0)``. Because
nothing is sequential, any member's noise can be regenerated alone, on any backend, without storing the
``(P, d)`` matrix. ``stream`` separates independent uses of one (seed, generation) — population noise,
environment resets, batch sampling — so they never share numbers.
"""
from __future__ import annotations

import numpy as np

from . import backend as _backend
from .errors import ConfigError
from .ops import noise as _ops

philox4x32_10 = _ops.philox4x32_10  # the raw block function, exposed for known-answer tests

# Named streams, so that two uses of one (seed, generation) never draw the same numbers.
POPULATION, RESET, BATCH, INIT, MASK, TEST_RESET = 0, 1, 2, 3, 4, 5

_U32 = 2**32


def philox_uint32(seed: int, generation: int, members, dim: int, backend="numpy", stream: int = POPULATION):
    """Raw uint32 words ``(len(members), dim)``; ``members`` is a sequence of member indices (or a count)."""
    be = _backend.get(backend)
    rows = _members(members, be)
    return _ops.philox_uint32(rows, _dim(dim), _u32("seed", seed), _u32("generation", generation),
                              _u32("stream", stream), be)


def gaussian(seed: int, generation: int, members, dim: int, backend="numpy", stream: int = POPULATION):
    """Standard normal float32 ``(len(members), dim)``; row ``i`` depends only on ``members[i]``."""
    be = _backend.get(backend)
    rows = _members(members, be)
    return _ops.gaussian(rows, _dim(dim), _u32("seed", seed), _u32("generation", generation),
                         _u32("stream", stream), be)


def _members(members, be):
    if isinstance(members, (int, np.integer)):
        members = np.arange(int(members))
    host = np.asarray(be.to_numpy(members) if not isinstance(members, (list, tuple, range)) else members)
    if host.ndim != 1:
        raise ConfigError(f"members must be a 1-D sequence of member indices, got shape {host.shape}")
    if host.size and (host.min() < 0 or host.max() >= _U32):
        raise ConfigError("member indices must lie in [0, 2**32)")
    return be.asarray(host.astype(np.uint32))


def _u32(name: str, value) -> int:
    value = int(value)
    if not 0 <= value < _U32:
        raise ConfigError(f"{name} must lie in [0, 2**32), got {value}")
    return value


def _dim(dim) -> int:
    dim = int(dim)
    if dim < 0:
        raise ConfigError(f"dim must be >= 0, got {dim}")
    return dim
