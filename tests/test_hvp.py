"""Exact Hessian-vector products (Pearlmutter's R-operator through esprune.gd.backprop) against two references:
central differences of the gradient on smooth networks, and a complex step through the backprop on ReLU and
max-pool networks, where a real finite-difference step crosses kinks."""
import warnings

import numpy as np
import pytest
from test_gd import NETS, _problem

from esprune import tasks
from esprune.gd import backprop, criteria
from esprune.gd.objective import Objective, hessian_vector_product
from esprune.nets import CNN, MLP
from esprune.params import Layout, Mask

HEADS = ("linear", "tanh", "softmax", "log_softmax")


def complex_step_hvp(obj, theta, v, h=1e-30):
    """H·v = Im ∇L(θ + i·h·v) / h (Squire & Trapp 1998), by esprune's gradient code run in complex arithmetic.
    The real part never moves, so every ReLU and max-pool keeps θ's pattern, and nothing is subtracted, so the
    result is exact to rounding for any h this small: a reference that does not share the R-operator's code."""
    params = obj.layout.unflatten(np.asarray(theta, np.float64) + 1j * h * np.asarray(v, np.float64))
    out, tape = backprop.forward(obj.net, params, obj.x)
    with warnings.catch_warnings():  # the loss's float(value) drops the imaginary part of the value, not of dout
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        _, dout = obj._loss(out, obj.y)
    return obj.layout.flatten(backprop.backward(obj.net, params, tape, dout)).imag / h


def _cnn_at_a_kink(kink, rng, gap=1e-9):
    """A two-block CNN on random images with one pool window of its first block ``gap`` from a kink: for
    ``"relu"`` the channel's bias is shifted until the window's largest pre-activation is +gap (the other three
    are then negative); for ``"max-pool"`` the bias makes the window's runner-up active and the input pixel that
    only the runner-up sees (its outer corner) is moved until winner and runner-up differ by gap. A central-difference step (~1e-6 along a random direction)
    crosses that kink; the R-operator and the complex step keep the pattern at θ."""
    net = CNN((1, 8, 8), (2, 3), 3, 2, (), 3)
    obj, theta = _problem(net, "cross_entropy", rng, sparsity=0.0, batch=8)
    x, params = obj.x.copy(), obj.layout.unflatten(theta)
    win = _window(net, params, x)
    if kink == "relu":
        params["conv_0/b"][0] -= win.max() - gap
    else:
        (y1, x1), (y2, x2) = zip(*np.unravel_index(np.argsort(win, axis=None)[::-1][:2], win.shape))
        lift = 0.5 - min(win[y2, x2], 0.0)  # the runner-up must be active for its tie with the winner to matter
        params["conv_0/b"][0] += lift
        win = win + lift
        dy, dx = 2 * y2 - 1, 2 * x2 - 1  # the outer corner of the runner-up's 3×3 patch, in the patch
        tap = params["conv_0/w"][0, 0, 1 + dy, 1 + dx]
        x[0, 0, 2 + y2 + dy, 2 + x2 + dx] += (win[y1, x1] - gap - win[y2, x2]) / tap
    top = np.sort(_window(net, params, x), axis=None)[::-1]
    assert (top[0] if kink == "relu" else top[0] - top[1]) == pytest.approx(gap, abs=1e-13)
    return Objective(net, obj.layout, x, obj.y), obj.layout.flatten(params)


def _window(net, params, x):
    """First image, first channel of the first conv block: the pre-activations of pool window (1, 1), (2, 2)."""
    tape = backprop.forward(net, params, x)[1]
    return tape[0][4][0, 0, 2:4, 2:4]


def _dense_hessian(hvp, dim):
    return np.stack([hvp(e) for e in np.eye(dim)], axis=1)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("name", list(NETS))
