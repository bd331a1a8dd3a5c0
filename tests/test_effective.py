"""Effective sparsity (Vysogorets & Kempe 2023): the weights on some input→output path, against a brute-force
enumeration of every path, and against the networks themselves (with zero biases, the effective weights alone
compute exactly what the whole masked network computes; a disconnected network is constant in its input)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esprune.effective import effective
from esprune.nets import CNN, MLP
from esprune.params import Layout, Mask


def random_mask(spec, rng, density):
    return Mask({n: rng.random(spec[n].shape) < density for n in spec.prunable_names}, spec)


# ---------------------------------------------------------------------------------------------- the reference
def path_weights(edges, sources, sinks):
    """Every weight on some source→sink path, by enumerating the paths one by one (depth first). ``edges``: a
    list of ``(from node, to node, weight id or None)``; a None edge is structure (a channel's flattened
    positions), not a weight."""
    out = {}
    for a, b, w in edges:
        out.setdefault(a, []).append((b, w))
    found = set()

    def walk(node, taken):
        if node in sinks:
            found.update(w for w in taken if w is not None)
        for nxt, w in out.get(node, ()):
            walk(nxt, taken + [w])
    for s in sources:
        walk(s, [])
    return found


def mlp_graph(net, mask):
    edges = [((k, i), (k + 1, j), (f"dense_{k}/w", (i, j)))
             for k in range(net.n_layers) for i, j in zip(*np.nonzero(mask[f"dense_{k}/w"]))]
    L = net.n_layers
    return edges, {(0, i) for i in range(net.sizes[0])}, {(L, j) for j in range(net.sizes[-1])}


def cnn_graph(net, mask):
    """The channel graph: a node per (block, channel), one edge per active tap; each channel of the last block
    fans out to its flattened positions (structure edges), then the dense layers by their active weights."""
    edges = []
    for k in range(len(net.channels)):
        m = mask[f"conv_{k}/w"]
        edges += [(("c", k, ci), ("c", k + 1, co), (f"conv_{k}/w", (co, ci, y, x))) for co, ci, y, x in zip(*np.nonzero(m))]
    K, C = len(net.channels), net.channels[-1]
    per = net.flat_dim // C
    edges += [(("c", K, p // per), ("d", 0, p), None) for p in range(net.flat_dim)]
    for k in range(net.dense.n_layers):
        edges += [(("d", k, i), ("d", k + 1, j), (f"dense_{k}/w", (i, j))) for i, j in zip(*np.nonzero(mask[f"dense_{k}/w"]))]
    return edges, {("c", 0, c) for c in range(net.in_shape[0])}, {("d", net.dense.n_layers, j) for j in range(net.out_dim)}


def as_set(eff_mask):
    return {(n, tuple(int(i) for i in idx)) for n in eff_mask for idx in zip(*np.nonzero(eff_mask[n]))}


NETS = {"mlp": MLP(3, (4, 3), 2), "mlp1": MLP(2, (), 3), "cnn": CNN((2, 4, 4), (2, 3), 3, 2, (), 2),
        "cnn-hidden": CNN((1, 4, 4), (2,), 3, 2, (3,), 2)}


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), density=st.floats(0.0, 0.7), which=st.sampled_from(sorted(NETS)))
def test_effective_weights_are_those_on_some_input_output_path(seed, density, which):
    net = NETS[which]
    mask = random_mask(net.spec, np.random.default_rng(seed), density)
    graph = cnn_graph if isinstance(net, CNN) else mlp_graph
    expected = path_weights(*graph(net, mask))
    eff = effective(net.spec, mask)
    assert as_set(eff.mask) == expected
    assert eff.count == len(expected) and eff.disconnected == (not expected)
    assert eff.remaining == len(expected) / net.spec.prunable_size
    for name in net.spec.prunable_names:                                   # a subset of the mask, counted per layer
        assert not (eff.mask[name] & ~mask[name]).any()
        assert eff.layers[name] == (mask[name].size, int(mask[name].sum()), int(eff.mask[name].sum()))
    assert eff.empty == [n[:-2] for n in net.spec.prunable_names if not mask[n].any()]


@pytest.mark.parametrize("which", sorted(NETS))
@pytest.mark.parametrize("density", [0.15, 0.3, 0.6])
def test_with_zero_biases_the_effective_weights_alone_compute_the_same_outputs(which, density):
    """A unit no input reaches outputs act(0) = 0 when biases are 0 (tanh, relu, max-pool of 0), and a unit that
    reaches no output changes nothing: so zeroing every non-effective weight changes no output at any input."""
    net = NETS[which]
    rng = np.random.default_rng(7)
    for trial in range(5):
        mask = random_mask(net.spec, rng, density)
        eff = effective(net.spec, mask)
        params = {n: (rng.standard_normal(t.shape) if t.prunable else np.zeros(t.shape)) for n, t in
                  ((t.name, t) for t in net.spec)}
        dense = Layout(net.spec)
        shape = (5, *net.in_shape) if isinstance(net, CNN) else (5, net.sizes[0])
        x = rng.standard_normal(shape)
        outputs = []
        for m in (mask, eff.mask):
            theta = dense.flatten({n: (v * m[n] if n in m else v) for n, v in params.items()})
            outputs.append(net.forward_reference(dense, theta[None], x))
        np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


def test_an_empty_middle_layer_disconnects_the_ticket():
    """The demo's iteration 12 (CartPole 4→64→64→2): 62 weights left in the first layer, none after it."""
    net = MLP(4, (64, 64), 2)
    rng = np.random.default_rng(0)
    first = np.zeros((4, 64), bool)
    first.flat[rng.choice(256, 62, replace=False)] = True
    mask = Mask({"dense_0/w": first, "dense_1/w": np.zeros((64, 64), bool), "dense_2/w": np.zeros((64, 2), bool)},
                net.spec)
    eff = effective(net.spec, mask)
    assert eff.disconnected and eff.count == 0 and eff.remaining == 0.0 and eff.kept == 62
    assert eff.empty == ["dense_1", "dense_2"]
    assert eff.to_dict()["layers"]["dense_0"] == {"size": 256, "kept": 62, "effective": 0}
    params = net.init(0)                                                   # with its biases: constant in the input
    layout = Layout(net.spec, mask)
    out = net.forward_reference(layout, layout.flatten(params)[None], rng.standard_normal((16, 4)))
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))


