"""Hand-written forward and backward passes of esprune's networks for one parameter set, in numpy.

``forward(net, params, x)`` returns the output and a tape of what the backward pass needs;
``backward(net, params, tape, dout)`` returns ``{name: dL/dtensor}`` for every tensor of the spec.
``r_forward``/``r_backward`` are the same passes with Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact
multiplication by the Hessian", Neural Computation 6(1)): R{f} = d/dt f(θ + t·v) at t = 0 is carried beside
every quantity, so the R of the gradient is the exact Hessian-vector product H(θ)·v. ReLU and max-pool are
piecewise linear: their patterns (which units are on, which entry of each window wins) are those at θ, which is
the Hessian wherever it exists (everywhere but on the kinks, a set of measure zero). Pruned
weights are exact zeros in ``params`` (``Layout.unflatten``), and ``Objective`` keeps only the gradient entries
of active parameters, so a pruned weight never receives an update. The arithmetic runs in the dtype of
``params``: float64 for finite-difference checks and curvature, float32 for training speed.
"""
from __future__ import annotations

import numpy as np

from ..nets import CNN, MLP, apply_head


def forward(net, params: dict, x):
    """Output ``(B, out_dim)`` (after the head) of one network on a batch, and the tape for ``backward``."""
    dtype = params[net.spec.tensors[0].name].dtype
    h = np.asarray(x, dtype=dtype)
    tape = []
    if isinstance(net, CNN):
        for k in range(len(net.channels)):
            pad = net.kernel // 2
            cols = _im2col(h, net.kernel, pad)
            z = _conv_from_cols(cols, params[f"conv_{k}/w"], params[f"conv_{k}/b"], h.shape)
            a = np.maximum(z, 0)
            pooled, where = _max_pool(a, net.pool)
            tape.append(("conv", k, cols, h.shape, z, a.shape, where))
            h = pooled
        tape.append(("flatten", h.shape))
        h = h.reshape(h.shape[0], -1)
    mlp = _dense_part(net)
    for k in range(mlp.n_layers):
        z = h @ params[f"dense_{k}/w"] + params[f"dense_{k}/b"]
        last = k == mlp.n_layers - 1
        a = z if last else (np.tanh(z) if mlp.activation == "tanh" else np.maximum(z, 0))
        tape.append(("dense", k, h, a, last, mlp.activation))
        h = a
    out = apply_head(np, h[None], mlp.head)[0]
    tape.append(("head", mlp.head, h, out))
    return out, tape


