"""Fused masked convolution blocks (SAME conv + bias + ReLU + max-pool) for a whole population.

A convolution weight ``(C_out, C_in, K, K)`` is handed to the kernels as a *tap list*: for each output channel
the active taps ``(ci, dy, dx)`` and where their weight sits in a member's parameter row. A pruned tap is simply
not listed, so the work follows the number of active weights; the dense path is the same loop over the full
list. Every block computes, for each member p, image b, channel co and pooled position (oy, ox),

    out[p, b, co, oy, ox] = relu(max_{window} Σ_taps w · xpad[ci, y + dy, x + dx] + bias[co])

with the taps summed in ascending (ci, dy, dx), a tap over the zero border adding w · 0 (so a NaN or infinite
weight poisons its outputs as it does in the numpy reference), and a max and ReLU that propagate NaN.

:func:`conv_stack` runs all the blocks and returns the flattened features feature-major ``(P, F, B)`` (what the
dense layers read). On the GPU each block is one launch of ``kernels/conv.cu`` (a thread per pooled output). The
numba twin computes the same sums in the same order, scheduled for a CPU: one task per member and group of
``LANES`` images, which runs every block in turn in per-thread scratch (block k's pooled output written straight
into block k + 1's zero-padded input), with the images of the group interleaved as the fastest axis, so every
tap update, max and ReLU is a whole-vector operation with no per-image remainder.
"""
from __future__ import annotations

import threading

import numba
import numpy as np

from . import cuda, jit
from .lanes import (LANES, bias_relu_lanes, copy_lanes, fill_relu_lanes, max_lanes, pool2_lanes, taps_pool2_1,
                    taps_pool2_2, taps_pool2_3, taps_pool2_4)

_STRIP = 2048  # floats of accumulator per pass over the taps (a strip of pooled rows): stays in the L1 cache
FUSED_FEW_TAPS = True  # channels with 1-4 taps in one pass (_taps_pool_strip); False: the general path (tests)
_CHUNKS_PER_THREAD = 4  # prange chunks (each zeroes its scratch once) per numba thread
_kept = threading.local()  # per calling thread: the features array that conv_stack(reuse=True) hands out


def conv_stack(x, theta, blocks, backend, reuse: bool = False):
    """All conv blocks for every member. ``x``: ``(Px, B, C, H, W)`` float32 (Px = 1 when members share the
    images); ``theta``: ``(P, d)`` float32 parameter rows; ``blocks``: per block ``(taps, b_off, pad, pool)``
    with ``taps`` the device arrays of ``index.Taps.arrays()`` and ``b_off`` the bias's first column. Returns
    the features ``(P, C·Ho·Wo, B)`` in (C, H, W) order, float32. With ``reuse`` (numba) the result is an array
    kept for the calling thread and overwritten by its next ``reuse`` call: for a caller that consumes it at
    once (the 400 MB of a P=128, B=1024 batch would otherwise be fresh pages, page-faulted on every call)."""
    xp = backend.xp
    if backend.name == "cupy":
        h = x
        for taps, b_off, pad, pool in blocks:
            h = conv_block(xp.ascontiguousarray(h), theta, taps, b_off, pad, pool, backend)
        P, B = h.shape[:2]
        return xp.ascontiguousarray(xp.swapaxes(h.reshape(P, B, -1), 1, 2))
    return _conv_stack_host(x, theta, blocks, reuse)


