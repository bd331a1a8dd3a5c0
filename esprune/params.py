"""Named parameter tensors, masks over the prunable ones, and the flat vector of active parameters.

The flat vector holds, tensor by tensor in spec order, the active (unmasked) entries of each tensor in C
order; biases are never pruned, so all their entries are active. :class:`Layout` owns that mapping:
nothing else indexes the flat vector by hand.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .backend import array_module
from .errors import ConfigError
from .ops import index
from .ops.index import ColumnIndex, RowIndex, Taps


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    prunable: bool

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class ParamSpec:
    """The ordered named tensors of a network; weights are prunable, biases are not."""

    def __init__(self, tensors):
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t[0], tuple(int(s) for s in t[1]), bool(t[2]))
                             for t in tensors)
        self._by_name = {t.name: t for t in self.tensors}
        if len(self._by_name) != len(self.tensors):
            raise ValueError("tensor names in a ParamSpec must be unique")

    def __iter__(self):
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __getitem__(self, name: str) -> Tensor:
        return self._by_name[name]

    def __eq__(self, other) -> bool:
        return isinstance(other, ParamSpec) and self.tensors == other.tensors

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    @property
    def prunable_names(self) -> list[str]:
        return [t.name for t in self.tensors if t.prunable]

    @property
    def size(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def prunable_size(self) -> int:
        return sum(t.size for t in self.tensors if t.prunable)

    def __repr__(self) -> str:
        body = ", ".join(f"{t.name}{list(t.shape)}{'' if t.prunable else '(fixed)'}" for t in self.tensors)
        return f"ParamSpec({body})"

    # The *full* vector (every entry of every tensor, spec order, C order; what run files store) — as opposed to
    # the flat vector of active parameters that a Layout owns.
    def to_vector(self, tensors: Mapping[str, np.ndarray], dtype=None) -> np.ndarray:
        """``(size,)``: every tensor flattened in spec order (pruned entries as they are, usually 0)."""
        return np.concatenate([np.asarray(tensors[t.name], dtype=dtype).reshape(-1) for t in self.tensors])

    def from_vector(self, vector) -> dict:
        """Named tensors from a full ``(size,)`` vector (views into it)."""
        vector = np.asarray(vector)
        if vector.shape != (self.size,):
            raise ConfigError(f"a full parameter vector of this network has {self.size} entries, got {vector.shape}")
        out, start = {}, 0
        for t in self.tensors:
            out[t.name] = vector[start:start + t.size].reshape(t.shape)
            start += t.size
        return out

    def to_json(self) -> list:
        return [[t.name, list(t.shape), t.prunable] for t in self.tensors]


class Mask(Mapping):
    """Boolean keep-masks of the prunable tensors (True = active), shared by the whole population."""

    def __init__(self, masks: Mapping[str, np.ndarray], spec: ParamSpec | None = None):
        self._masks = {name: np.asarray(m, dtype=bool) for name, m in masks.items()}
        self.spec = spec
        if spec is not None:
            if sorted(self._masks) != sorted(spec.prunable_names):
                raise ConfigError(f"mask tensors {sorted(self._masks)} do not match the prunable tensors "
                                  f"{sorted(spec.prunable_names)} of the network")
            for name, m in self._masks.items():
                if m.shape != spec[name].shape:
                    raise ConfigError(f"mask {name!r} has shape {m.shape}, the network's tensor {spec[name].shape}")

    @classmethod
    def dense(cls, spec: ParamSpec) -> Mask:
        """Every prunable weight active."""
        return cls({t.name: np.ones(t.shape, dtype=bool) for t in spec if t.prunable}, spec)

    @classmethod
    def from_vector(cls, spec: ParamSpec, vector) -> Mask:
        """The mask stored as a full boolean ``(spec.size,)`` vector (biases' entries are ignored)."""
        full = spec.from_vector(np.asarray(vector, dtype=bool))
        return cls({n: full[n] for n in spec.prunable_names}, spec)

    def to_vector(self) -> np.ndarray:
        """Full boolean ``(spec.size,)`` vector, spec order; biases (never pruned) are True."""
        return np.concatenate([self._masks[t.name].reshape(-1) if t.prunable else np.ones(t.size, dtype=bool)
                               for t in self.spec])

    def __getitem__(self, name: str) -> np.ndarray:
        return self._masks[name]

    def __iter__(self):
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Mask) and self._masks.keys() == other._masks.keys()
                and all(np.array_equal(m, other[n]) for n, m in self._masks.items()))

    @property
    def prunable(self) -> int:
        return sum(m.size for m in self._masks.values())

    @property
    def kept(self) -> int:
        return sum(int(m.sum()) for m in self._masks.values())

    def sparsity(self) -> float:
        """Fraction of prunable weights that are pruned."""
        return 1.0 - self.kept / self.prunable if self.prunable else 0.0

    def summary(self) -> dict:
        """Counts: ``total`` parameters (biases included when the spec is known), prunable, pruned, kept."""
        fixed = sum(t.size for t in self.spec if not t.prunable) if self.spec is not None else 0
        return {"total": self.prunable + fixed, "prunable": self.prunable, "pruned": self.prunable - self.kept,
                "kept": self.kept, "active": self.kept + fixed, "sparsity": self.sparsity()}

    def __repr__(self) -> str:
        return f"Mask(kept={self.kept}/{self.prunable}, sparsity={self.sparsity():.4f})"


