"""The fused rollout (esprune/ops/rollout.py) against the Python-stepped reference, on the paths the default
tests do not reach: more episodes than lanes (a lane takes the member's next episode), relu policies, layers
whose input count is not a multiple of the four-row block, a mix of full and pruned layers; and the index
builders (esprune/ops/index.py) against the masks they encode."""
import numpy as np
import pytest

from esprune import tasks
from esprune.nets import MLP
from esprune.ops import index
from esprune.ops.rollout import LANES
from esprune.params import Layout, Mask


def _population(net, keep, rng, P, scale):
    mask = Mask({n: rng.random(net.spec[n].shape) < keep[n] for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = layout.flatten(net.init(1))[None] + scale * rng.standard_normal((P, layout.dim))
    return layout, pop.astype(np.float32)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_fused_rollout_with_more_episodes_than_lanes_equals_reference(name, activation, rng):
    episodes = 2 * LANES + 3  # every lane is refilled, the last ones only once
    task = tasks.make(name, episodes=episodes)
    net = MLP(task.obs_dim, (6, 9), task.act_dim, activation=activation)  # 6 inputs: one block of 4 and 2 single rows
    keep = {"dense_0/w": 1.0, "dense_1/w": 0.6, "dense_2/w": 1.0}  # full, pruned, full
    layout, pop = _population(net, keep, rng, 7, scale=1.5)
    assert layout.columns("dense_1/w").density < 1.0 and layout.columns("dense_2/w").full
    fused = task.evaluate(net, layout, pop, seed=3, generation=1, backend="numba")
    ref = task.evaluate(net, layout, pop, seed=3, generation=1, backend="numpy")
    np.testing.assert_array_equal(fused, ref)
    assert fused.max() > fused.min()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_fused_rollout_of_a_fully_dense_policy_equals_reference(name, activation, rng):
    """Every weight active: the lane-major path (ops/rollout.py: _policy_dense), whose output blocks are 64,
    16, 2 and 1 wide; 83 = 64 + 16 + 2 + 1 hidden units reach each of them, as do CartPole's 2 and Pendulum's
    1 outputs. A member with a NaN, an inf and a huge weight checks that those propagate as in the reference."""
    task = tasks.make(name, episodes=2 * LANES + 3)
    net = MLP(task.obs_dim, (83, 19), task.act_dim, activation=activation)
    layout, pop = _population(net, {n: 1.0 for n in net.spec.prunable_names}, rng, 5, scale=0.3)
    assert all(layout.columns(n).full for n in net.spec.prunable_names)
    pop[4, rng.choice(layout.dim, 3, replace=False)] = (np.nan, np.inf, 1e38)
    fused = task.evaluate(net, layout, pop, seed=3, generation=1, backend="numba")
    ref = task.evaluate(net, layout, pop, seed=3, generation=1, backend="numpy")
    np.testing.assert_array_equal(fused, ref)
    assert np.ptp(fused[np.isfinite(fused)]) > 0


def test_fused_rollout_on_an_empty_layer_equals_reference(rng):
    """A layer with no active weight still adds its bias (every output's sum is 0)."""
    task = tasks.make("CartPole-v1", episodes=3)
    net = task.default_net()
    layout, pop = _population(net, {"dense_0/w": 1.0, "dense_1/w": 0.0, "dense_2/w": 0.5}, rng, 5, scale=1.0)
    np.testing.assert_array_equal(task.evaluate(net, layout, pop, seed=0, backend="numba"),
                                  task.evaluate(net, layout, pop, seed=0, backend="numpy"))


def test_index_builders_encode_the_mask(rng):
    shape = (7, 5)
    keep = rng.random(shape) < 0.4
    positions = np.flatnonzero(keep)
    offset = 11
    theta = np.zeros(offset + positions.size)
    theta[offset:] = rng.standard_normal(positions.size)
    dense = np.zeros(shape)
    dense.reshape(-1)[positions] = theta[offset:]

    rows = index.rows(positions, shape, offset)
    by_rows = np.zeros(shape)
    for q in range(rows.nnz):
        by_rows[rows.rows[q], rows.cols[q]] = theta[rows.offset + q]
    np.testing.assert_array_equal(by_rows, dense)
    order = rows.rows.astype(np.int64) * shape[1] + rows.cols  # row-major: rows ascend, columns within a row
    assert np.all(np.diff(order) > 0)

    cols = index.columns(positions, shape, offset)
    by_cols = np.zeros(shape)
    for j in range(shape[1]):
        for k in range(cols.colptr[j], cols.colptr[j + 1]):
            by_cols[cols.rows[k], j] = theta[cols.offset + cols.src[k]]
    np.testing.assert_array_equal(by_cols, dense)

    conv_shape = (3, 2, 3, 3)
    conv_keep = rng.random(conv_shape) < 0.5
    taps = index.taps(np.flatnonzero(conv_keep), conv_shape, offset)
    rebuilt = np.zeros(conv_shape, dtype=bool)
    for co in range(conv_shape[0]):
        for k in range(taps.ptr[co], taps.ptr[co + 1]):
            rebuilt[co, taps.ci[k], taps.dy[k], taps.dx[k]] = True
            assert taps.src[k] == offset + k
    np.testing.assert_array_equal(rebuilt, conv_keep)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_tasks_count_the_env_steps_they_take(backend, rng):
    """CartPole's return is its episode length, so the steps a call took are the returns' sum."""
    task = tasks.make("CartPole-v1", episodes=LANES + 5)
    net = task.default_net()
    layout, pop = _population(net, {"dense_0/w": 1.0, "dense_1/w": 0.5, "dense_2/w": 1.0}, rng, 6, scale=1.0)
    fitness = task.evaluate(net, layout, pop, seed=1, backend=backend)
    assert task.env_steps == round(fitness.sum() * task.episodes) > 6 * task.episodes
