"""Population MLP: every member of a population evaluated on a batch in one call, under one shared mask."""
from __future__ import annotations

import numpy as np
from scipy import special

from .. import backend as _backend
from ..errors import ConfigError
from ..ops import dense as ops
from ..params import Layout, ParamSpec
from .heads import HEADS, apply_head
from .init import lecun_normal, lecun_uniform, tensor_rng, uniform_bias

# A layer whose weight density is below this takes the sparse (gather) path. `esprune bench forward` on 2 cores
# (README, "Performance"): sparse beats dense at every density < 1 once dense must scatter the active weights
# (wide MLP: 1.14x faster at 0.8, 3.3x at 0.2, 9.9x at 0.05), while a full layer is read in place by the
# 4-column-tiled dense kernel (1.3x faster than sparse). So: dense only for unpruned layers.
SPARSE_BELOW = 1.0


class MLP:
    """``in_dim → hidden… → out_dim`` with ``activation`` between layers and ``head`` on the output.

    Parameters, in spec order: ``dense_k/w`` of shape ``(n_in, n_out)`` (prunable) then ``dense_k/b``.
    ``swish`` (x·sigmoid(x), the paper's PPO policies) runs on the numpy reference path only: the batched
    kernels implement tanh and relu. ``kernel_init`` ``lecun_uniform`` and ``bias="zeros"`` give the paper's
    PPO policy init (brax's networks: U(±√(3/fan_in)) kernels, zero biases).
    """

    def __init__(self, in_dim: int, hidden=(64, 64), out_dim: int = 1, activation: str = "tanh",
                 head: str = "linear", out_bias: str = "uniform", kernel_init: str = "lecun_normal",
                 bias: str = "uniform"):
        if activation not in ("tanh", "relu", "swish"):
            raise ConfigError(f"unknown activation {activation!r}; choose tanh, relu or swish")
        if head not in HEADS:
            raise ConfigError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        for key, value in (("out_bias", out_bias), ("bias", bias)):
            if value not in ("uniform", "zeros"):
                raise ConfigError(f"unknown {key} {value!r}; choose uniform or zeros")
        if kernel_init not in ("lecun_normal", "lecun_uniform"):
            raise ConfigError(f"unknown kernel_init {kernel_init!r}; choose lecun_normal or lecun_uniform")
        self.kernel_init, self.bias = kernel_init, bias
        self.sizes = (int(in_dim), *(int(h) for h in hidden), int(out_dim))
        if min(self.sizes) < 1:
            raise ConfigError(f"every layer needs at least one unit, got sizes {self.sizes}")
        self.activation, self.head, self.out_bias = activation, head, out_bias
        self.spec = ParamSpec([t for k, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:]))
                               for t in ((f"dense_{k}/w", (n_in, n_out), True), (f"dense_{k}/b", (n_out,), False))])

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def init(self, seed: int) -> dict:
        """The paper's init: LeCun-normal weights, biases uniform on [0, 0.05) (output bias per ``out_bias``);
        ``kernel_init="lecun_uniform"``, ``bias="zeros"``: the paper's PPO policy init."""
        params = {}
        kernel = lecun_normal if self.kernel_init == "lecun_normal" else lecun_uniform
        for k, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:])):
            params[f"dense_{k}/w"] = kernel(tensor_rng(seed, 2 * k), (n_in, n_out), fan_in=n_in)
            last = k == self.n_layers - 1
            zeros = self.out_bias == "zeros" if last else self.bias == "zeros"
            params[f"dense_{k}/b"] = (np.zeros(n_out, np.float32) if zeros
                                      else uniform_bias(tensor_rng(seed, 2 * k + 1), n_out))
        return params

    def forward(self, layout: Layout, pop, x, backend="auto", sparse_below: float = SPARSE_BELOW):
        """Outputs ``(P, B, out_dim)`` of every member (rows of ``pop``, ``(P, d)``) on inputs ``x``.

        ``x`` is shared ``(B, in_dim)`` or per member ``(P, B, in_dim)``.
        """
        be = _backend.get(backend)
        pop, x = self._check(layout, pop, x, be)
        if self.activation == "swish":  # no batched kernel has it
            if be.name == "cupy":
                raise ConfigError("a swish network runs on the numpy reference path only; use backend numba or numpy")
            return self.forward_reference(layout, be.to_numpy(pop), be.to_numpy(x))
        if be.name == "numpy":
            return self.forward_reference(layout, pop, x)
        xp = be.xp
        h = xp.ascontiguousarray(xp.swapaxes(x if x.ndim == 3 else x[None], 1, 2))  # (Px, in, B)
        for k in range(self.n_layers):
            act = self.activation if k < self.n_layers - 1 else "linear"
            h = self._layer(layout, k, pop, h, act, be, sparse_below)
        return apply_head(xp, xp.swapaxes(h, 1, 2), self.head)

    def _layer(self, layout, k, pop, h, act, be, sparse_below):
        w, b = f"dense_{k}/w", f"dense_{k}/b"
        cols = layout.columns(w)
        b_off = layout.segment(b).start
        if cols.density < sparse_below:
            xp = be.xp
            idx = [layout.to_device(xp, a, (w, name)) for name, a in
                   (("colptr", cols.colptr), ("rows", cols.rows), ("src", cols.src))]
            return ops.sparse_layer(h, pop, cols.offset, *idx, b_off, cols.n_out, act, be)
        if cols.full:  # read the weights in place from the flat vector
            return ops.dense_layer(h, pop, cols.offset, pop, b_off, cols.n_out, act, be)
        dense = be.xp.zeros((pop.shape[0], cols.n_in * cols.n_out), dtype=np.float32)
        dense[:, layout.to_device(be.xp, layout.positions(w), ("positions", w))] = pop[:, layout.segment(w)]
        return ops.dense_layer(h, dense, 0, pop, b_off, cols.n_out, act, be)

    def forward_reference(self, layout: Layout, pop, x):
        """The numpy oracle: dense masked matrices, float64 arithmetic, one matmul per layer."""
        params = layout.unflatten(np.asarray(pop, dtype=np.float64))
        h = np.asarray(x, dtype=np.float64)
        for k in range(self.n_layers):
            h = h @ params[f"dense_{k}/w"] + params[f"dense_{k}/b"][:, None, :]
            if k < self.n_layers - 1:
                h = activate(h, self.activation)
        return apply_head(np, h, self.head).astype(np.float32)

    def _check(self, layout, pop, x, be):
        pop, x = check_inputs(self.spec, layout, pop, x, be)
        if x.ndim not in (2, 3) or x.shape[-1] != self.sizes[0] or (x.ndim == 3 and x.shape[0] != pop.shape[0]):
            raise ConfigError(f"inputs must have shape (B, {self.sizes[0]}) or ({pop.shape[0]}, B, {self.sizes[0]}), "
                              f"got {tuple(x.shape)}")
        return be.xp.ascontiguousarray(pop), x

    def __repr__(self) -> str:
        init = "" if (self.kernel_init, self.bias) == ("lecun_normal", "uniform") else f", {self.kernel_init}, {self.bias} biases"
        return f"MLP({'→'.join(map(str, self.sizes))}, {self.activation}, head={self.head}{init})"


def activate(h: np.ndarray, activation: str) -> np.ndarray:
    """A hidden layer's nonlinearity in numpy: tanh, relu, or swish x·sigmoid(x) (flax's ``nn.swish``)."""
    if activation == "tanh":
        return np.tanh(h)
    if activation == "relu":
        return np.maximum(h, 0.0)
    return h * special.expit(h)


def check_inputs(spec, layout, pop, x, be):
    """The population and inputs as float32 arrays of ``be``, after the checks every network shares."""
    if layout.spec != spec:
        raise ConfigError("the layout was made for a different network")
    pop = be.asarray(pop, dtype=np.float32)
    if pop.ndim != 2 or pop.shape[1] != layout.dim:
        raise ConfigError(f"population must have shape (P, {layout.dim}), got {tuple(pop.shape)}")
    return pop, be.asarray(x, dtype=np.float32)
