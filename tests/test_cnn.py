"""Population CNN: the reference against scipy, the numba conv blocks (dense and sparse tap lists) and the
dense head against the reference, pruned taps without influence, the losses, and cupy against numba."""
import numpy as np
import pytest
from scipy import signal

from esprune.errors import UserError
from esprune.nets import CNN, accuracy, cross_entropy, mnist_cnn
from esprune.nets.cnn import conv_same_reference, max_pool_reference
from esprune.ops import conv
from esprune.params import Layout

import helpers
from helpers import masked_population

SMALL = dict(in_shape=(2, 13, 11), channels=(3, 4), kernel=3, pool=2, out_dim=5)  # odd sizes: floor pooling
# the numba twin computes groups of ops.conv.LANES images: B = 19 gives full groups and a partial one
CASES = [(mnist_cnn, 3, 7), (lambda: CNN(**SMALL, hidden=(6,)), 4, 5), (lambda: CNN(**{**SMALL, "kernel": 5}), 2, 1),
         (lambda: CNN(**{**SMALL, "pool": 3}), 2, 19)]
PATHS = {"dense": 0.0, "sparse": 2.0}  # for the dense layers; conv blocks always walk their tap list


def make(net, sparsity, P, rng):
    return masked_population(net, sparsity, P, rng)


def assert_close(out, ref):
    helpers.assert_close(out, ref, rtol=1e-4)


def test_conv_reference_equals_scipy_correlate2d(rng):
    x = rng.standard_normal((2, 3, 9, 7))
    w = rng.standard_normal((4, 3, 5, 5))
    out = conv_same_reference(x, w)
    for b in range(2):
        for o in range(4):
            want = sum(signal.correlate2d(x[b, c], w[o, c], mode="same", boundary="fill") for c in range(3))
            np.testing.assert_allclose(out[b, o], want, rtol=1e-12, atol=1e-12)


def test_max_pool_reference_by_loops(rng):
    x = rng.standard_normal((1, 2, 5, 7))
    out = max_pool_reference(x, 2)
    assert out.shape == (1, 2, 2, 3)
    for c in range(2):
        for i in range(2):
            for j in range(3):
                assert out[0, c, i, j] == x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max()


def test_mnist_cnn_is_the_papers_network():
    net = mnist_cnn()
    assert net.spec.size == 11274 and net.spec.prunable_size == 11240 and net.flat_dim == 784
    init = net.init(0)
    assert (init["dense_0/b"] == 0).all() and (init["conv_0/b"] >= 0).all() and (init["conv_0/b"] < 0.05).all()
    assert abs(init["conv_1/w"].var() - 1 / (8 * 25)) < 0.2 / (8 * 25)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shared", [True, False])
def test_numba_equals_reference(case, sparsity, path, shared, rng):
    factory, P, B = CASES[case]
    net = factory()
    layout, pop = make(net, sparsity, P, rng)
    x = rng.random((B, *net.in_shape) if shared else (P, B, *net.in_shape)).astype(np.float32)
    ref = net.forward(layout, pop, x, backend="numpy")
    assert ref.shape == (P, B, net.out_dim)
    assert_close(net.forward(layout, pop, x, backend="numba", sparse_below=PATHS[path]), ref)


def test_pruned_taps_have_no_influence(rng):
    """The sparse network equals the dense one whose pruned weights are zero, and ignores their values."""
    net = CNN(**SMALL, hidden=(6,))
    layout, pop = make(net, 0.7, 3, rng)
    dense = Layout(net.spec)
    full = layout.unflatten(pop)
    x = rng.random((4, *net.in_shape)).astype(np.float32)
    sparse_out = net.forward(layout, pop, x, backend="numba")
    np.testing.assert_allclose(sparse_out, net.forward(dense, dense.flatten(full), x, backend="numba"),
                               rtol=1e-5, atol=1e-6)
    noisy = {n: np.where(layout.mask[n][None] if n in layout.mask else True, v, 1e3) for n, v in full.items()}
    np.testing.assert_array_equal(net.forward(layout, layout.flatten(noisy), x, backend="numba"), sparse_out)


