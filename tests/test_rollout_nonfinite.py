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
def test_nonfinite_parameters_give_one_return_on_every_path(name, cupy_backend):
    task = tasks.make(name, episodes=2)
    task.max_steps = HORIZON
    nan_returns = 0
    for case in range(CASES):
        activation = ("tanh", "relu")[case % 2]
        net, layout, pop = _population(task, activation, seed=1000 * NAMES.index(name) + case)
        resets = task.resets(case, 0, 2)
        ref = task.rollout_reference(net, layout, pop, resets)
        numba_ = _returns(task, net, layout, pop, resets, "numba")
        kernel = _returns(task, net, layout, cupy_backend.asarray(pop), resets, cupy_backend)
        np.testing.assert_array_equal(numba_, ref, err_msg=f"numba twin, case {case}, pop {pop.tolist()}")
        np.testing.assert_array_equal(kernel, ref, err_msg=f"CUDA kernel, case {case}, pop {pop.tolist()}")
        assert np.isfinite(ref[0]).all()  # the control member
        nan_returns += np.isnan(ref).sum()
    assert nan_returns > 0 or not task.continuous  # the draws reach a NaN action


GYM_CASES = 6  # draws per environment replayed in Gymnasium


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_member_earns_gymnasiums_return(name):
    """Gymnasium steps the episode from the same start state, the policy choosing each action from Gymnasium's
    own observation by esprune's rule (argmax, first NaN; raw output for continuous actions, NaN included); the
    return equals the reference's, NaN where it is NaN."""
    gym = pytest.importorskip("gymnasium")
    task = tasks.make(name, episodes=2)
    task.max_steps = HORIZON
    genv = gym.make(name).unwrapped
    for case in range(GYM_CASES):
        net, layout, pop = _population(task, ("tanh", "relu")[case % 2], seed=1000 * NAMES.index(name) + case)
        resets = task.resets(case, 0, 2)
        ref = task.rollout_reference(net, layout, pop, resets)
        p = 1 + case % (len(pop) - 1)  # a member holding non-finite values
        genv.reset(seed=0)
        genv.state = np.asarray(resets[0], dtype=np.float32 if name == "MountainCarContinuous-v0" else np.float64)
        obs, total = _gym_obs(genv, name), 0.0
        for _ in range(HORIZON):
            out = net.forward(layout, pop[p:p + 1], np.asarray(obs, np.float32)[None, None], backend="numba")[0, 0]
            action = np.array([out[0]], np.float32) if task.continuous else int(np.argmax(out))
            obs, reward, terminated, _, _ = genv.step(action)
            total += reward
            if terminated:
                break
        np.testing.assert_array_equal(total, ref[p, 0], err_msg=f"case {case}, member {p}")


def _gym_obs(genv, name):
    """The observation Gymnasium would return for its current state (its environments compute it in step)."""
    s = genv.state
    if name == "Acrobot-v1":
        return np.array([np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], dtype=np.float32)
    if name == "Pendulum-v1":
        return np.array([np.cos(s[0]), np.sin(s[0]), s[1]], dtype=np.float32)
    return np.array(s, dtype=np.float32)
