"""The gradient-descent reference: backprop against finite differences, curvature against known Hessians,
optimizers against their closed forms, and the trainers against the paper's targets."""
import time

import numpy as np
import pytest

from esprune import tasks
from esprune.gd import backprop, optim
from esprune.gd.objective import Objective, hessian_vector_product
from esprune.gd.ppo import PPO
from esprune.gd.supervised import Supervised
from esprune.nets import CNN, MLP, mnist_cnn
from esprune.params import Layout, Mask

NETS = {
    "mlp-tanh-linear": lambda: MLP(5, (7, 6), 3, "tanh", "linear"),
    "mlp-relu-logsoftmax": lambda: MLP(5, (7, 6), 4, "relu", "log_softmax"),
    "mlp-tanh-softmax": lambda: MLP(5, (6,), 3, "tanh", "softmax"),
    "mlp-relu-tanh": lambda: MLP(5, (6,), 3, "relu", "tanh"),
    "cnn-relu-logsoftmax": lambda: CNN((2, 9, 7), (3, 4), 3, 2, (5,), 4, "relu", "log_softmax"),
    "cnn-tanh-linear": lambda: CNN((2, 9, 7), (3,), 3, 2, (), 4, "tanh", "linear"),
}


def _problem(net, loss, rng, sparsity=0.4, batch=6):
    mask = Mask({n: rng.random(net.spec[n].shape) >= sparsity for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    shape = (batch, *(net.in_shape if isinstance(net, CNN) else (net.sizes[0],)))
    out_dim = net.out_dim if isinstance(net, CNN) else net.sizes[-1]
    x = rng.standard_normal(shape)
    y = rng.integers(0, out_dim, batch) if loss == "cross_entropy" else rng.standard_normal((batch, out_dim))
    theta = layout.flatten({k: v.astype(np.float64) for k, v in net.init(1).items()})
    theta = theta + 0.3 * rng.standard_normal(layout.dim)
    return Objective(net, layout, x, y, loss), theta


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("name", list(NETS))
def test_gradient_equals_central_differences(name, loss, rng):
    obj, theta = _problem(NETS[name](), loss, rng)
    value, grad = obj.value_and_grad(theta)
    assert value == pytest.approx(obj.value(theta), rel=1e-12)
    h = 1e-6
    fd = np.array([(obj.value(theta + h * e) - obj.value(theta - h * e)) / (2 * h) for e in np.eye(obj.dim)])
    assert np.abs(grad - fd).max() <= 1e-6 * np.abs(fd).max()


def test_forward_matches_the_population_oracle(rng):
    for make in NETS.values():
        net = make()
        obj, theta = _problem(net, "mse", rng)
        out, _ = backprop.forward(net, obj.layout.unflatten(theta), obj.x)
        ref = net.forward_reference(obj.layout, theta[None], obj.x)[0]  # float32 result of a float64 pass
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_pruned_weights_get_no_gradient_and_stay_zero(rng):
    net = mnist_cnn()
    obj, theta = _problem(net, "cross_entropy", rng, sparsity=0.8, batch=4)
    full = obj.layout.unflatten(obj.grad(theta))
    for name in net.spec.prunable_names:
        assert np.all(full[name][~obj.layout.mask[name]] == 0)
    # and a whole-network gradient (no mask) is nonzero at those positions, so the zeros are the mask's doing
    dense = Layout(net.spec)
    g_dense = dense.unflatten(Objective(net, dense, obj.x, obj.y).grad(dense.flatten(obj.layout.unflatten(theta))))
    assert np.count_nonzero(g_dense["conv_1/w"][~obj.layout.mask["conv_1/w"]]) > 0


def test_hvp_of_a_quadratic_is_its_hessian(rng):
    d = 30
    a = rng.standard_normal((d, d))
    hess = a @ a.T + np.diag(rng.uniform(0, 5, d))
    b = rng.standard_normal(d)
    theta, v = 10 * rng.standard_normal(d), rng.standard_normal(d)
    hv = hessian_vector_product(lambda t: hess @ t + b, theta, v)
    np.testing.assert_allclose(hv, hess @ v, rtol=1e-8, atol=1e-8 * np.abs(hess @ v).max())


def test_hvp_of_a_linear_model_is_its_closed_form_hessian(rng):
    """MSE of a masked linear layer: H = 2/(B·K) · [XᵀX ⊗ I, X̄ ⊗ I; ·, B·I] restricted to active entries."""
    B, n_in, K = 20, 6, 3
    net = MLP(n_in, (), K, "tanh", "linear")
    obj, theta = _problem(net, "mse", rng, sparsity=0.3, batch=B)
    x = obj.x
    h_ww = np.kron(x.T @ x, np.eye(K))
    h_wb = np.kron(x.sum(0)[:, None], np.eye(K))
    full = 2 / (B * K) * np.block([[h_ww, h_wb], [h_wb.T, B * np.eye(K)]])
    active = np.concatenate([obj.layout.mask["dense_0/w"].reshape(-1), np.ones(K, bool)])
    hess = full[np.ix_(active, active)]
    for _ in range(3):
        v = rng.standard_normal(obj.dim)
        np.testing.assert_allclose(obj.hvp(theta, v), hess @ v, rtol=1e-6, atol=1e-7)


def test_adam_first_step_is_lr_times_sign_and_sgd_momentum_sums():
    adam = optim.Adam(3, lr=0.1)
    theta = np.zeros(3)
    theta = adam.step(theta, np.array([2.0, -0.5, 1e-3]))
    np.testing.assert_allclose(theta, [-0.1, 0.1, -0.1 * 1e-3 / (1e-3 + 1e-8)])
    sgd = optim.SGD(1, lr=0.5, momentum=0.9)
    t = np.zeros(1)
    for _ in range(3):
        t = sgd.step(t, np.ones(1))
    assert t[0] == pytest.approx(-0.5 * (1 + 1.9 + 2.71))


def test_adam_minimizes_a_badly_scaled_quadratic():
    scales = np.array([1.0, 100.0])
    adam, theta = optim.Adam(2, lr=0.05), np.array([3.0, -2.0])
    for _ in range(2000):
        theta = adam.step(theta, scales * theta)
    assert np.abs(theta).max() < 1e-3


@pytest.mark.slow
def test_ppo_solves_cartpole_dense():
    task = tasks.make("CartPole-v1")
    net = task.default_net()
    layout = Layout(net.spec)
    start = time.perf_counter()
    # stop only well above 475: a policy that just reaches 475 on the 32 evaluation episodes may not on others
    result = PPO(timesteps=200_000, target=495.0).train(task, net, layout, layout.flatten(net.init(0)), seed=0)
    final = float(task.score(net, layout, result.final[None].astype(np.float32), seed=123, episodes=32)[0])
    print(f"PPO CartPole: {result.steps} updates, evals {result.evals}, {time.perf_counter() - start:.1f} s")
    assert result.best_score >= 475 and final >= 475


def test_ppo_runs_on_a_continuous_task():
    task = tasks.make("Pendulum-v1")
    net = task.default_net()
    layout = Layout(net.spec)
    result = PPO(timesteps=2048, n_steps=128, eval_every=1, eval_episodes=2).train(
        task, net, layout, layout.flatten(net.init(0)), seed=0)
    assert result.steps == 2 and len(result.evals) == 2 and np.isfinite(result.best_score)
    assert not np.allclose(result.final, layout.flatten(net.init(0)))


@pytest.mark.slow
@pytest.mark.data
def test_adam_trains_the_paper_cnn_on_fashion_mnist(data_dir):
    task = tasks.make("fashion_mnist", data_dir=str(data_dir))
    net = task.default_net()
    layout = Layout(net.spec)
    start = time.perf_counter()
    result = Supervised(epochs=3).train(task, net, layout, layout.flatten(net.init(0)), seed=0)
    print(f"Fashion-MNIST GD: evals {result.evals}, {time.perf_counter() - start:.1f} s")
    assert result.best_score >= 0.85
