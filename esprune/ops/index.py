"""The index arrays the kernels read: which entries of a pruned weight are active, grouped the way each kernel
family walks them. One home for all of them, built from a weight's shape and the C-order positions of its
active entries (``Layout.positions``), so the kernels never see a mask.

- ``columns``: an ``(n_in, n_out)`` dense weight by output column (the gather-style ``sparse_layer``).
- ``rows``: the same weight in row-major order (the scatter-style fused rollout, ``ops/rollout.py``).
- ``taps``: a ``(C_out, C_in, K, K)`` conv weight by output channel (``conv.conv_stack``).
Every entry also says where its value sits in a member's parameter row (``offset`` + its rank among the
active entries, which is how the flat vector stores a tensor).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColumnIndex:
    """The active entries of an ``(n_in, n_out)`` weight grouped by output column, for gather-style kernels.

    Column ``j`` uses inputs ``rows[colptr[j]:colptr[j+1]]`` (ascending) whose values sit at flat positions
    ``offset + src[...]``; ``full`` means every entry is active (dense kernels may then read the tensor in place).
    """

    n_in: int
    n_out: int
    offset: int
    colptr: np.ndarray
    rows: np.ndarray
    src: np.ndarray
    full: bool

    @property
    def nnz(self) -> int:
        return int(self.rows.size)

    @property
    def density(self) -> float:
        return self.nnz / (self.n_in * self.n_out) if self.n_in * self.n_out else 0.0


@dataclass(frozen=True)
class RowIndex:
    """The active entries of an ``(n_in, n_out)`` weight in row-major (C) order, for scatter-style kernels.

    Entry ``q`` adds input ``rows[q]`` times its weight to output ``cols[q]``; rows ascend, and so do the columns
    within a row, so every output meets its inputs in ascending order. Entry q is the q-th active entry in C
    order, so its value sits at flat position ``offset + q``: the weights are read in place.
    """

    n_in: int
    n_out: int
    offset: int
    rows: np.ndarray  # (nnz,) int32
    cols: np.ndarray  # (nnz,) int32

    @property
    def nnz(self) -> int:
        return int(self.cols.size)


@dataclass(frozen=True)
class Taps:
    """The active taps of one conv weight, grouped by output channel (host arrays, int32)."""

    ptr: np.ndarray  # (C_out + 1,)
    ci: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    src: np.ndarray  # column of the weight in the member's parameter row

    def arrays(self):
        return self.ptr, self.ci, self.dy, self.dx, self.src


def columns(positions: np.ndarray, shape, offset: int) -> ColumnIndex:
    """``positions``: ascending C-order positions of the active entries of a weight of ``shape`` (n_in, n_out),
    whose values start at flat position ``offset``."""
    n_in, n_out = shape
    rows, cols = positions // n_out, positions % n_out
    order = np.lexsort((rows, cols))  # by column, then ascending input within a column
    colptr = np.zeros(n_out + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=n_out), out=colptr[1:])
    return ColumnIndex(n_in, n_out, int(offset), colptr, rows[order].astype(np.int32), order.astype(np.int32),
                       positions.size == n_in * n_out)


def rows(positions: np.ndarray, shape, offset: int) -> RowIndex:
    """Like :func:`columns`, in row-major order; C order already is that order, so no sort is needed."""
    n_in, n_out = shape
    return RowIndex(n_in, n_out, int(offset), (positions // n_out).astype(np.int32),
                    (positions % n_out).astype(np.int32))


def taps(positions: np.ndarray, shape, offset: int) -> Taps:
    """The active taps of a conv weight of ``shape`` (C_out, C_in, K, K) in ascending (ci, dy, dx) within
    each output channel."""
    c_out, c_in, kh, kw = shape
    co, rest = np.divmod(positions, c_in * kh * kw)
    ci, rest = np.divmod(rest, kh * kw)
    dy, dx = np.divmod(rest, kw)
    ptr = np.zeros(c_out + 1, dtype=np.int32)
    np.cumsum(np.bincount(co, minlength=c_out), out=ptr[1:])
    src = offset + np.arange(positions.size)
    return Taps(ptr, *(a.astype(np.int32) for a in (ci, dy, dx, src)))
