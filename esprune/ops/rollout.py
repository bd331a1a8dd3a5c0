"""Fused rollouts: whole episodes (policy forward + environment step + termination) in compiled code, the
numba twin and the launcher of ``kernels/rollout.cu``.

An environment is a module of plain scalar functions (``esprune/tasks/<env>.py``: ``observe(state, out)``,
``step(state, action) -> (reward, terminated)``, marked with :func:`env_function`); this family compiles them
into the rollout, so ``tasks/`` never imports numba.

The policy reads its weights in place from the members' parameter rows through each layer's input-row index
(``ops/index.py: rows``): only active weights are visited, so the cost follows the number of active weights,
and no dense copy of the weights is packed. Every output sums its active inputs in ascending input order from
0, multiply then add (never fused), then adds the bias and the activation: the operation order of
``ops/dense.py``, so actions, and therefore returns, equal the Python-stepped reference exactly.

numba twin: one work item per member runs its episodes in ``LANES`` lanes at once (a lane that finishes takes
the member's next episode) while the environments step one lane at a time. A policy whose weights are all
active runs on lane-major activations, vectors over outputs with the accumulators in registers for a whole
layer (:func:`_dense_block`); a pruned one on feature-major activations, each active weight serving
``LANES`` multiply-adds in one SIMD operation (:func:`_policy_lanes`). Both compute the same per-output sums.
CUDA kernel: one thread per (member, episode) with the same per-output sums (compiled with ``--fmad=false``
so that it rounds like the twin).
"""
from __future__ import annotations

import functools
import math
import types as pytypes

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import cuda, jit
from .dense import fast_tanh

LANES = 8  # episodes of one member stepped together: one AVX2 register of float32 (unrolled by hand below)
MAX_WIDTH = 256  # kernels/rollout.cu holds a layer's activations in per-thread arrays of this size


def env_function(fn):
    """Mark an environment's scalar function (step, observe or a helper) for compilation into the rollout.
    Inlined into the rollout (numba IR level): a call would cost a reference count on the state array per
    step, two atomic operations."""
    return jit.njit(error_model="numpy", inline="always")(fn)


def policy_index(layout, n_layers: int, xp=np):
    """The arrays the rollouts read for an MLP policy under ``layout``, on array module ``xp`` (cached):
    ``sizes`` (n_layers + 1,); ``rows`` and ``cols``, every layer's active entries in row-major order
    (``ops/index.py: rows``) one layer after another; ``table`` (6, n_layers): per layer the flat position of
    its first active weight, of its bias, where its entries start in ``rows``/``cols``, how many there are,
    and, for the numba twin, where its per-lane biases start and whether every weight is active. int32 on the
    device, int64 on the host."""
    def build(lay):
        parts = [lay.rows(f"dense_{k}/w") for k in range(n_layers)]
        nnz = [r.nnz for r in parts]
        table = np.array([[r.offset for r in parts], [lay.segment(f"dense_{k}/b").start for k in range(n_layers)],
                          np.cumsum([0] + nnz)[:-1], nnz, np.cumsum([0] + [r.n_out * LANES for r in parts])[:-1],
                          [r.nnz == r.n_in * r.n_out for r in parts]])
        return {"sizes": np.array([parts[0].n_in] + [r.n_out for r in parts]), "table": table,
                "rows": np.concatenate([r.rows for r in parts]), "cols": np.concatenate([r.cols for r in parts])}

    host = layout.derived(("policy_index", n_layers), build)
    dtype = np.int64 if xp is np else np.int32
    return {k: layout.to_device(xp, np.ascontiguousarray(v, dtype=dtype), ("policy_index", n_layers, k))
            for k, v in host.items()}


