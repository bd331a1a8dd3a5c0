"""Vector operations on ``LANES`` consecutive float32 (one AVX-512 register) for the numba conv twin.

numba leaves LLVM's SLP vectorizer off, so straight-line code over so few lanes would stay scalar; these
intrinsics emit one vector load, operation and store each. Max and ReLU propagate NaN as numpy's maximum does.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 16  # images of one member computed together: one AVX-512 register of float32 per (channel, position)


def lanes_op(op):
    """An intrinsic ``f(dst, d, src_or_scalar...)`` on ``LANES`` consecutive float32 as one vector: numba leaves
    LLVM's SLP vectorizer off, so a loop over so few lanes would stay scalar."""
    vec = ir.VectorType(ir.FloatType(), LANES)

    def ptr(context, builder, ty, arr, at):
        data = context.make_array(ty)(context, builder, arr).data
        return builder.bitcast(builder.gep(data, [at]), vec.as_pointer())

    def maximum(builder, a, b):  # NaN-propagating: a where a > b or a is NaN, else b (which is then b's NaN)
        take_a = builder.or_(builder.fcmp_ordered(">", a, b), builder.fcmp_unordered("uno", a, a))
        return builder.select(take_a, a, b)

    def plain_max(builder, a, b):  # one max instruction; NaN operands are handled by the caller
        return builder.select(builder.fcmp_ordered(">", a, b), a, b)

    def splat(builder, x):
        v = ir.Constant(vec, ir.Undefined)
        for lane in range(LANES):
            v = builder.insert_element(v, x, ir.Constant(ir.IntType(32), lane))
        return v

    def load(context, builder, ty, arr, at):
        return builder.load(ptr(context, builder, ty, arr, at), align=4)

    def relu(builder, v):
        return maximum(builder, v, ir.Constant(vec, [0.0] * LANES))

    def codegen(context, builder, sig, args):
        dst = ptr(context, builder, sig.args[0], args[0], args[1])
        if op == "fill_relu":
            v = relu(builder, splat(builder, args[2]))
        elif op == "bias_relu":
            v = relu(builder, builder.fadd(builder.load(dst, align=4), splat(builder, args[2])))
        elif op == "pool2":  # the window's four vectors: (0, 0), (0, 1), (1, 0), (1, 1)
            a, row = args[3], args[4]
            lanes = ir.Constant(a.type, LANES)
            w = [load(context, builder, sig.args[2], args[2], at)
                 for at in (a, builder.add(a, lanes), builder.add(a, row), builder.add(builder.add(a, row), lanes))]
            # plain maxima, then NaN put back where any operand (or the biased max) is NaN: fewer instructions
            # than four NaN-propagating maxima, the same values
            m = plain_max(builder, plain_max(builder, w[0], w[1]), plain_max(builder, w[2], w[3]))
            v = builder.fadd(m, splat(builder, args[5]))
            nan = builder.or_(builder.or_(builder.fcmp_unordered("uno", w[0], w[1]),
                                          builder.fcmp_unordered("uno", w[2], w[3])),
                              builder.fcmp_unordered("uno", v, v))
            v = builder.select(nan, ir.Constant(vec, [float("nan")] * LANES),
                               plain_max(builder, v, ir.Constant(vec, [0.0] * LANES)))
        else:
            v = load(context, builder, sig.args[2], args[2], args[3])
            if op == "max":
                v = maximum(builder, builder.load(dst, align=4), v)
        builder.store(v, dst, align=4)
        return context.get_dummy_value()

    def typer(typingctx, dst, d, *rest):
        arrays = (dst,) + ((rest[0],) if op in ("copy", "max", "pool2") else ())
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in arrays):
            return None
        if op == "pool2":
            rest = (rest[0], types.intp, types.intp, types.float32)
        return types.void(dst, d, *rest), codegen

    if op in ("bias_relu", "fill_relu"):
        return intrinsic(lambda typingctx, dst, d, bias: typer(typingctx, dst, d, bias))
    if op == "pool2":
        return intrinsic(lambda typingctx, dst, d, src, s, row, bias: typer(typingctx, dst, d, src, s, row, bias))
    return intrinsic(lambda typingctx, dst, d, src, s: typer(typingctx, dst, d, src, s))