def test_a_dead_end_units_weights_are_not_effective():
    """2→2→1: hidden unit 1 gets input but feeds no output, so its incoming weights are not effective; unit 0
    carries the one path."""
    net = MLP(2, (2,), 1)
    mask = Mask({"dense_0/w": np.array([[1, 1], [0, 1]], bool), "dense_1/w": np.array([[1], [0]], bool)}, net.spec)
    eff = effective(net.spec, mask)
    assert eff.mask["dense_0/w"].tolist() == [[True, False], [False, False]]
    assert eff.mask["dense_1/w"].tolist() == [[True], [False]]
    assert not eff.disconnected and eff.count == 2 and eff.empty == []
    # and a unit that no input reaches: its outgoing weight is not effective either
    mask = Mask({"dense_0/w": np.array([[1, 0], [0, 0]], bool), "dense_1/w": np.array([[1], [1]], bool)}, net.spec)
    assert effective(net.spec, mask).mask["dense_1/w"].tolist() == [[True], [False]]


def test_cnn_channels_a_dead_channel_and_the_flatten():
    """mnist-sized CNN: conv_0 channel 3 receives no tap, so conv_1's taps reading it and nothing else of it
    count; a conv_1 channel with no dense weight out of its flattened block is a dead end."""
    net = CNN((1, 28, 28), (8, 16), 5, 2, (), 10, "relu", "log_softmax")
    mask = dict(Mask.dense(net.spec).items())
    mask = {n: m.copy() for n, m in mask.items()}
    mask["conv_0/w"][3] = False                                            # channel 3 of conv_0: no input
    mask["dense_0/w"][5 * 49:6 * 49] = False                               # channel 5 of conv_1: feeds nothing
    eff = effective(net.spec, Mask(mask, net.spec))
    assert eff.mask["conv_0/w"].sum() == 7 * 25
    assert not eff.mask["conv_1/w"][:, 3].any() and not eff.mask["conv_1/w"][5].any()
    assert eff.mask["conv_1/w"].sum() == 15 * 7 * 25
    assert eff.mask["dense_0/w"].sum() == 15 * 49 * 10
    assert eff.layers["conv_1/w"] == (16 * 8 * 25, 16 * 8 * 25, 15 * 7 * 25)


def test_a_network_that_is_not_a_chain_of_layers_is_refused():
    from esprune.params import ParamSpec

    with pytest.raises(ValueError, match="does not follow"):
        effective(ParamSpec([("dense_0/w", (3, 4), True), ("dense_1/w", (5, 2), True)]),
                  {"dense_0/w": np.ones((3, 4), bool), "dense_1/w": np.ones((5, 2), bool)})