def rollout(env, theta, index, tanh_hidden: bool, resets, max_steps: int, returns, steps, backend) -> None:
    """Returns ``(P, E)`` float64 and episode lengths ``steps`` ``(P, E)`` float64 of every member (rows of
    ``theta`` ``(P, d)`` float32) on the episodes starting from ``resets`` ``(E, state_dim)`` float64; ``index``
    from :func:`policy_index`, every array on the backend's array module. In place on ``returns`` and ``steps``."""
    P, E = returns.shape
    if P * E == 0 or max_steps <= 0:
        return
    if backend.name == "cupy":
        _cuda_rollout(env, theta, index, tanh_hidden, resets, max_steps, returns, steps)
    else:
        _parallel_members(_twin(env), P, theta, index["sizes"], index["table"], index["rows"], index["cols"],
                          bool(tanh_hidden), resets, max_steps, returns, steps)


def _cuda_rollout(env, theta, index, tanh_hidden, resets, max_steps, returns, steps) -> None:
    sizes = index["sizes"]
    if int(sizes.max()) > MAX_WIDTH:
        from ..errors import ConfigError

        raise ConfigError(f"the CUDA rollout holds layers of up to {MAX_WIDTH} units; this policy has "
                          f"{int(sizes.max())}")
    cuda.check_device_array("theta", theta, np.float32)
    for name in ("sizes", "table", "rows", "cols"):
        cuda.check_device_array(name, index[name], np.int32)
    for name, a in (("resets", resets), ("returns", returns), ("steps", steps)):
        cuda.check_device_array(name, a, np.float64)
    P, E = returns.shape
    kernel = cuda.load("rollout.cu", "--fmad=false").get_function(f"rollout_{env.__name__.rsplit('.', 1)[-1]}")
    kernel(cuda.grid(P * E), (cuda.BLOCK,),
           (theta, np.int64(theta.shape[1]), sizes, index["table"], index["rows"], index["cols"],
            np.int32(sizes.shape[0] - 1), np.int32(bool(tanh_hidden)), resets, np.int32(E), np.int32(max_steps),
            np.int32(P), returns, steps))


# ------------------------------------------------------------------------------------------------- numba twin
@numba.njit(inline="always")
def _argmax_first(out, n):
    """numpy's argmax: the first largest of ``out[:n]``, or the first NaN (the reference's rule)."""
    best = 0
    for j in range(1, n):
        if math.isnan(out[best]):
            break
        if out[j] > out[best] or math.isnan(out[j]):
            best = j
    return best


@numba.njit(inline="always")
def _first_output(out, n):
    return out[0]


@intrinsic
def _axpy_lanes(typingctx, arr, start, ws, xs):
    """``arr[start:start + LANES] += ws[r] * xs[r]`` for r = 0, 1, ... in turn: ``ws`` a tuple of float32
    weights, ``xs`` a tuple of as many ``LANES``-tuples of float32 inputs. Each product is one vector multiply
    and each sum one vector add, in order (never a fused multiply-add: the rounding of the scalar code), and
    the accumulator is loaded and stored once for all rows. numba leaves LLVM's SLP vectorizer off, so
    scalar statements over the lanes would stay scalar."""
    f32 = types.float32
    if not (isinstance(arr, types.Array) and arr.dtype == f32 and isinstance(ws, types.UniTuple)
            and ws.dtype == f32 and isinstance(xs, types.UniTuple) and xs.count == ws.count
            and xs.dtype == types.UniTuple(f32, LANES)):
        return None

    def codegen(context, builder, signature, args):
        arr_v, start_v, ws_v, xs_v = args
        data = context.make_array(signature.args[0])(context, builder, arr_v).data
        vec = ir.VectorType(ir.FloatType(), LANES)
        ptr = builder.bitcast(builder.gep(data, [start_v]), vec.as_pointer())
        total = builder.load(ptr, align=4)
        for r in range(signature.args[2].count):
            w = builder.extract_value(ws_v, r)
            row = builder.extract_value(xs_v, r)
            x, wv = ir.Constant(vec, ir.Undefined), ir.Constant(vec, ir.Undefined)
            for lane in range(LANES):
                at = ir.Constant(ir.IntType(32), lane)
                x = builder.insert_element(x, builder.extract_value(row, lane), at)
                wv = builder.insert_element(wv, w, at)
            total = builder.fadd(total, builder.fmul(wv, x))
        builder.store(total, ptr, align=4)
        return context.get_dummy_value()

    return types.void(arr, start, ws, xs), codegen


