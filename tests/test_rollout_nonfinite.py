"""Non-finite values inside a rollout (issue #15): whatever a member's parameters hold (NaN, ±inf, 1e38 at any
position, weights or biases), the numpy reference, the numba twin and the CUDA kernel (host emulation here, the
device on a GPU) give the same return per member and episode, NaN where the return is NaN; and that return is
Gymnasium's for the same actions from the same start state.

The rule they share (``esprune/tasks/control.py``): a discrete action is numpy's argmax of the outputs, so the
first NaN output wins; a continuous action is the raw float32 output, and a NaN action goes into the
environment as NaN (Gymnasium's clips keep NaN), so its return is NaN."""
import numpy as np
import pytest

from esprune import tasks
from esprune.nets import MLP
from esprune.params import Layout, Mask
from esprune.tasks.control import ENVIRONMENTS

NAMES = list(ENVIRONMENTS)
VALUES = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38], dtype=np.float32)
CASES = 24  # random draws per environment
HORIZON = 40  # steps per episode: enough for NaN to reach the actions, short enough for the Python reference


def _population(task, activation, seed, P=4):
    """A small policy (pruned middle layer) and ``P`` members, each with 1–3 non-finite or huge entries at
    random positions (member 0 stays finite: the control)."""
    rng = np.random.default_rng(seed)
    net = MLP(task.obs_dim, (5, 6), task.act_dim, activation=activation)
    masks = {n: np.ones(net.spec[n].shape, bool) for n in net.spec.prunable_names}
    masks["dense_1/w"] = rng.random(net.spec["dense_1/w"].shape) < 0.6
    layout = Layout(net.spec, Mask(masks, net.spec))
    pop = (layout.flatten(net.init(seed))[None] + rng.standard_normal((P, layout.dim))).astype(np.float32)
    for p in range(1, P):
        at = rng.choice(layout.dim, size=rng.integers(1, 4), replace=False)
        pop[p, at] = rng.choice(VALUES, size=at.size)
    return net, layout, pop


def _returns(task, net, layout, pop, resets, backend):
    return task._returns(net, layout, pop, resets, backend)


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_parameters_give_one_return_on_every_path(name, host_device):
    task = tasks.make(name, episodes=2)
    task.max_steps = HORIZON
    for case in range(CASES):
        activation = ("tanh", "relu")[case % 2]
        net, layout, pop = _population(task, activation, seed=1000 * NAMES.index(name) + case)
        resets = task.resets(case, 0, 2)
        ref = task.rollout_reference(net, layout, pop, resets)
        numba_ = _returns(task, net, layout, pop, resets, "numba")
        host = _returns(task, net, layout, pop, resets, "cupy")
        np.testing.assert_array_equal(numba_, ref, err_msg=f"numba twin, case {case}, pop {pop.tolist()}")
        np.testing.assert_array_equal(host, ref, err_msg=f"CUDA kernel, case {case}, pop {pop.tolist()}")
