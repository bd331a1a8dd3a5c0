"""Fused masked convolution blocks (SAME conv + bias + ReLU + max-pool) for a whole population.

A convolution weight ``(C_out, C_in, K, K)`` is handed to the kernels as a *tap list*: for each output channel
the active taps ``(ci, dy, dx)`` and where their weight sits in a member's parameter row. A pruned tap is simply
not listed, so the work follows the number of active weights; the dense path is the same loop over the full
list. Inputs ``x`` are ``(Px, B, C_in, H, W)`` (Px = 1 when all members share them), outputs
``(P, B, C_out, H // pool, W // pool)`` (floor, as a VALID max-pool).

    out[p, b, co, oy, ox] = relu(max_{window} Σ_taps w · x[ci, y + dy − pad, x + dx − pad] + bias[co])
"""
from __future__ import annotations

import numba
import numpy as np

from . import cuda, jit


_VEC = 16  # float32 lanes of one AVX-512 register: the numba accumulate loops run in whole multiples of it


def conv_block(x, theta, taps, b_off: int, pad: int, pool: int, backend):
    """One fused block for every member: ``taps`` as device arrays in ``index.Taps.arrays()`` order."""
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
        # Zero-pad once, so that every tap's update is one contiguous run over the padded row stride; the
        # slack after the last plane lets that run be a whole number of SIMD vectors (no scalar remainder).
        Hp, Wp = H + 2 * pad, W + 2 * pad
        xpad = np.zeros((Px, B, C_in * Hp * Wp + _VEC), dtype=np.float32)
        xpad[:, :, :C_in * Hp * Wp].reshape(Px, B, C_in, Hp, Wp)[:, :, :, pad:pad + H, pad:pad + W] = x
        _conv_block_numba(xpad, theta, *taps, b_off, H, W, Hp, Wp, pool, out)
    return out


@numba.njit(inline="always")
def _run(xi, c, y, x, plane, Wp, n):
    """The n inputs tap (c, y, x) multiplies, as a slice indexed from 0: no wraparound check, so the loops
    over it vectorize."""
    base = c * plane + y * Wp + x
    return xi[base:base + n]


@jit.njit(parallel=True)
def _conv_block_numba(xpad, theta, ptr, ci, dy, dx, src, b_off, H, W, Hp, Wp, pool, out):
    """``xpad`` ``(Px, B, C_in·Hp·Wp + slack)``: zero-padded planes. The accumulator keeps the padded row
    stride Wp, so tap (ci, dy, dx) adds w · xpad[ci·Hp·Wp + dy·Wp + dx + i] for every i in one unit-stride
    loop of (H − 1)·Wp + W elements rounded up to whole vectors (the extra columns are computed and never
    read; the last run ends inside the slack). A tap over the zero border adds w·0, so every sum runs over
    the same taps in the same order as the CUDA kernel (which skips the border instead)."""
    P, B, C_out, Ho, Wo = out.shape
    plane = Hp * Wp
    n = -(-((H - 1) * Wp + W) // _VEC) * _VEC
    for t in numba.prange(P * B):
        p, b = t // B, t % B
        xi = xpad[0 if xpad.shape[0] == 1 else p, b]  # one index expression: numba keeps the row contiguous
        acc = np.empty(n, dtype=np.float32)
        for co in range(C_out):
            acc[:] = np.float32(0.0)
            k, end = ptr[co], ptr[co + 1]
            while k + 4 <= end:  # four taps per pass over the accumulator, still added one after another
                w0, w1, w2, w3 = theta[p, src[k]], theta[p, src[k + 1]], theta[p, src[k + 2]], theta[p, src[k + 3]]
                r0 = _run(xi, ci[k], dy[k], dx[k], plane, Wp, n)
                r1 = _run(xi, ci[k + 1], dy[k + 1], dx[k + 1], plane, Wp, n)
                r2 = _run(xi, ci[k + 2], dy[k + 2], dx[k + 2], plane, Wp, n)
                r3 = _run(xi, ci[k + 3], dy[k + 3], dx[k + 3], plane, Wp, n)
                for i in range(n):
                    a = acc[i] + w0 * r0[i]
                    a = a + w1 * r1[i]
                    a = a + w2 * r2[i]
                    acc[i] = a + w3 * r3[i]
                k += 4
            while k < end:
                w = theta[p, src[k]]
                run = _run(xi, ci[k], dy[k], dx[k], plane, Wp, n)
                for i in range(n):
                    acc[i] += w * run[i]
                k += 1
            bias = theta[p, b_off + co]
            for qy in range(Ho):
                for qx in range(Wo):
                    m = acc[qy * pool * Wp + qx * pool]
                    for py in range(pool):
                        for px in range(pool):
                            m = max(m, acc[(qy * pool + py) * Wp + qx * pool + px])
                    out[p, b, co, qy, qx] = max(m + bias, np.float32(0.0))