def test_cross_entropy_and_accuracy_against_loops(rng):
    logits = rng.standard_normal((3, 6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    ce = cross_entropy(logits, labels)
    for p in range(3):
        want = np.mean([-(logits[p, b, labels[b]] - np.log(np.exp(logits[p, b].astype(np.float64)).sum()))
                        for b in range(6)])
        assert abs(ce[p] - want) < 1e-6
        assert accuracy(logits, labels)[p] == np.mean(logits[p].argmax(1) == labels)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(cross_entropy(logp, labels), ce, rtol=1e-6)


def test_bad_shapes_are_user_errors(rng):
    net = CNN(**SMALL)
    layout = Layout(net.spec)
    with pytest.raises(UserError, match="inputs must have shape"):
        net.forward(layout, np.zeros((2, layout.dim), np.float32), np.zeros((3, 1, 13, 11)), backend="numba")
    with pytest.raises(UserError, match="kernel must be odd"):
        CNN(kernel=4)
    with pytest.raises(UserError, match="shrink"):
        CNN(in_shape=(1, 4, 4), channels=(2, 2, 2))


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
@pytest.mark.parametrize("shared", [True, False])
def test_cupy_equals_numba(cupy_backend, sparsity, shared, rng):
    cp = cupy_backend.xp
    net = CNN(**SMALL, hidden=(6,))
    layout, pop = make(net, sparsity, 3, rng)
    x = rng.random((5, *net.in_shape) if shared else (3, 5, *net.in_shape)).astype(np.float32)
    want = net.forward(layout, pop, x, backend="numba")
    got = net.forward(layout, cp.asarray(pop), cp.asarray(x), backend=cupy_backend)
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.testing.assert_allclose(cp.asnumpy(cross_entropy(got, cp.asarray(np.arange(5) % 5))),
                               cross_entropy(want, np.arange(5) % 5), rtol=1e-4)


def _with_nans(net, layout, pop, x):
    """NaN in a pixel of image 0, a corner pixel of image 1 and in member 1's first conv_1 weight (its taps over
    the zero border too: w · 0 is NaN in the reference)."""
    x, pop = x.copy(), pop.copy()
    x[0, 0, 5, 6] = x[1, 0, 0, 0] = np.nan
    pop[1, layout.segment("conv_1/w").start] = np.nan
    return pop, x


def _features(net, layout, pop, x, be):
    blocks = [(layout.taps(f"conv_{k}/w").arrays(), layout.segment(f"conv_{k}/b").start, net.kernel // 2, net.pool)
              for k in range(len(net.channels))]
    if be.name == "cupy":
        blocks = [([be.xp.asarray(a) for a in taps], *rest) for taps, *rest in blocks]
        x, pop = be.xp.asarray(x), be.xp.asarray(pop)
    return np.swapaxes(be.to_numpy(conv.conv_stack(x[None], pop, blocks, be)), 1, 2)


def test_nan_propagates_as_in_the_reference(cupy_backend, rng):
    """numpy's maximum keeps NaN: a NaN input pixel or weight makes exactly the reference's features NaN on the
    numba twin and on the CUDA kernel (whose fmaxf used to drop it), and NaN logits for those images."""
    from esprune import backend

    net = mnist_cnn()
    layout, pop = make(net, 0.5, 3, rng)
    pop, x = _with_nans(net, layout, pop, rng.random((9, *net.in_shape)).astype(np.float32))
    ref = net.features_reference(layout, pop, x)
    assert np.isnan(ref[1]).all(axis=0).sum() == 49 and not np.isnan(ref[0, 2:]).any()  # member 1: one channel
    for be in (backend.get("numba"), cupy_backend):
        got = _features(net, layout, pop, x, be)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.nanmax(np.abs(ref)))
        logits = be.to_numpy(net.forward(layout, be.xp.asarray(pop), be.xp.asarray(x), backend=be))
        np.testing.assert_array_equal(np.isnan(logits), np.isnan(net.forward(layout, pop, x, backend="numpy")))


@pytest.mark.slow  # compiles a second copy of the conv twin
def test_one_pass_for_few_taps_changes_no_bit(rng, monkeypatch):
    """Channels with 1-4 active taps are summed, pooled, biased and rectified per window in registers
    (ops/conv.py: _taps_pool_strip); the features equal, bit for bit, those of the general path (a pass over
    the accumulator, then the pool), NaN included (a NaN pixel, a NaN weight), on the MNIST CNN and on odd
    image sizes (floor pooling)."""
    import types

    import numba

    from esprune import backend

    general = dict(vars(conv), FUSED_FEW_TAPS=False)
    general["_block"] = numba.njit(types.FunctionType(conv._block.py_func.__code__, general, "_block"))
    stack = numba.njit(parallel=True)(types.FunctionType(conv._conv_stack_numba.py_func.__code__, general, "_stack"))
    be = backend.get("numba")
    for net in (mnist_cnn(), CNN(**SMALL, hidden=(6,))):
        layout, pop = make(net, 0.9, 3, rng)
        pop, x = _with_nans(net, layout, pop, rng.random((19, *net.in_shape)).astype(np.float32))
        per_channel = np.concatenate([np.diff(layout.taps(f"conv_{k}/w").arrays()[0]) for k in range(2)])
        assert ((per_channel > 0) & (per_channel <= 4)).any()  # some channels take the one-pass path
        fused = _features(net, layout, pop, x, be)
        monkeypatch.setattr(conv, "_conv_stack_numba", stack)
        plain = _features(net, layout, pop, x, be)
        monkeypatch.undo()
        np.testing.assert_array_equal(fused, plain)
        assert np.isnan(fused).any() and np.isfinite(fused).any()
