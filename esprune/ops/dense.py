"""Masked dense layers for a whole population: the numba twins and the launchers of ``kernels/dense.cu``.

Activations are feature-major, ``x`` of shape ``(Px, n_in, B)`` with ``Px`` = P, or 1 when all members share
the input, and ``y`` of shape ``(P, n_out, B)``: the batch axis is contiguous, so the CPU loops vectorize over
it and consecutive GPU threads read consecutive addresses. Every member's parameters are a row of ``theta``
``(P, d)``; weights are read from ``w`` at ``w_off + i * n_out + j`` (the dense path) or through a
column index (the sparse path), biases from ``theta[:, b_off + j]``.

    y[p, j, b] = act(Σ_i w[p, i, j] · x[p, i, b] + bias[p, j])        (sums in ascending i on both paths)
"""
from __future__ import annotations

import numba
import numpy as np

from . import cuda, jit

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}
_TILE = 4  # output columns per dense work item: each input row loaded once serves four outputs


def dense_layer(x, w, w_off, theta, b_off, n_out, activation, backend):
    """All weights active: ``w[p, w_off:w_off + n_in*n_out]`` is member p's weight in C order."""
    out = backend.xp.empty((theta.shape[0], n_out, x.shape[2]), dtype=np.float32)
    act = ACTIVATIONS[activation]
    if backend.name == "cupy":
        _launch("dense_layer", out, x, (w, np.int64(w_off), np.int64(w.shape[1]),
                                        theta, np.int64(b_off), np.int64(theta.shape[1])), act)
    else:
        _dense_layer_numba(x, w, w_off, theta, b_off, act, out)
    return out


def sparse_layer(x, theta, w_off, colptr, rows, src, b_off, n_out, activation, backend):
    """Active weights only: column j sums inputs ``rows[colptr[j]:colptr[j+1]]``, weights at ``w_off + src``."""
    out = backend.xp.empty((theta.shape[0], n_out, x.shape[2]), dtype=np.float32)
    act = ACTIVATIONS[activation]
    if backend.name == "cupy":
        for name, a in (("colptr", colptr), ("rows", rows), ("src", src)):
            cuda.check_device_array(name, a, np.int32)
        _launch("sparse_layer", out, x, (theta, np.int64(theta.shape[1]), np.int64(w_off), colptr, rows, src,
                                         np.int64(b_off)), act)
    else:
        _sparse_layer_numba(x, theta, w_off, colptr, rows, src, b_off, act, out)
    return out


# ------------------------------------------------------------------------------------------------- numba twins
# Rational minimax approximation of tanh on [-7.9, 7.9] (Eigen's float32 tanh, also used by XLA): a few ulp
# from the true value and pure arithmetic, so the batch loops vectorize (libm's tanhf does not).
_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_ALPHA = tuple(np.float32(a) for a in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                            4.89352455891786e-03))
_TANH_BETA = tuple(np.float32(b) for b in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                           4.89352518554385e-03))


@numba.njit(inline="always")
def fast_tanh(v):
    v = min(max(v, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = v * v
    p = _TANH_ALPHA[0]
    p = p * x2 + _TANH_ALPHA[1]
    p = p * x2 + _TANH_ALPHA[2]
    p = p * x2 + _TANH_ALPHA[3]
    p = p * x2 + _TANH_ALPHA[4]
    p = p * x2 + _TANH_ALPHA[5]
    p = p * x2 + _TANH_ALPHA[6]
    q = _TANH_BETA[0]
    q = q * x2 + _TANH_BETA[1]
    q = q * x2 + _TANH_BETA[2]
    q = q * x2 + _TANH_BETA[3]
    return v * p / q


@numba.njit(inline="always")
def _activate(v, act):
    if act == 1:
        return fast_tanh(v)
    if act == 2:
        return max(v, np.float32(0.0))
    return v


@jit.njit(parallel=True)
def _dense_layer_numba(x, w, w_off, theta, b_off, act, out):
    P, n_out, B = out.shape
    n_in = x.shape[1]
    zero = np.float32(0.0)
    for p in numba.prange(P):
        xm = x[0] if x.shape[0] == 1 else x[p]
        acc = np.empty((_TILE, B), dtype=np.float32)
        for j0 in range(0, n_out, _TILE):
            jn = min(_TILE, n_out - j0)
            acc[:] = zero
            for i in range(n_in):
                base = w_off + i * n_out + j0
                w0 = w[p, base]
                w1 = w[p, base + 1] if jn > 1 else zero
                w2 = w[p, base + 2] if jn > 2 else zero
                w3 = w[p, base + 3] if jn > 3 else zero
                xi = xm[i]
                for b in range(B):
                    xv = xi[b]
                    acc[0, b] += w0 * xv
                    acc[1, b] += w1 * xv
                    acc[2, b] += w2 * xv
                    acc[3, b] += w3 * xv
            for jj in range(jn):
                bias = theta[p, b_off + j0 + jj]
                for b in range(B):
                    out[p, j0 + jj, b] = _activate(acc[jj, b] + bias, act)


@jit.njit(parallel=True)
def _sparse_layer_numba(x, theta, w_off, colptr, rows, src, b_off, act, out):
    P, n_out, B = out.shape
    for p in numba.prange(P):
        xm = x[0] if x.shape[0] == 1 else x[p]
        acc = np.empty(B, dtype=np.float32)
        for j in range(n_out):
            acc[:] = np.float32(0.0)
            for k in range(colptr[j], colptr[j + 1]):
                wv = theta[p, w_off + src[k]]
                xi = xm[rows[k]]
                for b in range(B):
                    acc[b] += wv * xi[b]
            bias = theta[p, b_off + j]
            for b in range(B):
                out[p, j, b] = _activate(acc[b] + bias, act)


# ---------------------------------------------------------------------------------------------------- launchers
def _launch(kernel, out, x, args, act):
    for name, a in (("x", x), ("out", out)):
        cuda.check_device_array(name, a, np.float32)
    P, n_out, B = out.shape
    if out.size == 0:
        return
    block = min(cuda.BLOCK, 32 * ((B + 31) // 32))  # tiny batches (control) should not idle 3/4 of a block
    x_stride = 0 if x.shape[0] == 1 else x.shape[1] * B
    cuda.load("dense.cu").get_function(kernel)(
        ((B + block - 1) // block, n_out, P), (block,),
        (x, np.int64(x_stride), np.int32(x.shape[1])) + args + (np.int32(B), np.int32(n_out), np.int32(act), out))
