"""Population MLP: the numba dense and sparse paths equal the numpy reference; pruned weights do nothing."""
import numpy as np
import pytest
from scipy import stats

from esprune.errors import UserError
from esprune.nets import MLP
from esprune.ops.dense import fast_tanh
from esprune.params import Layout, Mask

import helpers
from helpers import masked_population

# (network, population, batch): the paper's control policy, a wide MLP (kept small in P and B), a relu net.
CASES = [
    (dict(in_dim=4, hidden=(64, 64), out_dim=2), 6, 8),
    (dict(in_dim=784, hidden=(256, 256), out_dim=10), 3, 33),
    (dict(in_dim=5, hidden=(7,), out_dim=3, activation="relu", head="log_softmax"), 4, 1),
]
PATHS = {"dense": 0.0, "sparse": 2.0}  # sparse_below values that force each path


def make(net, sparsity, P, rng):
    return masked_population(net, sparsity, P, rng)


def assert_close(out, ref):
    """1e-5 relative to the output's scale (float32 sums of up to 784 terms, in another order than BLAS)."""
    helpers.assert_close(out, ref, rtol=1e-5)


@pytest.mark.parametrize("kwargs,P,B", CASES)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shared", [True, False])
def test_numba_equals_reference(kwargs, P, B, sparsity, path, shared, rng):
    net = MLP(**kwargs)
    layout, pop = make(net, sparsity, P, rng)
    x = rng.standard_normal((B, net.sizes[0]) if shared else (P, B, net.sizes[0])).astype(np.float32)
    ref = net.forward(layout, pop, x, backend="numpy")
    assert ref.shape == (P, B, net.sizes[-1])
    assert_close(net.forward(layout, pop, x, backend="numba", sparse_below=PATHS[path]), ref)


def test_reference_is_the_plain_formula(rng):
    net = MLP(3, (4,), 2, activation="tanh", head="softmax")
    layout, pop = make(net, 0.5, 2, rng)
    x = rng.standard_normal((5, 3))
    for p in range(2):
        w = layout.unflatten(pop[p].astype(np.float64))
        logits = np.tanh(x @ w["dense_0/w"] + w["dense_0/b"]) @ w["dense_1/w"] + w["dense_1/b"]
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(net.forward(layout, pop, x, backend="numpy")[p], expected, rtol=1e-6)


@pytest.mark.parametrize("path", PATHS)
def test_pruned_weights_have_no_influence(path, rng):
    """Whatever the pruned entries hold, the masked forward equals the dense forward with them set to 0."""
    net = MLP(6, (16, 16), 3)
    mask = Mask({n: rng.random(net.spec[n].shape) < 0.4 for n in net.spec.prunable_names}, net.spec)
    masked, dense = Layout(net.spec, mask), Layout(net.spec)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    zeroed = {n: np.where(mask[n], v, 0)[None] if n in mask else v[None] for n, v in net.init(0).items()}
    expected = net.forward(dense, dense.flatten(zeroed), x, backend="numba", sparse_below=PATHS[path])
    for _ in range(2):
        noisy = {n: np.where(mask[n][None], v, 10 * rng.standard_normal(v.shape)).astype(np.float32) if n in mask
                 else v for n, v in zeroed.items()}
        assert not np.array_equal(dense.flatten(noisy), dense.flatten(zeroed))
        out = net.forward(masked, masked.flatten(noisy), x, backend="numba", sparse_below=PATHS[path])
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_init_matches_lecun_truncated_normal_and_uniform_bias():
    net = MLP(400, (300,), 10)
    params = net.init(3)
    w = params["dense_0/w"].astype(np.float64)
    assert abs(w.var() * 400 - 1) < 0.02  # variance 1/fan_in after truncation
    assert np.abs(w).max() <= 2 / np.sqrt(400) / 0.87962566103423978 + 1e-6
    b = params["dense_0/b"]
    assert b.min() >= 0 and b.max() < 0.05 and stats.kstest(b / 0.05, "uniform").pvalue > 1e-3
    assert all(np.array_equal(params[k], net.init(3)[k]) for k in params)
    assert not np.array_equal(params["dense_0/w"], net.init(4)["dense_0/w"])
    assert not MLP(4, (8,), 2, out_bias="zeros").init(0)["dense_1/b"].any()


def test_fast_tanh_is_within_a_few_ulp():
    import numba

    apply = numba.njit(lambda a: np.array([fast_tanh(v) for v in a], dtype=np.float32))
    x = np.concatenate([np.linspace(-20, 20, 400001, dtype=np.float32), np.float32([0.0, 1e-30, -1e-7])])
    np.testing.assert_allclose(apply(x), np.tanh(x.astype(np.float64)), rtol=5e-7, atol=1e-38)


@pytest.mark.parametrize("bad", [dict(activation="sigmoid"), dict(head="max"), dict(hidden=(0,))])
def test_bad_network_is_a_user_error(bad):
    with pytest.raises(UserError):
        MLP(**(dict(in_dim=3, out_dim=2) | bad))


def test_bad_shapes_are_user_errors(rng):
    net = MLP(3, (4,), 2)
    layout, pop = make(net, 0.0, 2, rng)
    with pytest.raises(UserError, match="population"):
        net.forward(layout, pop[:, :-1], np.zeros((1, 3)), backend="numba")
    with pytest.raises(UserError, match="inputs"):
        net.forward(layout, pop, np.zeros((1, 4)), backend="numba")
    with pytest.raises(UserError, match="different network"):
        net.forward(Layout(MLP(3, (5,), 2).spec), pop, np.zeros((1, 3)), backend="numba")


@pytest.mark.parametrize("kwargs,P,B", CASES)
@pytest.mark.parametrize("sparsity", [0.0, 0.9])
@pytest.mark.parametrize("path", PATHS)
def test_cupy_equals_numba(cupy_backend, kwargs, P, B, sparsity, path, rng):
    net = MLP(**kwargs)
    layout, pop = make(net, sparsity, P, rng)
    x = rng.standard_normal((P, B, net.sizes[0])).astype(np.float32)
    cpu = net.forward(layout, pop, x, backend="numba", sparse_below=PATHS[path])
    gpu = net.forward(layout, cupy_backend.asarray(pop), cupy_backend.asarray(x), backend=cupy_backend,
                      sparse_below=PATHS[path])
    assert_close(cupy_backend.to_numpy(gpu), cpu)
