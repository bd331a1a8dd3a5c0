"""Every classic-control environment against Gymnasium (random transitions, whole fixed-action episodes), the
numba twin against the numpy reference, and the fused rollout against the Python-stepped rollout."""
import math

import numpy as np
import pytest

from esprune import noise, tasks
from esprune.errors import ConfigError
from esprune.params import Layout, Mask
from esprune.tasks.control import ENVIRONMENTS

gym = pytest.importorskip("gymnasium")
NAMES = list(ENVIRONMENTS)


def random_states(name, rng, n):
    """States over (and a little beyond) the reachable box, with wall and goal cases for the cars."""
    if name == "CartPole-v1":
        return rng.uniform([-2.6, -3, -0.25, -3], [2.6, 3, 0.25, 3], (n, 4))
    if name == "Acrobot-v1":
        return rng.uniform([-math.pi, -math.pi, -4 * math.pi, -9 * math.pi],
                           [math.pi, math.pi, 4 * math.pi, 9 * math.pi], (n, 4))
    if name == "Pendulum-v1":
        return rng.uniform([-3 * math.pi, -8], [3 * math.pi, 8], (n, 2))
    states = rng.uniform([-1.2, -0.07], [0.6, 0.07], (n, 2))
    states[: n // 10, 0] = -1.2 + rng.uniform(0, 0.01, n // 10)  # at the left wall
    states[n // 10: n // 5, 0] = rng.uniform(0.4, 0.55, n // 10)  # around the goal
    if name == "MountainCarContinuous-v0":
        states = states.astype(np.float32).astype(np.float64)
    return states


def random_actions(env, rng, n):
    if env.CONTINUOUS:  # beyond the clip too
        return rng.uniform(-3.0, 3.0, n).astype(np.float32)
    return rng.integers(0, env.N_ACTIONS, n)


def gym_state(name, state):
    return np.asarray(state, dtype=np.float32 if name == "MountainCarContinuous-v0" else np.float64)


def gym_action(env, a):
    return np.array([a], dtype=np.float32) if env.CONTINUOUS else int(a)


@pytest.mark.parametrize("name", NAMES)
def test_step_matches_gymnasium_on_random_transitions(name, rng):
    env, genv = ENVIRONMENTS[name], gym.make(name).unwrapped
    states, actions = random_states(name, rng, 1000), random_actions(env, rng, 1000)
    nxt, reward, terminated = env.step_reference(states, actions)
    obs_ref = env.observe_reference(nxt)
    twin, obs_twin = states.copy(), np.zeros(env.OBS_DIM, dtype=np.float32)
    for i, (s, a) in enumerate(zip(states, actions)):
        genv.reset(seed=0)  # CartPole gives 0 reward for a step after termination
        genv.state = gym_state(name, s)
        obs, r, term, trunc, _ = genv.step(gym_action(env, a))
        assert np.abs(obs_ref[i] - obs).max() < 1e-5, (i, obs_ref[i], obs)
        assert r == reward[i] and term == terminated[i] and not trunc
        r_twin, term_twin = env.step(twin[i], a)  # compiled: numba may pick other libm variants than Python
        env.observe(twin[i], obs_twin)
        assert r_twin == r and term_twin == term
        np.testing.assert_array_equal(obs_twin, obs_ref[i])
    np.testing.assert_array_equal(twin, nxt)
    assert terminated.any() or name == "Pendulum-v1"  # the sample reaches the terminal set


def fixed_actions(env, pattern, rng, n):
    if env.CONTINUOUS:
        return {"low": np.full(n, -2.5), "high": np.full(n, 0.9), "alternate": np.where(np.arange(n) % 40 < 20, 1, -1),
                "random": rng.uniform(-2.5, 2.5, n)}[pattern].astype(np.float32)
    k = env.N_ACTIONS
    return {"low": np.zeros(n, int), "high": np.full(n, k - 1), "alternate": (np.arange(n) // 30) % 2 * (k - 1),
            "random": rng.integers(0, k, n)}[pattern]


@pytest.mark.parametrize("pattern", ["low", "high", "alternate", "random"])
@pytest.mark.parametrize("name", NAMES)
def test_fixed_action_episodes_match_gymnasium(name, pattern):
    env, genv = ENVIRONMENTS[name], gym.make(name)
    actions = fixed_actions(env, pattern, np.random.default_rng(1), env.MAX_STEPS + 50)
    genv.reset(seed=3)
    genv.unwrapped.state = gym_state(name, genv.unwrapped.state)
    state = np.array(genv.unwrapped.state, dtype=np.float64)[None]
    total_gym = total = 0.0
    length_gym = length = 0
    alive = True
    for a in actions:
        _, r, terminated, truncated, _ = genv.step(gym_action(env, a))
        total_gym, length_gym = total_gym + r, length_gym + 1
        if alive:
            state, reward, term = env.step_reference(state, np.array([a]))
            total, length = total + reward[0], length + 1
            alive = not term[0] and length < env.MAX_STEPS
        if terminated or truncated:
            break
    assert not alive and (total, length) == (total_gym, length_gym)


def population(task, sparsity, P, rng, scale=0.5):
    net = task.default_net()
    mask = Mask({n: rng.random(net.spec[n].shape) >= sparsity for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = layout.flatten(net.init(0))[None] + scale * rng.standard_normal((P, layout.dim)).astype(np.float32)
    return net, layout, pop


@pytest.mark.parametrize("sparsity", [0.0, 0.8, 0.99])
@pytest.mark.parametrize("name", NAMES)
def test_fused_rollout_equals_reference_exactly(name, sparsity, rng):
    task = tasks.make(name, episodes=3)
    net, layout, pop = population(task, sparsity, 12, rng, scale=2.0)
    fused = task.evaluate(net, layout, pop, seed=5, generation=2, backend="numba")
    ref = task.evaluate(net, layout, pop, seed=5, generation=2, backend="numpy")
    np.testing.assert_array_equal(fused, ref)
    if sparsity < 0.99 and name != "MountainCar-v0":  # random policies never leave MountainCar's valley
        assert fused.max() > fused.min()  # a population that really differs


@pytest.mark.parametrize("name", NAMES)
def test_resets_follow_gymnasium_distribution(name):
    task, env = tasks.make(name), ENVIRONMENTS[name]
    r = task.resets(0, 0, 4000)
    assert r.shape == (4000, env.STATE_DIM)
    assert (r >= env.RESET_LOW - 1e-7).all() and (r <= env.RESET_HIGH + 1e-7).all()
    np.testing.assert_allclose(r.mean(axis=0), (env.RESET_LOW + env.RESET_HIGH) / 2,
                               atol=0.03 * (env.RESET_HIGH - env.RESET_LOW).max())
    assert not np.array_equal(task.resets(0, 1, 8), task.resets(0, 0, 8))
    np.testing.assert_array_equal(task.resets(0, 7, 8), task.resets(0, 7, 8))


def test_task_shapes_and_default_nets():
    for name, env in ENVIRONMENTS.items():
        task = tasks.make(name)
        net = task.default_net()
        assert net.sizes == (env.OBS_DIM, 64, 64, env.N_ACTIONS) and task.obs_shape == (env.OBS_DIM,)
    assert tasks.make("Pendulum-v1").continuous and not tasks.make("Acrobot-v1").continuous


def test_sep_cma_es_solves_cartpole():
    from esprune import strategies

    task = tasks.make("CartPole-v1")
    net = task.default_net()
    layout = Layout(net.spec)
    es = strategies.make("sep_cma_es", layout.dim, 32, seed=0)
    es.mean = layout.flatten(net.init(0))
    for g in range(40):
        es.tell(task.evaluate(net, layout, es.ask(), seed=0, generation=g))
        if task.score(net, layout, es.mean[None].astype(np.float32), seed=0)[0] >= 475:
            break
    assert task.score(net, layout, es.mean[None].astype(np.float32), seed=0)[0] >= 475


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_test_score_averages_the_papers_32_test_episodes_by_default(name, rng):
    """gym.yaml of the published code: n_evaluations 32 test episodes; a task option changes the count."""
    task = tasks.make(name)
    net, layout, pop = population(task, 0.0, 3, rng)
    resets = task.resets(4, 0, 32, noise.TEST_RESET)
    want = task.rollout_reference(net, layout, pop, resets).mean(axis=1)
    np.testing.assert_array_equal(task.score(net, layout, pop, seed=4), want)
    assert task.describe()["test_episodes"] == 32
    five = tasks.make(name, test_episodes=5)
    want5 = five.rollout_reference(net, layout, pop, five.resets(4, 0, 5, noise.TEST_RESET)).mean(axis=1)
    np.testing.assert_array_equal(five.score(net, layout, pop, seed=4), want5)
    with pytest.raises(ConfigError, match="test_episodes"):
        tasks.make(name, test_episodes=0)


def test_unknown_task_is_a_user_error():
    from esprune.errors import UserError

    with pytest.raises(UserError, match="unknown task"):
        tasks.make("CartPole-v0")
    with pytest.raises(UserError, match="episodes"):
        tasks.make("Pendulum-v1", episodes=0)


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_cuda_rollout_equals_the_numba_twin(cupy_backend, name):
    """kernels/rollout.cu against the fused numba rollout: identical returns for discrete actions, 1e-5
    relative for continuous ones (the device's double sin/cos may differ from the host's in the last bit)."""
    task = tasks.make(name, episodes=4)
    net = task.default_net()
    rng = np.random.default_rng(0)
    mask = Mask({n: rng.random(net.spec[n].shape) >= 0.5 for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = (layout.flatten(net.init(0))[None] + 0.3 * rng.standard_normal((16, layout.dim))).astype(np.float32)
    cpu = task.evaluate(net, layout, pop, seed=2, backend="numba")
    gpu = task.evaluate(net, layout, cupy_backend.asarray(pop), seed=2, backend=cupy_backend)
    if task.continuous:
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5)
    else:
        np.testing.assert_array_equal(gpu, cpu)
