"""Hand-written forward and backward passes of esprune's networks for one parameter set, in numpy.

``forward(net, params, x)`` returns the output and a tape of what the backward pass needs;
``backward(net, params, tape, dout)`` returns ``{name: dL/dtensor}`` for every tensor of the spec. Pruned
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
        mlp = net.dense
    elif isinstance(net, MLP):
        mlp = net
    else:
        raise TypeError(f"no backward pass for {type(net).__name__}")
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


# ---------------------------------------------------------------------------------------------- head
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
    B, C, H, W = a.shape
    Ho, Wo = H // p, W // p
    win = a[:, :, :Ho * p, :Wo * p].reshape(B, C, Ho, p, Wo, p).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, Ho, Wo, p * p)
    where = win.argmax(axis=-1)
    return np.take_along_axis(win, where[..., None], axis=-1)[..., 0], where


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