class Layout:
    """The mapping between named tensors and the flat vector of active parameters under one mask."""

    def __init__(self, spec: ParamSpec, mask: Mask | None = None):
        self.spec = spec
        self.mask = Mask.dense(spec) if mask is None else mask
        if self.mask.spec is None:
            self.mask = Mask(dict(self.mask.items()), spec)  # validates names and shapes
        self._slices, self._positions, start = {}, {}, 0
        for t in spec:
            keep = self.mask[t.name].reshape(-1) if t.prunable else np.ones(t.size, dtype=bool)
            positions = np.flatnonzero(keep).astype(np.int64)
            self._positions[t.name] = positions
            self._slices[t.name] = slice(start, start + positions.size)
            start += positions.size
        self.dim = start
        self._device_cache: dict = {}
        self._derived: dict = {}

    def segment(self, name: str) -> slice:
        """Where tensor ``name``'s active entries sit in the flat vector."""
        return self._slices[name]

    def positions(self, name: str) -> np.ndarray:
        """C-order positions within tensor ``name`` of its active entries (ascending)."""
        return self._positions[name]

    def flatten(self, params: Mapping[str, np.ndarray]):
        """Active entries of ``params`` as ``(..., d)``; leading axes (e.g. a population) are kept."""
        first = params[self.spec.tensors[0].name]
        xp = array_module(first)
        lead = first.shape[: first.ndim - len(self.spec.tensors[0].shape)]
        out = xp.empty(lead + (self.dim,), dtype=first.dtype)
        for t in self.spec:
            flat = params[t.name].reshape(lead + (t.size,))
            out[..., self._slices[t.name]] = flat if self.is_full(t.name) else flat[..., self._device(xp, t.name)]
        return out

    def unflatten(self, theta) -> dict:
        """Named tensors ``(..., *shape)`` from ``theta`` of shape ``(..., d)``; pruned entries are exactly 0."""
        xp = array_module(theta)
        if theta.shape[-1] != self.dim:
            raise ValueError(f"flat vector has {theta.shape[-1]} entries, the layout {self.dim}")
        lead = theta.shape[:-1]
        params = {}
        for t in self.spec:
            seg = theta[..., self._slices[t.name]]
            if self.is_full(t.name):
                full = seg
            else:
                full = xp.zeros(lead + (t.size,), dtype=theta.dtype)
                full[..., self._device(xp, t.name)] = seg
            params[t.name] = full.reshape(lead + t.shape)
        return params

    def is_full(self, name: str) -> bool:
        return self._positions[name].size == self.spec[name].size

    def columns(self, name: str) -> ColumnIndex:
        """The active entries of a 2-D weight ``(n_in, n_out)`` grouped by output column (cached)."""
        return self.derived(("columns", name), lambda lay: index.columns(*lay._index_args(name)))

    def rows(self, name: str) -> RowIndex:
        """The active entries of a 2-D weight ``(n_in, n_out)`` grouped by input row (cached)."""
        return self.derived(("rows", name), lambda lay: index.rows(*lay._index_args(name)))

    def taps(self, name: str) -> Taps:
        """The active taps of a conv weight ``(C_out, C_in, K, K)`` by output channel (cached)."""
        return self.derived(("taps", name), lambda lay: index.taps(*lay._index_args(name)))

    def _index_args(self, name):
        return self._positions[name], self.spec[name].shape, self._slices[name].start

    def derived(self, key, make):
        """``make(self)`` computed once per layout and cached under ``key`` (e.g. a conv weight's tap list)."""
        if key not in self._derived:
            self._derived[key] = make(self)
        return self._derived[key]

    def _device(self, xp, name):
        return self.to_device(xp, self._positions[name], ("positions", name))

    def to_device(self, xp, array: np.ndarray, key):
        """A host index array as an array of ``xp``, cached under ``key`` for this layout."""
        if xp is np:
            return array
        full_key = (xp.__name__, key)
        if full_key not in self._device_cache:
            self._device_cache[full_key] = xp.asarray(array)
        return self._device_cache[full_key]

    def __repr__(self) -> str:
        return f"Layout(dim={self.dim}, {self.mask!r})"
