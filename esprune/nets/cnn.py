"""Population CNN: conv blocks (SAME conv + ReLU + max-pool) then dense layers, under one shared mask.

Parameters, in spec order: ``conv_k/w`` ``(C_out, C_in, K, K)`` (prunable) and ``conv_k/b``, then the dense
part exactly as in ``MLP`` (``dense_k/w`` ``(n_in, n_out)``, ``dense_k/b``). The flatten between them is in
``(C, H, W)`` order.
"""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from ..errors import ConfigError, written
from ..ops import conv as ops
from ..params import Layout, ParamSpec
from .heads import apply_head
from .init import lecun_normal, tensor_rng, uniform_bias
from .mlp import MLP, SPARSE_BELOW, check_inputs


class CNN:
    def __init__(self, in_shape=(1, 28, 28), channels=(8, 16), kernel: int = 5, pool: int = 2, hidden=(),
                 out_dim: int = 10, activation: str = "relu", head: str = "log_softmax"):
        if activation not in ("tanh", "relu"):
            raise ConfigError(f"CNN activation must be tanh or relu, got {written(activation)}")
        self.in_shape = tuple(int(s) for s in in_shape)
        self.channels, self.kernel, self.pool = tuple(int(c) for c in channels), int(kernel), int(pool)
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise ConfigError(f"in_shape must be (C, H, W), got {in_shape}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be odd (SAME padding), got {kernel}")
        if self.pool < 1 or not self.channels or min(self.channels) < 1:
            raise ConfigError(f"need pool >= 1 and at least one conv channel, got pool={pool}, channels={channels}")
        c, h, w = self.in_shape
        self.shapes = []  # (C_in, H, W) entering each conv block
        for c_out in self.channels:
            self.shapes.append((c, h, w))
            c, h, w = c_out, h // self.pool, w // self.pool
        if h < 1 or w < 1:
            raise ConfigError(f"{len(self.channels)} pools of {self.pool} shrink {self.in_shape[1:]} to nothing")
        self.flat_dim = c * h * w
        self.dense = MLP(self.flat_dim, hidden, out_dim, activation=activation, head=head, out_bias="zeros")
        self.activation, self.head, self.out_dim = activation, head, int(out_dim)
        conv = [t for k, (c_in, _, _) in enumerate(self.shapes) for t in (
            (f"conv_{k}/w", (self.channels[k], c_in, self.kernel, self.kernel), True),
            (f"conv_{k}/b", (self.channels[k],), False))]
        self.spec = ParamSpec(conv + [(t.name, t.shape, t.prunable) for t in self.dense.spec])

    def init(self, seed: int) -> dict:
        """LeCun-normal kernels (fan_in = C_in·K·K), hidden biases uniform on [0, 0.05), output bias zeros."""
        params = {}
        for k, (c_in, _, _) in enumerate(self.shapes):
            shape = (self.channels[k], c_in, self.kernel, self.kernel)
            params[f"conv_{k}/w"] = lecun_normal(tensor_rng(seed, 1000 + 2 * k), shape, fan_in=c_in * self.kernel**2)
            params[f"conv_{k}/b"] = uniform_bias(tensor_rng(seed, 1001 + 2 * k), self.channels[k])
        return {**params, **self.dense.init(seed)}

    def forward(self, layout: Layout, pop, x, backend="auto", sparse_below: float = SPARSE_BELOW):
        """Outputs ``(P, B, out_dim)``; ``x`` shared ``(B, C, H, W)`` or per member ``(P, B, C, H, W)``."""
        be = _backend.get(backend)
        pop, x = self._check(layout, pop, x, be)
        if be.name == "numpy":
            return self.forward_reference(layout, pop, x)
        xp = be.xp
        blocks = []
        for k in range(len(self.channels)):
            name = f"conv_{k}/w"
            taps = [layout.to_device(xp, a, ("taps", name, i)) for i, a in enumerate(layout.taps(name).arrays())]
            blocks.append((taps, layout.segment(f"conv_{k}/b").start, self.kernel // 2, self.pool))
        # feature-major (P, F, B), consumed by the first dense layer at once: the numba path may reuse its array
        h = ops.conv_stack(x if x.ndim == 5 else x[None], pop, blocks, be, reuse=True)
        n = self.dense.n_layers
        for k in range(n):
            act = self.activation if k < n - 1 else "linear"
            h = self.dense._layer(layout, k, pop, h, act, be, sparse_below)
        return apply_head(xp, xp.swapaxes(h, 1, 2), self.head)

    def forward_reference(self, layout: Layout, pop, x):
        """The numpy oracle: masked dense kernels, float64, a sliding-window correlation per member."""
        params = layout.unflatten(np.asarray(pop, dtype=np.float64))
        outs = []
        for p, h in enumerate(self.features_reference(layout, pop, x)):
            for k in range(self.dense.n_layers):
                h = h @ params[f"dense_{k}/w"][p] + params[f"dense_{k}/b"][p]
                if k < self.dense.n_layers - 1:
                    h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0.0)
            outs.append(h)
        return apply_head(np, np.stack(outs), self.head).astype(np.float32)

    def features_reference(self, layout: Layout, pop, x):
        """The conv blocks' flattened output ``(P, B, flat_dim)`` float64, in (C, H, W) order: conv + bias,
        ReLU, max-pool (numpy's maximum and max propagate NaN)."""
        params = layout.unflatten(np.asarray(pop, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        outs = []
        for p in range(pop.shape[0]):
            h = x[p] if x.ndim == 5 else x
            for k in range(len(self.channels)):
                h = conv_same_reference(h, params[f"conv_{k}/w"][p]) + params[f"conv_{k}/b"][p][None, :, None, None]
                h = max_pool_reference(np.maximum(h, 0.0), self.pool)
            outs.append(h.reshape(h.shape[0], -1))
        return np.stack(outs)

    def _check(self, layout, pop, x, be):
        pop, x = check_inputs(self.spec, layout, pop, x, be)
        if x.ndim not in (4, 5) or tuple(x.shape[-3:]) != self.in_shape or (x.ndim == 5 and x.shape[0] != pop.shape[0]):
            raise ConfigError(f"inputs must have shape (B, {', '.join(map(str, self.in_shape))}) or "
                              f"({pop.shape[0]}, B, ...), got {tuple(x.shape)}")
        return be.xp.ascontiguousarray(pop), x

    def __repr__(self) -> str:
        c, h, w = self.in_shape
        convs = "→".join(f"conv{self.kernel}x{self.kernel}×{ch}" for ch in self.channels)
        return f"CNN({c}×{h}×{w}→{convs}→{'→'.join(map(str, self.dense.sizes))}, {self.activation}, head={self.head})"


def conv_same_reference(x, w):
    """Cross-correlation with zero SAME padding: ``x`` (B, C_in, H, W), ``w`` (C_out, C_in, K, K) → (B, C_out, H, W)."""
    k = w.shape[-1]
    pad = k // 2
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xpad, (k, k), axis=(2, 3))  # (B, C_in, H, W, K, K)
    return np.einsum("bchwyx,ocyx->bohw", windows, w, optimize=True)


def max_pool_reference(x, pool):
    """Non-overlapping max-pool, VALID (a trailing row/column that does not fill a window is dropped)."""
    B, C, H, W = x.shape
    Ho, Wo = H // pool, W // pool
    return x[:, :, :Ho * pool, :Wo * pool].reshape(B, C, Ho, pool, Wo, pool).max(axis=(3, 5))


def mnist_cnn() -> CNN:
    """The paper's MNIST network: 2 × (conv 5×5 SAME, ReLU, max-pool 2) with 8 and 16 channels, dense 10,
    log-softmax; 11,274 parameters."""
    return CNN((1, 28, 28), (8, 16), 5, 2, (), 10, "relu", "log_softmax")
