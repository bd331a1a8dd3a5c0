"""Fused rollouts: whole episodes (policy forward + environment step + done masking) in compiled code.

The numba path runs every (member, episode) pair in parallel with no Python per step. The policy arithmetic
repeats the batched kernels of ``ops/dense.py`` operation for operation (float32, ascending input index, bias
after the sum, the same tanh), so actions, and therefore returns, equal the Python-stepped reference exactly.
``kernels/rollout.cu`` is the CUDA twin (one thread per pair, ``cuda_rollout``), compiled without fused
multiply-adds so that its float32 policy rounds like this one.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from ..backend import array_module
from ..errors import ConfigError
from ..ops import cuda
from ..ops.dense import fast_tanh


def pack_policy(layout, pop, n_layers: int):
    """Members' dense weights (pruned entries 0) as rows ``(P, Σ n_in·n_out + n_out)``: w then b, layer by
    layer; on the array module of ``pop`` (numpy or cupy)."""
    xp = array_module(pop)
    params = layout.unflatten(xp.asarray(pop, dtype=np.float32))
    P = pop.shape[0]
    parts = [params[f"dense_{k}/{t}"].reshape(P, -1) for k in range(n_layers) for t in ("w", "b")]
    return xp.ascontiguousarray(xp.concatenate(parts, axis=1), dtype=np.float32)


MAX_WIDTH = 256  # kernels/rollout.cu holds a layer's activations in per-thread arrays of this size


def cuda_rollout(env, packed, sizes, tanh_hidden: bool, resets, max_steps: int, returns) -> None:
    """``kernels/rollout.cu``: the CUDA twin of ``make_fused_rollout(env)``, one thread per (member, episode);
    every argument is a device array (``sizes`` int32, ``resets`` and ``returns`` float64)."""
    P, E = returns.shape
    if int(sizes.max()) > MAX_WIDTH:
        raise ConfigError(f"the CUDA rollout holds layers of up to {MAX_WIDTH} units; this policy has "
                          f"{int(sizes.max())}")
    for name, a, dtype in (("packed", packed, np.float32), ("sizes", sizes, np.int32),
                           ("resets", resets, np.float64), ("returns", returns, np.float64)):
        cuda.check_device_array(name, a, dtype)
    if P * E == 0:
        return
    kernel = cuda.load("rollout.cu", "--fmad=false").get_function(f"rollout_{env.__name__.rsplit('.', 1)[-1]}")
    kernel(cuda.grid(P * E), (cuda.BLOCK,),
           (packed, np.int64(packed.shape[1]), sizes, np.int32(sizes.shape[0] - 1), np.int32(bool(tanh_hidden)),
            resets, np.int32(E), np.int32(max_steps), np.int32(P), returns))


@numba.njit(inline="always")
def policy_forward(w, sizes, tanh_hidden, h, tmp):
    """Forward of one member's packed MLP on ``h[:sizes[0]]``; the output ends in ``h[:sizes[-1]]``."""
    off = 0
    n_layers = sizes.shape[0] - 1
    for k in range(n_layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        for j in range(n_out):
            tmp[j] = np.float32(0.0)
        for i in range(n_in):  # input-outer so the output loop vectorizes; each sum still runs in ascending i
            hi = h[i]
            base = off + i * n_out
            for j in range(n_out):
                tmp[j] += w[base + j] * hi
        bias = off + n_in * n_out
        for j in range(n_out):
            v = tmp[j] + w[bias + j]
            if k < n_layers - 1:
                v = fast_tanh(v) if tanh_hidden else max(v, np.float32(0.0))
            h[j] = v
        off += n_in * n_out + n_out
    return h


@numba.njit(inline="always")
def argmax_first(h, n):
    best = 0
    for j in range(1, n):
        if h[j] > h[best]:
            best = j
    return best


@numba.njit(inline="always")
def first_output(h, n):
    return h[0]


@functools.lru_cache(maxsize=None)  # one compilation per environment and process (~10 s each on 2 cores)
def make_fused_rollout(env):
    """A compiled ``rollout(packed, sizes, tanh_hidden, resets, max_steps, returns)`` for one environment module.

    The module provides numba ``observe(state, out)`` and ``step(state, action) -> (reward, terminated)``;
    discrete environments act by the argmax of the outputs, continuous ones take the first output as it is.
    """
    env_step, observe = env.step, env.observe
    choose = first_output if env.CONTINUOUS else argmax_first

    @numba.njit(parallel=True, cache=False)
    def rollout(packed, sizes, tanh_hidden, resets, max_steps, returns):
        P, E = returns.shape
        width = sizes.max()
        for t in numba.prange(P * E):
            p, e = t // E, t % E
            s = resets[e].copy()
            h = np.empty(width, dtype=np.float32)
            tmp = np.empty(width, dtype=np.float32)
            total = 0.0
            for _ in range(max_steps):
                observe(s, h)
                policy_forward(packed[p], sizes, tanh_hidden, h, tmp)
                reward, terminated = env_step(s, choose(h, sizes[-1]))
                total += reward
                if terminated:
                    break
            returns[p, e] = total

    return rollout