@numba.njit(inline="always")
def _lanes(h, i):
    """Feature i of every lane, as a tuple (kept in a register across the loops that use it)."""
    at = i * LANES
    return (h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6], h[at + 7])


@intrinsic
def _axpy_row(typingctx, arr, start, w, src, at):
    """``arr[start:start + LANES] += w * src[at:at + LANES]``: the sparse path's update, one vector multiply and
    one vector add like :func:`_axpy_lanes`, with the input row loaded from memory."""
    f32 = types.float32
    if not (isinstance(arr, types.Array) and arr.dtype == f32 and isinstance(src, types.Array)
            and src.dtype == f32 and w == f32):
        return None

    def codegen(context, builder, signature, args):
        arr_v, start_v, w_v, src_v, at_v = args
        vec = ir.VectorType(ir.FloatType(), LANES)
        out = context.make_array(signature.args[0])(context, builder, arr_v).data
        inp = context.make_array(signature.args[3])(context, builder, src_v).data
        ptr = builder.bitcast(builder.gep(out, [start_v]), vec.as_pointer())
        x = builder.load(builder.bitcast(builder.gep(inp, [at_v]), vec.as_pointer()), align=4)
        wv = ir.Constant(vec, ir.Undefined)
        for lane in range(LANES):
            wv = builder.insert_element(wv, w_v, ir.Constant(ir.IntType(32), lane))
        builder.store(builder.fadd(builder.load(ptr, align=4), builder.fmul(wv, x)), ptr, align=4)
        return context.get_dummy_value()

    return types.void(arr, start, w, src, at), codegen


def _dense_block(vectors: int, width: int, lanes: int):
    """An intrinsic ``f(out, x, w, n_in, n_out, j0, lane0)`` for a layer whose weights are all active, on
    lane-major activations (lane l's feature i at ``l · n_in + i``): for lanes ``lane0 .. lane0 + lanes - 1``
    and outputs ``j0 .. j0 + vectors · width - 1``, ``out[l · n_out + j] = Σ_i w[i · n_out + j] · x[l · n_in + i]``
    over i ascending from 0, multiply then add (never fused): the same sum as every other path, bit for bit.
    The ``vectors · lanes`` accumulators (vectors of ``width`` outputs) stay in registers over the whole i loop:
    per input, ``vectors`` weight loads and ``lanes`` broadcasts serve ``vectors · lanes`` vector multiply-adds,
    so the loop runs near the machine's multiply and add throughput (the feature-major path below loads and
    stores its accumulator every four inputs and broadcasts every weight)."""
    def typer(typingctx, out, x, w, n_in, n_out, j0, lane0):
        f32 = types.float32
        if not all(isinstance(a, types.Array) and a.dtype == f32 for a in (out, x, w)):
            return None
        return types.void(out, x, w, types.intp, types.intp, types.intp, types.intp), codegen

    def codegen(context, builder, sig, args):
        out_v, x_v, w_v, n_in, n_out, j0, lane0 = args
        out_p, x_p, w_p = (context.make_array(t)(context, builder, a).data for t, a in zip(sig.args[:3], args[:3]))
        i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), width)
        lane_at = [builder.add(lane0, ir.Constant(i64, l)) for l in range(lanes)]
        acc = [[cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * width)) for _ in range(vectors)]
               for _ in range(lanes)]  # promoted to registers by LLVM
        with cgutils.for_range(builder, n_in) as loop:
            i = loop.index
            row = builder.add(builder.mul(i, n_out), j0)
            ws = [builder.load(builder.bitcast(builder.gep(w_p, [builder.add(row, ir.Constant(i64, width * b))]),
                                               vec.as_pointer()), align=4) for b in range(vectors)]
            for l in range(lanes):
                xi = builder.load(builder.gep(x_p, [builder.add(builder.mul(lane_at[l], n_in), i)]))
                xv = builder.insert_element(ir.Constant(vec, ir.Undefined), xi, ir.Constant(ir.IntType(32), 0))
                xv = builder.shuffle_vector(xv, ir.Constant(vec, ir.Undefined),
                                            ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width))
                for b in range(vectors):
                    builder.store(builder.fadd(builder.load(acc[l][b]), builder.fmul(ws[b], xv)), acc[l][b])
        for l in range(lanes):
            at = builder.add(builder.mul(lane_at[l], n_out), j0)
            for b in range(vectors):
                ptr = builder.gep(out_p, [builder.add(at, ir.Constant(i64, width * b))])
                builder.store(builder.load(acc[l][b]), builder.bitcast(ptr, vec.as_pointer()), align=4)
        return context.get_dummy_value()

    return intrinsic(typer)