def backward(net, params: dict, tape, dout) -> dict:
    """Gradients ``{name: array}`` of a scalar loss whose derivative with respect to the output is ``dout``."""
    grads = {}
    g = np.asarray(dout, dtype=params[net.spec.tensors[0].name].dtype)
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "head":
            _, head, logits, out = entry
            g = _head_backward(head, logits, out, g)
        elif kind == "dense":
            _, k, h_in, a, last, activation = entry
            if not last:
                g = g * (1 - a * a) if activation == "tanh" else g * (a > 0)
            grads[f"dense_{k}/w"] = h_in.T @ g
            grads[f"dense_{k}/b"] = g.sum(axis=0)
            g = g @ params[f"dense_{k}/w"].T
        elif kind == "flatten":
            g = g.reshape(entry[1])
        else:  # conv block: pool, ReLU, conv
            _, k, cols, in_shape, z, a_shape, where = entry
            g = _max_pool_backward(g, where, a_shape, net.pool) * (z > 0)
            grads[f"conv_{k}/w"], grads[f"conv_{k}/b"], g = _conv_backward(
                g, cols, params[f"conv_{k}/w"], in_shape, net.kernel // 2, need_input=k > 0)
    return grads


def r_forward(net, params: dict, tangent: dict, x):
    """``(out, R{out}, tape)``: the forward pass and its directional derivative along ``tangent``.

    ``tangent`` holds the direction v as named tensors shaped like ``params`` (pruned entries 0, as
    ``Layout.unflatten`` makes them); ``out`` and ``R{out}`` are ``(B, out_dim)`` in the dtype of ``params``.
    Every R-rule is the product rule of its line in ``forward`` (Pearlmutter 1994); the input carries no
    R-term (R{x} = 0, so the first block skips it).
    """
    dtype = params[net.spec.tensors[0].name].dtype
    h, rh = np.asarray(x, dtype=dtype), None
    tape = []
    if isinstance(net, CNN):
        for k in range(len(net.channels)):
            pad, w, v = net.kernel // 2, params[f"conv_{k}/w"], tangent[f"conv_{k}/w"]
            cols = _im2col(h, net.kernel, pad)
            rcols = None if rh is None else _im2col(rh, net.kernel, pad)
            z = _conv_from_cols(cols, w, params[f"conv_{k}/b"], h.shape)
            rz = _conv_from_cols(cols, v, tangent[f"conv_{k}/b"], h.shape)  # conv is bilinear in (input, kernel)
            if rcols is not None:
                rz += _conv_from_cols(rcols, w, 0, h.shape)
            on = z > 0  # the ReLU pattern at θ
            a = np.maximum(z, 0)
            pooled, where = _max_pool(a, net.pool)
            tape.append(("conv", k, cols, rcols, h.shape, on, a.shape, where))
            h, rh = pooled, _pool_gather(rz * on, where, net.pool)  # the max-pool pattern at θ
        tape.append(("flatten", h.shape))
        h, rh = h.reshape(h.shape[0], -1), rh.reshape(rh.shape[0], -1)
    mlp = _dense_part(net)
    for k in range(mlp.n_layers):
        w, v = params[f"dense_{k}/w"], tangent[f"dense_{k}/w"]
        z = h @ w + params[f"dense_{k}/b"]
        rz = h @ v + tangent[f"dense_{k}/b"]
        if rh is not None:
            rz += rh @ w
        last = k == mlp.n_layers - 1
        if last:
            a, ra = z, rz
        elif mlp.activation == "tanh":
            a = np.tanh(z)
            ra = (1 - a * a) * rz
        else:
            a = np.maximum(z, 0)
            ra = rz * (z > 0)
        tape.append(("dense", k, h, rh, a, ra, last, mlp.activation))
        h, rh = a, ra
    out = apply_head(np, h[None], mlp.head)[0]
    rout = _head_r(mlp.head, out, rh)
    tape.append(("head", mlp.head, out, rout))
    return out, rout, tape


def r_backward(net, params: dict, tangent: dict, tape, dout, r_dout) -> tuple[dict, dict]:
    """``(grads, R{grads})``: the gradients of ``backward`` and their derivatives along the tangent of
    ``r_forward``; ``R{grads}`` is H(θ)·v per tensor. ``r_dout`` = (∂²loss/∂out²)·R{out}, from the loss.
    """
    grads, rgrads = {}, {}
    dtype = params[net.spec.tensors[0].name].dtype
    g, rg = np.asarray(dout, dtype=dtype), np.asarray(r_dout, dtype=dtype)
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "head":
            _, head, out, rout = entry
            g, rg = _head_backward(head, None, out, g), _head_backward_r(head, out, rout, g, rg)
        elif kind == "dense":
            _, k, h_in, rh_in, a, ra, last, activation = entry
            if not last and activation == "tanh":  # g·(1 − a²): R = R{g}·(1 − a²) − 2·a·R{a}·g
                slope = 1 - a * a
                g, rg = g * slope, rg * slope - 2 * a * ra * g
            elif not last:  # ReLU: slope 0 or 1, fixed at θ, so R{slope} = 0
                g, rg = g * (a > 0), rg * (a > 0)
            w, v = params[f"dense_{k}/w"], tangent[f"dense_{k}/w"]
            grads[f"dense_{k}/w"], rgrads[f"dense_{k}/w"] = h_in.T @ g, h_in.T @ rg
            if rh_in is not None:
                rgrads[f"dense_{k}/w"] += rh_in.T @ g
            grads[f"dense_{k}/b"], rgrads[f"dense_{k}/b"] = g.sum(axis=0), rg.sum(axis=0)
            g, rg = g @ w.T, rg @ w.T + g @ v.T
        elif kind == "flatten":
            g, rg = g.reshape(entry[1]), rg.reshape(entry[1])
        else:  # conv block: pool, ReLU, conv, each with its pattern at θ
            _, k, cols, rcols, in_shape, on, a_shape, where = entry
            g = _max_pool_backward(g, where, a_shape, net.pool) * on
            rg = _max_pool_backward(rg, where, a_shape, net.pool) * on
            pad, w, name = net.kernel // 2, params[f"conv_{k}/w"], f"conv_{k}"
            grads[f"{name}/w"], grads[f"{name}/b"], g_in = _conv_backward(g, cols, w, in_shape, pad, k > 0)
            rgrads[f"{name}/w"], rgrads[f"{name}/b"], rg_in = _conv_backward(rg, cols, w, in_shape, pad, k > 0)
            if rcols is not None:  # the terms of R{input} (in the kernel's gradient) and of v (in the input's)
                dw, _, dx = _conv_backward(g, rcols, tangent[f"{name}/w"], in_shape, pad, k > 0)
                rgrads[f"{name}/w"] += dw
                rg_in = rg_in + dx if dx is not None else rg_in
            g, rg = g_in, rg_in
    return grads, rgrads


# ---------------------------------------------------------------------------------------------- head
def _head_r(head, out, r):
    """R{out} of ``out = head(logits)`` from R{logits} = ``r``."""
    if head == "linear":
        return r
    if head == "tanh":
        return (1 - out * out) * r
    if head == "log_softmax":  # out = z − logsumexp(z): R{out} = R{z} − softmax(z)·R{z}
        return r - (np.exp(out) * r).sum(axis=1, keepdims=True)
    return out * (r - (out * r).sum(axis=1, keepdims=True))  # softmax


def _head_backward_r(head, out, rout, g, rg):
    """R of ``_head_backward``: its linear part applied to R{g}, plus the derivative of the head's Jacobian."""
    linear = _head_backward(head, None, out, rg)
    if head == "linear":
        return linear
    if head == "tanh":  # g·(1 − out²)
        return linear - 2 * out * rout * g
    if head == "log_softmax":  # g − p·Σg with p = exp(out): R{p} = p·R{out}
        return linear - np.exp(out) * rout * g.sum(axis=1, keepdims=True)
    # softmax s: s·(g − Σ g·s) → R{s}·(g − Σ g·s) − s·Σ g·R{s}
    return linear + rout * (g - (g * out).sum(axis=1, keepdims=True)) - out * (g * rout).sum(axis=1, keepdims=True)


def _head_backward(head, logits, out, g):
    if head == "linear":
        return g
    if head == "tanh":
        return g * (1 - out * out)
    if head == "log_softmax":  # out = z − logsumexp(z): dz = g − softmax(z)·Σg
        return g - np.exp(out) * g.sum(axis=1, keepdims=True)
    return out * (g - (g * out).sum(axis=1, keepdims=True))  # softmax


# ---------------------------------------------------------------------------------------------- conv
def _im2col(x, k, pad):
    """(B, C, H, W) → (B·H·W, C·K·K): each row one SAME-padded receptive field in (c, ky, kx) order."""
    B, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xpad, (k, k), axis=(2, 3))  # (B, C, H, W, K, K)
    return np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(B * H * W, C * k * k)