def conv_block(x, theta, taps, b_off: int, pad: int, pool: int, backend):
    """One block on the GPU: ``x`` ``(Px, B, C_in, H, W)`` → ``(P, B, C_out, H // pool, W // pool)``."""
    xp = backend.xp
    Px, B, C_in, H, W = x.shape
    P, C_out = theta.shape[0], taps[0].shape[0] - 1
    out = xp.empty((P, B, C_out, H // pool, W // pool), dtype=np.float32)
    if out.size == 0:
        return out
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
    return out


# columns of a block's row in the geometry table handed to the numba twin
(_C_IN, _HP, _WP, _C_OUT, _POOL, _HO, _WO, _PTR, _B_OFF, _STRIP_ROWS, _D_HP, _D_WP, _D_PAD,
 _IN_AT, _OUT_AT, _N_COLS) = range(16)


def _conv_stack_host(x, theta, blocks, reuse):
    """Lay out the inputs and the tables for :func:`_conv_stack_numba` (numpy, once per call)."""
    Px, B, C, H, W = x.shape
    P = theta.shape[0]
    G = -(-B // LANES)
    geo = np.zeros((len(blocks), _N_COLS), dtype=np.int64)
    ptrs, sames, offs, srcs = [], [], [], []
    at, n_taps = 0, 0  # scratch floats handed out so far; taps listed so far
    first_len = 0
    for k, (taps, b_off, pad, pool) in enumerate(blocks):
        ptr, ci, dy, dx, src = (np.asarray(a, dtype=np.int64) for a in taps)
        c_out = ptr.size - 1
        # rows of stride Wp = W + pad: a row's right border is the next row's left border (both zero), so a
        # padded plane is Hp × Wp positions, element (r, c) at r·Wp + c + pad for c in [-pad, W + pad)
        Hp, Wp, Ho, Wo = H + 2 * pad, W + pad, H // pool, W // pool
        # a tap's run covers whole rows, so the last one reaches 2·pad positions past the last plane
        length = (C * Hp * Wp + 2 * pad) * LANES
        if k == 0:
            first_len, in_at = length, -1
        else:
            in_at, at = at, at + length
        last = k == len(blocks) - 1
        d_pad = 0 if last else blocks[k + 1][2]
        geo[k] = (C, Hp, Wp, c_out, pool, Ho, Wo, len(ptrs) and sum(p.size for p in ptrs), b_off,
                  max(1, _STRIP // (pool * Wp * LANES)), Ho + 2 * d_pad, Wo + d_pad, d_pad, in_at, 0)
        ptrs.append(ptr + n_taps)
        sames.append(_same_as_next(ptr, ci, dy, dx))
        offs.append((ci * Hp + dy) * Wp + dx)  # in positions (× LANES floats) from the plane set's start
        srcs.append(src)
        n_taps += src.size
        C, H, W = c_out, Ho, Wo
    for k in range(len(blocks)):  # each block's output region: the next block's input, or the features tile
        geo[k, _OUT_AT] = geo[k + 1, _IN_AT] if k + 1 < len(blocks) else at
    F = C * H * W
    scratch_len = at + F * LANES
    # the first block's input: zero-padded planes, the group's images interleaved (position-major, lane-minor)
    pad = blocks[0][2]
    Hp, Wp = x.shape[3] + 2 * pad, x.shape[4] + pad
    x0 = np.zeros((Px, G, first_len), dtype=np.float32)
    lanes = np.zeros((Px, G * LANES) + x.shape[2:], dtype=np.float32)
    lanes[:, :B] = x
    planes = x0[:, :, :x.shape[2] * Hp * Wp * LANES].reshape(Px, G, x.shape[2], Hp, Wp, LANES)
    planes[:, :, :, pad:pad + x.shape[3], pad:pad + x.shape[4]] = (
        lanes.reshape(Px, G, LANES, *x.shape[2:]).transpose(0, 1, 3, 4, 5, 2))
    out = _features_buffer((P, F, B)) if reuse else np.empty((P, F, B), dtype=np.float32)
    if out.size:
        n_chunks = min(P * G, max(1, numba.get_num_threads() * _CHUNKS_PER_THREAD))
        _conv_stack_numba(x0, theta, geo, np.concatenate(ptrs), np.concatenate(sames), np.concatenate(offs), np.concatenate(srcs),
                          scratch_len, n_chunks, out)
    return out


def _features_buffer(shape):
    """The calling thread's reusable features array of ``shape`` (replaced when the shape changes)."""
    buf = getattr(_kept, "features", None)
    if buf is None or buf.shape != shape:
        buf = _kept.features = np.empty(shape, dtype=np.float32)
    return buf


def _same_as_next(ptr, ci, dy, dx):
    """Per channel (aligned with ``ptr``): 1 where channel co + 1 lists exactly the taps of channel co."""
    same = np.zeros(ptr.size, dtype=np.int64)
    for co in range(ptr.size - 2):
        a, b, c = ptr[co], ptr[co + 1], ptr[co + 2]
        same[co] = b - a == c - b and all(np.array_equal(t[a:b], t[b:c]) for t in (ci, dy, dx))
    return same


@jit.njit(parallel=True)
def _conv_stack_numba(x0, theta, geo, ptr, same, off, src, scratch_len, n_chunks, out):
    """``x0`` ``(Px, G, ·)``: the first block's padded, lane-interleaved input per member (Px = 1: shared) and
    group of LANES images; ``geo``: one row per block (the ``_C_IN`` ... columns); ``ptr``/``off``/``src``:
    every block's tap list, concatenated (``off`` = the tap's input position ci·Hp·Wp + dy·Wp + dx); ``out``
    ``(P, F, B)``. Each chunk of (member, group) tasks zeroes its scratch once: blocks write only the interiors
    of the padded planes, so the borders stay zero."""
    P, F, B = out.shape
    G = x0.shape[1]
    n_blocks = geo.shape[0]
    acc_len = 0
    for k in range(n_blocks):
        acc_len = max(acc_len, geo[k, _STRIP_ROWS] * geo[k, _POOL] * geo[k, _WP] * LANES)
    tasks = P * G
    for c in numba.prange(n_chunks):
        scratch = np.zeros(scratch_len, dtype=np.float32)
        acc = np.empty(2 * acc_len, dtype=np.float32)  # two halves: a channel pair's sums
        feats = scratch[geo[n_blocks - 1, _OUT_AT]:]
        for t in range(c * tasks // n_chunks, (c + 1) * tasks // n_chunks):
            p, g = t // G, t % G
            theta_p = theta[p]
            _block(x0[0 if x0.shape[0] == 1 else p, g], theta_p, geo[0], ptr, same, off, src, acc,
                   scratch[geo[0, _OUT_AT]:])
            for k in range(1, n_blocks):
                _block(scratch[geo[k, _IN_AT]:], theta_p, geo[k], ptr, same, off, src, acc,
                       scratch[geo[k, _OUT_AT]:])
            b0 = g * LANES
            if b0 + LANES <= B:
                for f in range(F):
                    copy_lanes(out[p, f], b0, feats, f * LANES)
            else:
                for lane in range(B - b0):
                    for f in range(F):
                        out[p, f, b0 + lane] = feats[f * LANES + lane]


@jit.njit()
def _block(xin, theta_p, geo, ptr, same, off, src, acc, dest):
    """One block for one member and group: per strip of pooled rows and output channel, sum the taps over the
    strip's padded rows (every position, all lanes, one unit-stride run per tap), then pool, add the bias and
    apply ReLU into ``dest`` (the next block's padded planes, or the features tile)."""
    Wp, C_out, pool, Ho, Wo = geo[_WP], geo[_C_OUT], geo[_POOL], geo[_HO], geo[_WO]
    d_hp, d_wp, d_pad, strip = geo[_D_HP], geo[_D_WP], geo[_D_PAD], geo[_STRIP_ROWS]
    base = geo[_PTR]
    row = Wp * LANES
    acc2 = acc[acc.size // 2:]
    for s0 in range(0, Ho, strip):  # strips outside the channels: a strip's input rows stay in the L1 cache
        s1 = min(s0 + strip, Ho)
        start, n = s0 * pool * row, (s1 - s0) * pool * row
        co = 0
        while co < C_out:
            k0, k1 = ptr[base + co], ptr[base + co + 1]
            bias = theta_p[geo[_B_OFF] + co]
            if k0 == k1:  # no active tap: every window holds zeros, so each output is relu(0 + bias)
                for qy in range(s0, s1):
                    at = ((co * d_hp + qy + d_pad) * d_wp + d_pad) * LANES
                    for qx in range(Wo):
                        fill_relu_lanes(dest, at + qx * LANES, bias)
                co += 1
                continue
            if pool == 2 and k1 - k0 <= 4 and FUSED_FEW_TAPS:
                # few taps (pruned channels): sums, pool, bias and ReLU per window in registers, one pass
                _taps_pool_strip(dest, xin, theta_p, off, src, k0, k1 - k0, co, s0, s1, start, bias, Wp, Wo, d_hp,
                                 d_wp, d_pad)
                co += 1
                continue
            # channel co + 1 lists the same taps (as in a dense layer): both share every load of the inputs
            pair = co + 1 < C_out and same[base + co] != 0
            if pair:
                j0 = k1
                k = _sum_pairs(xin, theta_p, off, src, k0, k1, j0, start, n, acc, acc2)
                _sum_taps(xin, theta_p, off, src, k, k1, k == k0, start, n, acc)
                _sum_taps(xin, theta_p, off, src, j0 + (k - k0), j0 + (k1 - k0), k == k0, start, n, acc2)
                _pool_strip(dest, acc2, co + 1, s0, s1, theta_p[geo[_B_OFF] + co + 1], Wp, pool, Wo, d_hp, d_wp,
                            d_pad)
            else:
                _sum_taps(xin, theta_p, off, src, k0, k1, True, start, n, acc)
            _pool_strip(dest, acc, co, s0, s1, bias, Wp, pool, Wo, d_hp, d_wp, d_pad)
            co += 2 if pair else 1


@numba.njit(inline="always")
def _taps_pool_strip(dest, xin, theta_p, off, src, k0, m, co, s0, s1, start, bias, Wp, Wo, d_hp, d_wp, d_pad):
    """Pooled rows s0..s1 of channel co (pool 2) with its ``m`` = 1..4 taps k0.. summed per window in registers
    (``lanes.taps_pool2``): the values of a pass over the accumulator followed by :func:`_pool_strip`, without
    the accumulator's store and reload (a pruned block 1 is mostly such channels)."""
    row = Wp * LANES
    o0, w0 = off[k0] * LANES, theta_p[src[k0]]
    o1, w1 = (off[k0 + 1] * LANES, theta_p[src[k0 + 1]]) if m > 1 else (o0, w0)
    o2, w2 = (off[k0 + 2] * LANES, theta_p[src[k0 + 2]]) if m > 2 else (o0, w0)
    o3, w3 = (off[k0 + 3] * LANES, theta_p[src[k0 + 3]]) if m > 3 else (o0, w0)
    for qy in range(s1 - s0):
        at = ((co * d_hp + s0 + qy + d_pad) * d_wp + d_pad) * LANES
        for qx in range(Wo):
            first = start + (qy * 2 * Wp + qx * 2) * LANES
            if m == 1:
                taps_pool2_1(dest, at + qx * LANES, xin, first, row, (o0,), (w0,), bias)
            elif m == 2:
                taps_pool2_2(dest, at + qx * LANES, xin, first, row, (o0, o1), (w0, w1), bias)
            elif m == 3:
                taps_pool2_3(dest, at + qx * LANES, xin, first, row, (o0, o1, o2), (w0, w1, w2), bias)
            else:
                taps_pool2_4(dest, at + qx * LANES, xin, first, row, (o0, o1, o2, o3), (w0, w1, w2, w3), bias)


@numba.njit(inline="always")
def _pool_strip(dest, acc, co, s0, s1, bias, Wp, pool, Wo, d_hp, d_wp, d_pad):
    """Pooled rows s0..s1 of channel co from the strip's sums in ``acc``: window max, + bias, ReLU, into
    ``dest``'s padded planes."""
    row = Wp * LANES
    for qy in range(s1 - s0):
        at = ((co * d_hp + s0 + qy + d_pad) * d_wp + d_pad) * LANES
        for qx in range(Wo):
            first = (qy * pool * Wp + qx * pool) * LANES
            if pool == 2:
                pool2_lanes(dest, at + qx * LANES, acc, first, row, bias)
                continue
            copy_lanes(dest, at + qx * LANES, acc, first)
            for py in range(pool):
                for px in range(pool):
                    if py + px:
                        max_lanes(dest, at + qx * LANES, acc, first + (py * Wp + px) * LANES)
            bias_relu_lanes(dest, at + qx * LANES, bias)


@numba.njit(inline="always")
def _run(xin, position, start, n):
    """The n inputs a tap at ``position`` multiplies, as a slice indexed from 0: no wraparound check, so the
    loops over it vectorize."""
    at = position * LANES + start
    return xin[at:at + n]


@numba.njit(inline="always")
def _sum_taps(xin, theta_p, off, src, k0, k1, init, start, n, acc):
    """acc[:n] (= 0 first when ``init``) += Σ over taps k0..k1 (in order) of w_k · run_k, up to four taps per
    pass over the accumulator (still added one after another); the first pass of an ``init`` sum sets the
    accumulator (0 + w·x = w·x) instead of a pass that zeroes it. ceil(taps / 4) passes in all, so a channel
    with few active taps costs few passes."""
    if k0 == k1:
        if init:
            acc[:n] = np.float32(0.0)
        return
    k = k0
    while k < k1:
        first = init and k == k0
        m = min(4, k1 - k)
        w0, r0 = theta_p[src[k]], _run(xin, off[k], start, n)
        if m == 1:
            if first:
                for i in range(n):
                    acc[i] = w0 * r0[i]
            else:
                for i in range(n):
                    acc[i] = acc[i] + w0 * r0[i]
            return
        w1, r1 = theta_p[src[k + 1]], _run(xin, off[k + 1], start, n)
        if m == 2:
            if first:
                for i in range(n):
                    acc[i] = w0 * r0[i] + w1 * r1[i]
            else:
                for i in range(n):
                    acc[i] = (acc[i] + w0 * r0[i]) + w1 * r1[i]
            return
        w2, r2 = theta_p[src[k + 2]], _run(xin, off[k + 2], start, n)
        if m == 3:
            if first:
                for i in range(n):
                    acc[i] = (w0 * r0[i] + w1 * r1[i]) + w2 * r2[i]
            else:
                for i in range(n):
                    acc[i] = ((acc[i] + w0 * r0[i]) + w1 * r1[i]) + w2 * r2[i]
            return
        w3, r3 = theta_p[src[k + 3]], _run(xin, off[k + 3], start, n)
        if first:
            for i in range(n):
                acc[i] = ((w0 * r0[i] + w1 * r1[i]) + w2 * r2[i]) + w3 * r3[i]
        else:
            for i in range(n):
                acc[i] = (((acc[i] + w0 * r0[i]) + w1 * r1[i]) + w2 * r2[i]) + w3 * r3[i]
        k += 4


@numba.njit(inline="always")
def _sum_pairs(xin, theta_p, off, src, k0, k1, j0, start, n, acc, acc2):
    """Two channels with the same tap positions (taps k0..k1 and j0..): their first whole groups of four taps,
    each pass loading the four input runs once for both accumulators (set by the first pass). Returns the
    first tap not yet summed (k0 when there are fewer than four)."""
    k, j = k0, j0
    while k + 4 <= k1:
        r0, r1, r2, r3 = (_run(xin, off[k], start, n), _run(xin, off[k + 1], start, n),
                          _run(xin, off[k + 2], start, n), _run(xin, off[k + 3], start, n))
        w0, w1, w2, w3 = theta_p[src[k]], theta_p[src[k + 1]], theta_p[src[k + 2]], theta_p[src[k + 3]]
        v0, v1, v2, v3 = theta_p[src[j]], theta_p[src[j + 1]], theta_p[src[j + 2]], theta_p[src[j + 3]]
        if k == k0:
            for i in range(n):
                x0, x1, x2, x3 = r0[i], r1[i], r2[i], r3[i]
                acc[i] = ((w0 * x0 + w1 * x1) + w2 * x2) + w3 * x3
                acc2[i] = ((v0 * x0 + v1 * x1) + v2 * x2) + v3 * x3
        else:
            for i in range(n):
                x0, x1, x2, x3 = r0[i], r1[i], r2[i], r3[i]
                acc[i] = (((acc[i] + w0 * x0) + w1 * x1) + w2 * x2) + w3 * x3
                acc2[i] = (((acc2[i] + v0 * x0) + v1 * x1) + v2 * x2) + v3 * x3
        k += 4
        j += 4
    return k