# blocks of outputs × lanes: 64 × 4 (16 accumulators of 16 floats; 64 × 2 measured 4% slower on the full-length
# row and no faster on the learning one), 16 × 4, then narrow outputs over all lanes (enough independent sums
# per input to hide the latency of the adds)
_block64, _block16 = _dense_block(4, 16, 4), _dense_block(1, 16, 4)
_block2, _block1 = _dense_block(1, 2, LANES), _dense_block(1, 1, LANES)


@numba.njit(inline="always")
def _activate_lanes(h, acc, bias, n, last, tanh_hidden):
    """h[:n] = act(acc[:n] + bias[:n]): separate loops per activation, each vectorized."""
    zero = np.float32(0.0)
    if last:
        for q in range(n):
            h[q] = acc[q] + bias[q]
    elif tanh_hidden:
        for q in range(n):
            h[q] = fast_tanh(acc[q] + bias[q])
    else:
        for q in range(n):
            h[q] = max(acc[q] + bias[q], zero)


@jit.njit(error_model="numpy")
def _policy_dense(theta_p, bias_lanes, sizes, table, tanh_hidden, h, acc, live):
    """Forward of one member's policy on its first ``live`` lanes (of ``LANES``) when every weight is active,
    on lane-major activations: ``h`` holds lane l's feature i at ``l · width_k + i`` (width_k of the layer it
    feeds), the outputs end in ``h[:live · n_out]`` the same way; ``bias_lanes`` holds each layer's bias tiled
    per lane (from ``table[4, k]``). The sums are those of :func:`_dense_block`, the bias added after them.
    Lanes past ``live`` may be computed from stale inputs; nothing reads them."""
    n_layers = sizes.shape[0] - 1
    for k in range(n_layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        w = theta_p[table[0, k]:table[0, k] + n_in * n_out]
        j0 = 0
        while j0 + 64 <= n_out:
            for lane0 in range(0, live, 4):
                _block64(acc, h, w, n_in, n_out, j0, lane0)
            j0 += 64
        while j0 + 16 <= n_out:
            for lane0 in range(0, live, 4):
                _block16(acc, h, w, n_in, n_out, j0, lane0)
            j0 += 16
        while j0 + 2 <= n_out:
            _block2(acc, h, w, n_in, n_out, j0, 0)
            j0 += 2
        if j0 < n_out:
            _block1(acc, h, w, n_in, n_out, j0, 0)
        n = n_out * live
        _activate_lanes(h, acc, bias_lanes[table[4, k]:table[4, k] + n], n, k == n_layers - 1, tanh_hidden)


@jit.njit(error_model="numpy")
def _policy_lanes(theta_p, bias_lanes, sizes, table, rows, cols, tanh_hidden, h, acc):
    """Forward of one member's policy on ``LANES`` episodes at once. ``h`` and ``acc`` are feature-major
    ``(width · LANES,)``: feature i of lane l at ``i · LANES + l``; the outputs end in ``h[:n_out · LANES]``.
    ``bias_lanes`` holds every layer's bias repeated per lane (from offset ``table[4, k]``). Row-major order:
    entry by entry, output j gets ``w · h[i]`` added in all lanes at once, so every output's sum still runs in
    ascending i from 0, and the bias comes after it. Every array in a loop is a slice indexed from 0: a signed
    offset in an index makes numba test it for negative values, which costs more than the update itself."""
    n_layers = sizes.shape[0] - 1
    zero = np.float32(0.0)
    for k in range(n_layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        n = n_out * LANES
        w_off, e0, nnz, bl = table[0, k], table[2, k], table[3, k], table[4, k]
        w = theta_p[w_off:w_off + nnz]
        acc[:n] = zero
        if table[5, k]:  # every weight active: four input rows per pass over the accumulator, added in order
            i = 0
            while i + 4 <= n_in:
                xs = (_lanes(h, i), _lanes(h, i + 1), _lanes(h, i + 2), _lanes(h, i + 3))
                w0, w1, w2, w3 = w[i * n_out:], w[(i + 1) * n_out:], w[(i + 2) * n_out:], w[(i + 3) * n_out:]
                for j in range(n_out):
                    _axpy_lanes(acc, j * LANES, (w0[j], w1[j], w2[j], w3[j]), xs)
                i += 4
            for i in range(i, n_in):
                xs1 = (_lanes(h, i),)
                wi = w[i * n_out:]
                for j in range(n_out):
                    _axpy_lanes(acc, j * LANES, (wi[j],), xs1)
        else:
            r, c = rows[e0:e0 + nnz], cols[e0:e0 + nnz]
            for q in range(nnz):
                _axpy_row(acc, c[q] * LANES, w[q], h, r[q] * LANES)
        _activate_lanes(h, acc, bias_lanes[bl:bl + n], n, k == n_layers - 1, tanh_hidden)


@functools.lru_cache(maxsize=None)
def _twin(env):
    """The compiled numba rollout of one environment module: the two templates below bound to the environment's
    functions and sizes, compiled once (numba's disk cache, ``ops/jit.py``: once per esprune version, not per
    process). The environment enters as globals of functions named after it, not as closure cells: numba keys a
    cached closure by its pickled cells, which for compiled functions differ in every process, and names the
    cache files by the function's name, so each environment needs its own."""
    name = env.__name__.rsplit(".", 1)[-1]
    g = {**globals(), "_env_step": env.step, "_env_observe": env.observe,
         "_choose": _first_output if env.CONTINUOUS else _argmax_first, "_STATE_DIM": env.STATE_DIM,
         "_OBS_DIM": env.OBS_DIM}
    g["_member"] = jit.njit(error_model="numpy")(_bound(_member_template, g, f"_member_{name}"))
    return jit.njit(error_model="numpy", nogil=True)(_bound(_members_template, g, f"_members_{name}"))


def _bound(template, g: dict, name: str):
    """``template``'s code as a new function named ``name`` reading its globals from ``g``."""
    fn = pytypes.FunctionType(template.__code__, g, name)
    fn.__qualname__ = name
    return fn


# Globals of the templates, bound per environment by _twin (placeholders here).
_env_step = _env_observe = _choose = _member = None
_STATE_DIM = _OBS_DIM = 0


def _member_template(theta_p, sizes, table, rows, cols, tanh_hidden, resets, max_steps, returns_p, steps_p):
    """Every episode of one member, ``LANES`` at a time (the live ones kept in the first lanes): lane-major
    activations (:func:`_policy_dense`, on the live lanes only) when every weight is active, feature-major ones
    (:func:`_policy_lanes`, all lanes) otherwise. A lane's state is copied to
    ``cur`` for the environment's functions: a view ``s[lane]`` would cost two reference-count updates."""
    E = returns_p.shape[0]
    width = sizes.max()
    n_layers = sizes.shape[0] - 1
    n_act = sizes[n_layers]
    dense = True
    for k in range(n_layers):
        dense = dense and table[5, k] != 0
    # where lane l's input i and output j sit: i · in_f + l · in_l, j · out_f + l · out_l
    in_f, in_l, out_f, out_l = (1, sizes[0], 1, n_act) if dense else (LANES, 1, LANES, 1)
    h = np.zeros(width * LANES, dtype=np.float32)
    acc = np.empty(width * LANES, dtype=np.float32)
    bias_lanes = np.empty(table[4, n_layers - 1] + n_act * LANES, dtype=np.float32)
    for k in range(n_layers):  # the member's biases, repeated per lane (in the layout used) once for all steps
        n_out = sizes[k + 1]
        for j in range(n_out):
            for lane in range(LANES):
                at = lane * n_out + j if dense else j * LANES + lane
                bias_lanes[table[4, k] + at] = theta_p[table[1, k] + j]
    obs = np.empty(_OBS_DIM, dtype=np.float32)
    out = np.empty(n_act, dtype=np.float32)
    s = np.empty((LANES, _STATE_DIM))
    cur = np.empty(_STATE_DIM)
    episode = np.full(LANES, -1)
    steps = np.zeros(LANES, dtype=np.int64)
    total = np.zeros(LANES)
    pending, live = 0, 0
    for lane in range(LANES):  # the first LANES episodes (fewer when E is small)
        if pending < E:
            s[lane] = resets[pending]
            episode[lane] = pending
            pending += 1
            live += 1
    while live > 0:
        for lane in range(LANES):
            if episode[lane] >= 0:
                for i in range(_STATE_DIM):
                    cur[i] = s[lane, i]
                _env_observe(cur, obs)
                for i in range(_OBS_DIM):
                    h[i * in_f + lane * in_l] = obs[i]
        if dense:
            _policy_dense(theta_p, bias_lanes, sizes, table, tanh_hidden, h, acc, live)
        else:
            _policy_lanes(theta_p, bias_lanes, sizes, table, rows, cols, tanh_hidden, h, acc)
        for lane in range(LANES):
            if episode[lane] < 0:
                continue
            for j in range(n_act):
                out[j] = h[j * out_f + lane * out_l]
            for i in range(_STATE_DIM):
                cur[i] = s[lane, i]
            reward, terminated = _env_step(cur, _choose(out, n_act))
            for i in range(_STATE_DIM):
                s[lane, i] = cur[i]
            total[lane] += reward
            steps[lane] += 1
            if terminated or steps[lane] >= max_steps:
                returns_p[episode[lane]], steps_p[episode[lane]] = total[lane], steps[lane]
                total[lane], steps[lane] = 0.0, 0
                if pending < E:  # the lane takes the member's next episode
                    s[lane] = resets[pending]
                    episode[lane] = pending
                    pending += 1
                else:
                    episode[lane] = -1
                    live -= 1
        # the live episodes move to the first lanes (their order kept), so the dense path computes only those
        to = 0
        for lane in range(LANES):
            if episode[lane] >= 0:
                if lane != to:
                    for i in range(_STATE_DIM):
                        s[to, i] = s[lane, i]
                    episode[to], steps[to], total[to] = episode[lane], steps[lane], total[lane]
                    episode[lane] = -1
                to += 1


@intrinsic
def _take_next(typingctx, queue):
    """``queue[0] += 1`` as one atomic operation, returning the old value: the next member of a work queue
    that every thread of a rollout takes from."""
    if not (isinstance(queue, types.Array) and queue.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(queue), codegen


def _members_template(queue, theta, sizes, table, rows, cols, tanh_hidden, resets, max_steps, returns, steps):
    """Members taken one at a time from ``queue`` until none is left (members differ in episode length, so
    a split fixed in advance would leave threads idle)."""
    P = theta.shape[0]
    while True:
        p = _take_next(queue)
        if p >= P:
            break
        _member(theta[p], sizes, table, rows, cols, tanh_hidden, resets, max_steps, returns[p], steps[p])


def _parallel_members(members, P, *args) -> None:
    """``members(queue, *args)`` on numba's thread count at once, the threads sharing one work queue of the P
    members (``_take_next``: one atomic add per member, no Python per member). Python threads over a nogil
    function instead of a prange loop: numba's parallel lowering costs seconds of compilation per
    environment and process, which a short run would pay every time."""
    queue = np.zeros(1, dtype=np.int64)
    threads = min(numba.get_num_threads(), P)
    if threads <= 1:
        members(queue, *args)
        return
    for f in [_pool().submit(members, queue, *args) for _ in range(threads)]:
        f.result()


@functools.lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS, thread_name_prefix="esprune-rollout")
