"""A training loss as a function of the flat vector of active parameters: value, gradient, Hessian-vector product.

The flat vector is ``Layout``'s (active weights and all biases), so gradients and curvature live on exactly the
space an ES searches; pruned weights are not coordinates at all.
"""
from __future__ import annotations

import numpy as np

from ..params import Layout
from . import backprop, losses

# Central differences of a gradient have error ~ h²·|∇³L| (truncation) + ε·|∇L| / h (rounding); the two
# balance at h ~ ε^(1/3), about 6e-6 in float64, relative to the scale of θ.
HVP_STEP = float(np.finfo(np.float64).eps) ** (1 / 3)


class Objective:
    """``L(θ) = loss(net(θ; x), y)`` over the active parameters of ``layout``."""

    def __init__(self, net, layout: Layout, x, y, loss="cross_entropy"):
        """``loss``: a name of ``losses.LOSSES`` or a function ``(out, y) -> (value, dvalue/dout)``."""
        self.net, self.layout, self.x, self.y = net, layout, x, y
        self._loss = loss if callable(loss) else losses.get(loss)

    @property
    def dim(self) -> int:
        return self.layout.dim

    def value(self, theta) -> float:
        out, _ = backprop.forward(self.net, self.layout.unflatten(np.asarray(theta)), self.x)
        return float(self._loss(out, self.y)[0])

    def value_and_grad(self, theta):
        """``(L, ∇L)``; the gradient has θ's dtype and covers only active parameters."""
        theta = np.asarray(theta)
        params = self.layout.unflatten(theta)
        out, tape = backprop.forward(self.net, params, self.x)
        value, dout = self._loss(out, self.y)
        grads = backprop.backward(self.net, params, tape, dout)
        return float(value), self.layout.flatten(grads)

    def grad(self, theta):
        return self.value_and_grad(theta)[1]

    def hvp(self, theta, v, step: float | None = None):
        """``H(θ)·v`` by central differences of the analytic gradient along ``v`` (float64)."""
        return hessian_vector_product(self.grad, theta, v, step)


def hessian_vector_product(grad, theta, v, step: float | None = None):
    """``(∇L(θ + h·v̂) − ∇L(θ − h·v̂)) / (2h) · |v|`` with v̂ = v/|v| and h = ``step`` (default
    ε^(1/3)·max(1, |θ|∞)).

    Exact (to rounding) when L is quadratic; O(h²) otherwise. ``grad`` maps a float64 vector to its gradient.
    """
    theta = np.asarray(theta, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        return np.zeros_like(theta)
    h = HVP_STEP * max(1.0, float(np.abs(theta).max(initial=0.0))) if step is None else float(step)
    u = v / norm
    plus, minus = np.asarray(grad(theta + h * u), np.float64), np.asarray(grad(theta - h * u), np.float64)
    return (plus - minus) * (norm / (2 * h))
