"""A training loss as a function of the flat vector of active parameters: value, gradient, Hessian-vector product.

The flat vector is ``Layout``'s (active weights and all biases), so gradients and curvature live on exactly the
space an ES searches; pruned weights are not coordinates at all. Hessian-vector products are exact (to
rounding): Pearlmutter's R-operator through the hand-written backprop (``backprop.r_forward/r_backward``).
"""
from __future__ import annotations

import numpy as np

from ..nets import apply_head
from ..params import Layout
from . import backprop, losses

# Central differences of a gradient have error ~ h²·|∇³L| (truncation) + ε·|∇L| / h (rounding); the two
# balance at h ~ ε^(1/3), about 6e-6 in float64, relative to the scale of θ.
HVP_STEP = float(np.finfo(np.float64).eps) ** (1 / 3)
# A complex step h·i gives f'(x)·v = Im f(x + h·i·v) / h with no subtraction, so any tiny h is exact to rounding
# (Squire & Trapp 1998); 1e-20 keeps Im far above the float64 underflow for every realistic loss scale.
COMPLEX_STEP = 1e-20


class Objective:
    """``L(θ) = loss(net(θ; x), y)`` over the active parameters of ``layout``."""

    def __init__(self, net, layout: Layout, x, y, loss="cross_entropy"):
        """``loss``: a name of ``losses.LOSSES`` or a function ``(out, y) -> (value, dvalue/dout)``.

        ``hvp`` needs the loss's second derivative along R{out}: the closed form for the named losses; for a
        function, its ``hvp`` attribute ``(out, y, r_out) -> (∂²loss/∂out²)·r_out`` if it has one, else a complex
        step through the function (exact for losses written with analytic numpy operations, as
        ``losses.cross_entropy`` and a scaling of it are; ``TypeError`` if the function drops the imaginary part).
        """
        self.net, self.layout, self.x, self.y = net, layout, x, y
        self._loss = loss if callable(loss) else losses.get(loss)
        self._loss_hvp = _LOSS_HVP.get(self._loss) or getattr(self._loss, "hvp", None) or _complex_step(self._loss)

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

    def hvp(self, theta, v):
        """``H(θ)·v`` ``(d,)`` float64 for θ, v ``(d,)``: exact, by Pearlmutter's R-operator (Pearlmutter 1994,
        "Fast exact multiplication by the Hessian") with the ReLU and max-pool patterns of θ — the Hessian
        wherever L is twice differentiable, i.e. everywhere but on the kinks. Costs about 2–3 gradients.

        Finite differences of the gradient are not a substitute on ReLU networks: across a batch their step
        crosses kinks, and each crossing adds a step-dependent term (see ``hessian_vector_product``).
        """
        theta, v = np.asarray(theta, np.float64), np.asarray(v, np.float64)
        params, tangent = self.layout.unflatten(theta), self.layout.unflatten(v)
        out, r_out, tape = backprop.r_forward(self.net, params, tangent, self.x)
        _, dout = self._loss(out, self.y)
        r_dout = self._loss_hvp(out, self.y, r_out)
        _, r_grads = backprop.r_backward(self.net, params, tangent, tape, dout, r_dout)
        return self.layout.flatten(r_grads)


def hessian_vector_product(grad, theta, v, step: float | None = None):
    """A finite-difference reference for a black-box gradient, not what ``Objective.hvp`` uses:
    ``(∇L(θ + h·v̂) − ∇L(θ − h·v̂)) / (2h) · |v|`` with v̂ = v/|v| and h = ``step`` (default
    ε^(1/3)·max(1, |θ|∞)).

    Exact (to rounding) when L is quadratic; O(h²) where L is smooth between θ ± h·v̂, and wrong by a
    step-dependent amount when a ReLU or max-pool kink lies between them. ``grad`` maps a float64 vector to
    its gradient.
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


def _cross_entropy_hvp(out, labels, r_out):
    """(∂²CE/∂out²)·r for ``losses.cross_entropy``: dCE/dout = (softmax(out) − onehot)/B, so the product is
    (p ⊙ r − p·(p·r))/B, the softmax Jacobian (logits and log-probabilities alike: log_softmax is idempotent)."""
    p = np.exp(apply_head(np, out[None], "log_softmax")[0])
    return p * (r_out - (p * r_out).sum(axis=1, keepdims=True)) / out.shape[0]


def _mse_hvp(out, target, r_out):
    """(∂²MSE/∂out²)·r = 2r / (number of entries) for ``losses.mse``."""
    return 2 * r_out / r_out.size


_LOSS_HVP = {losses.cross_entropy: _cross_entropy_hvp, losses.mse: _mse_hvp}


def _complex_step(loss):
    """``(out, y, r) -> d/dt dloss/dout(out + t·r)`` at t = 0 by one complex evaluation of ``loss``."""
    def hvp(out, y, r_out):
        scale = float(np.abs(r_out).max(initial=0.0))
        if scale == 0.0:
            return np.zeros_like(r_out)
        _, dout = loss(out + (1j * COMPLEX_STEP / scale) * r_out, y)
        if not np.iscomplexobj(dout):
            raise TypeError(f"loss {getattr(loss, '__name__', loss)!r} drops the imaginary part of its input: give "
                            "it an hvp attribute (out, y, r_out) -> d²loss/dout²·r_out for exact curvature")
        return dout.imag * (scale / COMPLEX_STEP)
    return hvp
