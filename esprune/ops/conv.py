"""Fused masked convolution blocks (SAME conv + bias + ReLU + max-pool) for a whole population.

A convolution weight ``(C_out, C_in, K, K)`` is handed to the kernels as a *tap list*: for each output channel
the active taps ``(ci, dy, dx)`` and where their weight sits in a member's parameter row. A pruned tap is simply
not listed, so the work follows the number of active weights; the dense path is the same loop over the full
list. Inputs ``x`` are ``(Px, B, C_in, H, W)`` (Px = 1 when all members share them), outputs
``(P, B, C_out, H // pool, W // pool)`` (floor, as a VALID max-pool).

    out[p, b, co, oy, ox] = relu(max_{window} Σ_taps w · x[ci, y + dy − pad, x + dx − pad] + bias[co])
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from . import cuda


@dataclass(frozen=True)
class Taps:
    """The active taps of one conv weight, grouped by output channel (host arrays, int32)."""
    ptr: np.ndarray  # (C_out + 1,)
    ci: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    src: np.ndarray  # column of the weight in the member's parameter row

    @classmethod
    def of(cls, layout, name: str) -> Taps:
        c_out, c_in, kh, kw = layout.spec[name].shape
        pos = layout.positions(name)
        co, rest = np.divmod(pos, c_in * kh * kw)
        ci, rest = np.divmod(rest, kh * kw)
        dy, dx = np.divmod(rest, kw)
        ptr = np.zeros(c_out + 1, dtype=np.int32)
        np.cumsum(np.bincount(co, minlength=c_out), out=ptr[1:])
        src = layout.segment(name).start + np.arange(pos.size)
        return cls(ptr, *(a.astype(np.int32) for a in (ci, dy, dx, src)))

    def arrays(self):
        return self.ptr, self.ci, self.dy, self.dx, self.src


def conv_block(x, theta, taps, b_off: int, pad: int, pool: int, backend):
    """One fused block for every member: ``taps`` as device arrays in ``Taps.arrays()`` order."""
    xp = backend.xp
    Px, B, C_in, H, W = x.shape
    P, C_out = theta.shape[0], taps[0].shape[0] - 1
    out = xp.empty((P, B, C_out, H // pool, W // pool), dtype=np.float32)
    if out.size == 0:
        return out
    if backend.name == "cupy":
        for name, a in (("x", x), ("theta", theta), ("out", out)):
            cuda.check_device_array(name, a, np.float32)
        for name, a in zip(("ptr", "ci", "dy", "dx", "src"), taps):
            cuda.check_device_array(name, a, np.int32)
        x_stride = 0 if Px == 1 else B * C_in * H * W
        cuda.load("conv.cu").get_function("conv_block")(
            cuda.grid(out.size), (cuda.BLOCK,),
            (x, np.int64(x_stride), np.int32(C_in), np.int32(H), np.int32(W), theta, np.int64(theta.shape[1]),
             *taps, np.int64(b_off), np.int32(pad), np.int32(pool), np.int32(P), np.int32(B), np.int32(C_out),
             np.int32(H // pool), np.int32(W // pool), out))
    else:
        _conv_block_numba(x, theta, *taps, b_off, pad, pool, out)
    return out


@numba.njit(parallel=True, cache=True)
def _conv_block_numba(x, theta, ptr, ci, dy, dx, src, b_off, pad, pool, out):
    P, B, C_out, Ho, Wo = out.shape
    H, W = x.shape[3], x.shape[4]
    for t in numba.prange(P * B):
        p, b = t // B, t % B
        xi = x[0, b] if x.shape[0] == 1 else x[p, b]
        acc = np.empty((H, W), dtype=np.float32)
        for co in range(C_out):
            acc[:] = np.float32(0.0)
            for k in range(ptr[co], ptr[co + 1]):
                w = theta[p, src[k]]
                oy, ox = dy[k] - pad, dx[k] - pad
                plane = xi[ci[k]]
                for y in range(max(0, -oy), min(H, H - oy)):
                    row, src_row = acc[y], plane[y + oy]
                    for xx in range(max(0, -ox), min(W, W - ox)):  # contiguous: vectorizes
                        row[xx] += w * src_row[xx + ox]
            bias = theta[p, b_off + co]
            for qy in range(Ho):
                for qx in range(Wo):
                    m = acc[qy * pool, qx * pool]
                    for py in range(pool):
                        for px in range(pool):
                            m = max(m, acc[qy * pool + py, qx * pool + px])
                    out[p, b, co, qy, qx] = max(m + bias, np.float32(0.0))
