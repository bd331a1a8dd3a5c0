"""CartPole-v1 against Gymnasium (transitions and whole episodes), and the fused rollout against the reference."""
import numpy as np
import pytest

from esprune import strategies, tasks
from esprune.params import Layout, Mask
from esprune.tasks import cartpole

gym = pytest.importorskip("gymnasium")


def gym_step(env, state, action):
    env.reset(seed=0)
    env.unwrapped.state = np.array(state, dtype=np.float64)
    obs, reward, terminated, truncated, _ = env.step(int(action))
    return obs, reward, terminated


def test_step_matches_gymnasium_on_random_transitions():
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    states = rng.uniform([-2.6, -3, -0.25, -3], [2.6, 3, 0.25, 3], (1000, 4))
    actions = rng.integers(0, 2, 1000)
    nxt, reward, terminated = cartpole.step_reference(states, actions)
    twin = states.copy()
    for i, (s, a) in enumerate(zip(states, actions)):
        obs, r, term = gym_step(env, s, a)
        assert np.abs(nxt[i].astype(np.float32) - obs).max() < 1e-5
        assert r == reward[i] and term == terminated[i]
        r_twin, term_twin = cartpole.step.py_func(twin[i], a)
        assert r_twin == r and term_twin == term
    np.testing.assert_array_equal(twin, nxt)


@pytest.mark.parametrize("pattern", ["left", "right", "alternate", "random"])
def test_fixed_action_episodes_match_gymnasium(pattern):
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(1)
    actions = {"left": np.zeros(600, int), "right": np.ones(600, int), "alternate": np.arange(600) % 2,
               "random": rng.integers(0, 2, 600)}[pattern]
    obs, _ = env.reset(seed=3)
    state = env.unwrapped.state.copy()[None]
    total_gym = total = 0.0
    alive = True
    for t, a in enumerate(actions):
        obs, r, terminated, truncated, _ = env.step(int(a))
        total_gym += r
        if alive:
            state, reward, term = cartpole.step_reference(state, np.array([a]))
            total += reward[0]
            alive = not term[0] and t + 1 < cartpole.MAX_STEPS
        if terminated or truncated:
            assert not alive and (truncated == (t + 1 == cartpole.MAX_STEPS))
            break
    assert total == total_gym


def population(task, sparsity, P, rng):
    net = task.default_net()
    mask = Mask({n: rng.random(net.spec[n].shape) >= sparsity for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = layout.flatten(net.init(0))[None] + 0.5 * rng.standard_normal((P, layout.dim)).astype(np.float32)
    return net, layout, pop


@pytest.mark.parametrize("sparsity", [0.0, 0.8, 0.99])
def test_fused_rollout_equals_reference_exactly(sparsity, rng):
    task = tasks.make("CartPole-v1")
    net, layout, pop = population(task, sparsity, 24, rng)
    fused = task.evaluate(net, layout, pop, seed=5, generation=2, backend="numba")
    ref = task.evaluate(net, layout, pop, seed=5, generation=2, backend="numpy")
    np.testing.assert_array_equal(fused, ref)
    assert fused.max() > fused.min()  # a population that really differs


def test_resets_are_shared_uniform_and_fresh_each_generation():
    task = tasks.make("CartPole-v1")
    r = task.resets(0, 0, 4000)
    assert r.min() >= -0.05 and r.max() < 0.05 and abs(r.mean()) < 0.002
    assert not np.array_equal(task.resets(0, 1, 8), task.resets(0, 0, 8))
    np.testing.assert_array_equal(task.resets(0, 7, 8), task.resets(0, 7, 8))
    assert not np.array_equal(task.resets(0, 0, 8, stream=5), task.resets(0, 0, 8))


def test_sep_cma_es_solves_cartpole():
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


def test_unknown_task_is_a_user_error():
    from esprune.errors import UserError

    with pytest.raises(UserError, match="unknown task"):
        tasks.make("CartPole-v0")