copy_lanes = lanes_op("copy")  # dst[d:d+L] = src[s:s+L]
max_lanes = lanes_op("max")  # dst[d:d+L] = maximum(dst[d:d+L], src[s:s+L]), NaN-propagating
bias_relu_lanes = lanes_op("bias_relu")  # dst[d:d+L] = maximum(dst[d:d+L] + bias, 0), NaN-propagating
fill_relu_lanes = lanes_op("fill_relu")  # dst[d:d+L] = maximum(bias, 0)
# dst[d:d+L] = relu(max of the 2×2 window of L-vectors at src[s], s + L, s + row, s + row + L) + bias)
pool2_lanes = lanes_op("pool2")


def taps_pool2(m: int):
    """An intrinsic ``f(dst, d, src, s, row, offs, ws, bias)``: the 2×2 max-pool (+ bias, ReLU, NaN kept) of
    the sums over ``m`` taps at the four window positions ``s``, ``s + LANES``, ``s + row``, ``s + row + LANES``
    of ``src``, tap k reading ``src`` at ``offs[k]`` past each position with weight ``ws[k]``, into
    ``dst[d:d+LANES]``. Each position's sum is ``((w0·x0 + w1·x1) + w2·x2) + w3·x3`` (multiply, then add, in tap
    order): what a pass over the accumulator computes, then ``pool2_lanes``, without writing the sums out."""
    vec = ir.VectorType(ir.FloatType(), LANES)

    def splat(builder, x):
        v = ir.Constant(vec, ir.Undefined)
        for lane in range(LANES):
            v = builder.insert_element(v, x, ir.Constant(ir.IntType(32), lane))
        return v

    def plain_max(builder, a, b):
        return builder.select(builder.fcmp_ordered(">", a, b), a, b)

    def codegen(context, builder, sig, args):
        dst_v, d, src_v, s, row, offs, ws, bias = args
        out = context.make_array(sig.args[0])(context, builder, dst_v).data
        inp = context.make_array(sig.args[2])(context, builder, src_v).data
        lanes = ir.Constant(s.type, LANES)
        weights = [splat(builder, builder.extract_value(ws, k)) for k in range(m)]
        taps = [builder.extract_value(offs, k) for k in range(m)]
        w = []
        for corner in (s, builder.add(s, lanes), builder.add(s, row), builder.add(builder.add(s, row), lanes)):
            total = None
            for k in range(m):
                x = builder.load(builder.bitcast(builder.gep(inp, [builder.add(corner, taps[k])]), vec.as_pointer()),
                                 align=4)
                term = builder.fmul(weights[k], x)
                total = term if total is None else builder.fadd(total, term)
            w.append(total)
        # pool2_lanes's operations, in its order
        top = plain_max(builder, plain_max(builder, w[0], w[1]), plain_max(builder, w[2], w[3]))
        v = builder.fadd(top, splat(builder, bias))
        nan = builder.or_(builder.or_(builder.fcmp_unordered("uno", w[0], w[1]),
                                      builder.fcmp_unordered("uno", w[2], w[3])), builder.fcmp_unordered("uno", v, v))
        v = builder.select(nan, ir.Constant(vec, [float("nan")] * LANES),
                           plain_max(builder, v, ir.Constant(vec, [0.0] * LANES)))
        builder.store(v, builder.bitcast(builder.gep(out, [d]), vec.as_pointer()), align=4)
        return context.get_dummy_value()

    def typer(typingctx, dst, d, src, s, row, offs, ws, bias):
        f32 = types.float32
        if not (all(isinstance(a, types.Array) and a.dtype == f32 for a in (dst, src))
                and isinstance(offs, types.UniTuple) and offs.count == m and isinstance(ws, types.UniTuple)
                and ws.count == m and ws.dtype == f32):
            return None
        return types.void(dst, types.intp, src, types.intp, types.intp, types.UniTuple(types.intp, m), ws,
                          types.float32), codegen

    return intrinsic(typer)


# the pooled sums of channels with 1, 2, 3 or 4 active taps, in one pass (ops/conv.py: _taps_pool_strip)
taps_pool2_1, taps_pool2_2, taps_pool2_3, taps_pool2_4 = (taps_pool2(m) for m in (1, 2, 3, 4))
