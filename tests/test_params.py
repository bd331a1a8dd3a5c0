"""ParamSpec, Mask and Layout: round trips at any mask, counts, and the column index the kernels read."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esprune.errors import UserError
from esprune.params import Layout, Mask, ParamSpec

SPEC = ParamSpec([("conv_0/w", (3, 2, 2), True), ("conv_0/b", (2,), False),
                  ("dense_0/w", (4, 5), True), ("dense_0/b", (5,), False)])


def random_params(spec, rng, lead=()):
    return {t.name: rng.standard_normal(lead + t.shape).astype(np.float32) for t in spec}


def random_mask(spec, rng, density):
    return Mask({n: rng.random(spec[n].shape) < density for n in spec.prunable_names}, spec)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), density=st.floats(0.0, 1.0), pop=st.integers(0, 3))
def test_round_trip_at_any_mask(seed, density, pop):
    rng = np.random.default_rng(seed)
    mask = random_mask(SPEC, rng, density)
    layout = Layout(SPEC, mask)
    lead = (pop,) if pop else ()
    params = random_params(SPEC, rng, lead)
    theta = layout.flatten(params)
    assert theta.shape == lead + (layout.dim,)
    back = layout.unflatten(theta)
    for t in SPEC:
        keep = mask[t.name] if t.prunable else np.ones(t.shape, bool)
        np.testing.assert_array_equal(back[t.name], np.where(keep, params[t.name], 0))
    np.testing.assert_array_equal(layout.flatten(back), theta)


def test_flat_order_is_active_weights_in_c_order_then_bias():
    mask = Mask({"conv_0/w": np.arange(12).reshape(3, 2, 2) % 3 == 0, "dense_0/w": np.eye(4, 5, dtype=bool)}, SPEC)
    layout = Layout(SPEC, mask)
    params = {t.name: np.arange(t.size, dtype=np.float32).reshape(t.shape) + 100 * i for i, t in enumerate(SPEC)}
    expected = [0, 3, 6, 9, 100, 101, 200, 206, 212, 218, 300, 301, 302, 303, 304]
    assert layout.flatten(params).tolist() == expected
    assert layout.dim == 15 and layout.segment("dense_0/w") == slice(6, 10)


def test_mask_counts():
    mask = Mask({"conv_0/w": np.zeros((3, 2, 2), bool), "dense_0/w": np.ones((4, 5), bool)}, SPEC)
    assert mask.summary() == {"total": 39, "prunable": 32, "pruned": 12, "kept": 20, "active": 27,
                              "sparsity": 12 / 32}
    dense = Mask.dense(SPEC)
    assert dense.sparsity() == 0.0 and Layout(SPEC).dim == SPEC.size == 39
    assert set(dense.keys()) == {"conv_0/w", "dense_0/w"} and dict(dense.items())["conv_0/w"].all()


def test_mask_must_match_the_network():
    with pytest.raises(UserError, match="do not match"):
        Mask({"conv_0/w": np.ones((3, 2, 2), bool)}, SPEC)
    with pytest.raises(UserError, match="shape"):
        Mask({"conv_0/w": np.ones((3, 2, 2), bool), "dense_0/w": np.ones((5, 4), bool)}, SPEC)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), density=st.floats(0.0, 1.0))
def test_column_index_lists_each_active_weight_once(seed, density):
    rng = np.random.default_rng(seed)
    layout = Layout(SPEC, random_mask(SPEC, rng, density))
    theta = rng.standard_normal(layout.dim).astype(np.float32)
    w = layout.unflatten(theta)["dense_0/w"]
    cols = layout.columns("dense_0/w")
    rebuilt = np.zeros_like(w)
    for j in range(cols.n_out):
        ks = range(cols.colptr[j], cols.colptr[j + 1])
        assert list(cols.rows[list(ks)]) == sorted(cols.rows[list(ks)])
        for k in ks:
            rebuilt[cols.rows[k], j] = theta[cols.offset + cols.src[k]]
    np.testing.assert_array_equal(rebuilt, w)
    assert cols.nnz == layout.mask["dense_0/w"].sum()