def test_hvp_equals_the_complex_step_reference_on_every_network(name, loss, rng):
    obj, theta = _problem(NETS[name](), loss, rng)
    for _ in range(2):
        v = rng.standard_normal(obj.dim)
        ref = complex_step_hvp(obj, theta, v)
        np.testing.assert_allclose(obj.hvp(theta, v), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("head", HEADS)
def test_hvp_agrees_with_finite_differences_on_smooth_networks(head, loss, rng):
    obj, theta = _problem(MLP(5, (7, 6), 4, "tanh", head), loss, rng)
    for _ in range(2):
        v = rng.standard_normal(obj.dim)
        fd = hessian_vector_product(obj.grad, theta, v)  # O(h²) ≈ 4e-11 from the truth on a smooth loss
        np.testing.assert_allclose(obj.hvp(theta, v), fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_dense_hessian_of_a_smooth_network_equals_finite_differences_column_by_column(rng):
    obj, theta = _problem(MLP(4, (5,), 3, "tanh", "softmax"), "cross_entropy", rng, batch=10)
    exact = _dense_hessian(lambda e: obj.hvp(theta, e), obj.dim)
    fd = _dense_hessian(lambda e: hessian_vector_product(obj.grad, theta, e), obj.dim)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(exact, fd, rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("kink", ["relu", "max-pool"])
def test_dense_hessian_of_a_cnn_at_a_kink_equals_the_complex_step_reference(kink, rng):
    """Assembled column by column; symmetric, as a Hessian is."""
    obj, theta = _cnn_at_a_kink(kink, rng)
    exact = _dense_hessian(lambda e: obj.hvp(theta, e), obj.dim)
    ref = _dense_hessian(lambda e: complex_step_hvp(obj, theta, e), obj.dim)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(exact, ref, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("kink", ["relu", "max-pool"])
def test_hvp_is_symmetric_on_a_cnn_where_a_difference_step_crosses_a_kink(kink, rng):
    """uᵀHw = wᵀHu, both equal to the complex-step reference. A central difference of the gradient (the HVP
    before the R-operator) gives two different numbers here: the kink it crosses adds a term ∝ 1/step."""
    obj, theta = _cnn_at_a_kink(kink, rng)
    for _ in range(3):
        u, w = rng.standard_normal((2, obj.dim))
        uhw, whu = u @ obj.hvp(theta, w), w @ obj.hvp(theta, u)
        assert uhw == pytest.approx(whu, rel=1e-10)
        assert uhw == pytest.approx(u @ complex_step_hvp(obj, theta, w), rel=1e-10)


def test_grasp_scores_are_weight_times_the_dense_hessian_times_the_gradient():
    """GraSP's survival score θ ⊙ Hg of its tempered loss, with H assembled from complex-step columns; the
    init puts one unit 1e-9 above its ReLU kink, which a difference step along g would cross."""
    task = tasks.make("blobs", n_train=256, n_test=100, size=6, batch_size=64)
    net = CNN((1, 6, 6), (2,), 3, 2, (), 10)
    init, mask = {n: v.astype(np.float64) for n, v in net.init(0).items()}, Mask.dense(net.spec)
    xtr, ytr, _, _ = task.prepare()
    idx = task.batch(3, 0)
    init["conv_0/b"][0] -= backprop.forward(net, init, xtr[idx])[1][0][4][0, 0, :2, :2].max() - 1e-9
    layout = Layout(net.spec, mask)
    obj = Objective(net, layout, xtr[idx], ytr[idx], criteria._tempered_cross_entropy)
    theta = layout.flatten(init)
    hess = _dense_hessian(lambda e: complex_step_hvp(obj, theta, e), obj.dim)
    expect = layout.unflatten(theta * (hess @ obj.grad(theta)))
    s = criteria.scores("grasp", task, net, mask, init, seed=3)
    for n in net.spec.prunable_names:
        np.testing.assert_allclose(s[n], expect[n], rtol=0, atol=1e-10 * np.abs(expect[n]).max())


def test_a_loss_without_complex_support_is_refused_with_the_way_out(rng):
    obj, theta = _problem(MLP(3, (), 2, "tanh", "linear"), "mse", rng)

    def real_only(out, y):
        out = np.real(out)
        return float(((out - y) ** 2).mean()), 2 * (out - y) / out.size
    plain = Objective(obj.net, obj.layout, obj.x, obj.y, real_only)
    with pytest.raises(TypeError, match="hvp attribute"):
        plain.hvp(theta, np.ones(obj.dim))
    real_only.hvp = lambda out, y, r: 2 * r / r.size  # the way out: the loss says its own curvature
    np.testing.assert_allclose(Objective(obj.net, obj.layout, obj.x, obj.y, real_only).hvp(theta, np.ones(obj.dim)),
                               obj.hvp(theta, np.ones(obj.dim)), rtol=1e-14)


def test_backprop_refuses_activations_it_has_no_derivative_for():
    """A swish MLP (PPO's paper policy) must not be differentiated as if it were relu."""
    net = MLP(3, (4,), 2, activation="swish")
    params = {k: v.astype(np.float64) for k, v in net.init(0).items()}
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="swish"):
        backprop.forward(net, params, x)
    with pytest.raises(TypeError, match="swish"):
        backprop.r_forward(net, params, params, x)