def _conv_from_cols(cols, w, b, in_shape):
    B, _, H, W = in_shape
    c_out = w.shape[0]
    z = cols @ w.reshape(c_out, -1).T + b
    return z.reshape(B, H, W, c_out).transpose(0, 3, 1, 2)


def _conv_backward(g, cols, w, in_shape, pad, need_input=True):
    """Gradients of the kernel, the bias and (when needed) the conv input from ``g`` ``(B, C_out, H, W)``."""
    B, C, H, W = in_shape
    c_out, k = w.shape[0], w.shape[-1]
    g2 = g.transpose(0, 2, 3, 1).reshape(B * H * W, c_out)
    dw = (g2.T @ cols).reshape(w.shape)
    db = g2.sum(axis=0)
    if not need_input:
        return dw, db, None
    dcols = (g2 @ w.reshape(c_out, -1)).reshape(B, H, W, C, k, k)
    dcols = np.ascontiguousarray(dcols.transpose(0, 3, 4, 5, 1, 2))  # (B, C, K, K, H, W): unit-stride adds
    dx = np.zeros((B, C, H + 2 * pad, W + 2 * pad), dtype=g.dtype)
    for ky in range(k):
        for kx in range(k):
            dx[:, :, ky:ky + H, kx:kx + W] += dcols[:, :, ky, kx]
    return dw, db, dx[:, :, pad:pad + H, pad:pad + W]


def _max_pool(a, p):
    """Non-overlapping max-pool (VALID) and, per window, the index of its first maximum."""
    where = _windows(a, p).argmax(axis=-1)
    return _pool_gather(a, where, p), where


def _pool_gather(a, where, p):
    """The entry ``where`` of each non-overlapping p×p window of ``a`` ``(B, C, H, W)``."""
    return np.take_along_axis(_windows(a, p), where[..., None], axis=-1)[..., 0]


def _windows(a, p):
    B, C, H, W = a.shape
    Ho, Wo = H // p, W // p
    return a[:, :, :Ho * p, :Wo * p].reshape(B, C, Ho, p, Wo, p).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, Ho, Wo, p * p)


def _max_pool_backward(g, where, a_shape, p):
    """The pooled gradient routed to each window's first maximum; dropped border rows/columns get 0."""
    B, C, H, W = a_shape
    Ho, Wo = H // p, W // p
    win = np.zeros((B, C, Ho, Wo, p * p), dtype=g.dtype)
    np.put_along_axis(win, where[..., None], g[..., None], axis=-1)
    out = np.zeros(a_shape, dtype=g.dtype)
    rows = win.reshape(B, C, Ho, Wo, p, p).transpose(0, 1, 2, 4, 3, 5)
    out[:, :, :Ho * p, :Wo * p] = rows.reshape(B, C, Ho * p, Wo * p)
    return out


def _dense_part(net):
    """The MLP a forward pass ends in (the CNN's dense head, or the MLP itself), its activation checked; TypeError
    for a network the passes here cannot differentiate."""
    if isinstance(net, CNN):
        mlp = net.dense
    elif isinstance(net, MLP):
        mlp = net
    else:
        raise TypeError(f"no backward pass for {type(net).__name__}")
    _check_activation(mlp)
    return mlp


def _check_activation(mlp) -> None:
    """Only tanh and relu hidden layers have a backward and R-operator pass here (swish, PPO's paper policy,
    is differentiated in ``ppo.py``): refuse the others rather than treat them as relu."""
    if mlp.activation not in ("tanh", "relu"):
        raise TypeError(f"no backward pass for {mlp.activation} hidden layers (tanh and relu only)")
