"""``gym:<id>`` tasks (any Gymnasium environment through the vector API) against a plain Gymnasium loop, against
the built-in MuJoCo bodies, and through the IMP loop."""
import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from esprune import config, tasks  # noqa: E402
from esprune.errors import ConfigError  # noqa: E402
from esprune.params import Layout, Mask  # noqa: E402
from esprune.tasks.mujoco_worlds import episode_seed  # noqa: E402


def population(task, P, rng, scale=0.5):
    net = task.default_net()
    layout = Layout(net.spec, Mask.dense(net.spec))
    pop = layout.flatten(net.init(0))[None] + scale * rng.standard_normal((P, layout.dim)).astype(np.float32)
    return net, layout, pop.astype(np.float32)


def test_discrete_env_equals_a_plain_gymnasium_loop(rng):
    task = tasks.make("gym:CartPole-v1", episodes=2)
    net, layout, pop = population(task, 3, rng)
    words = task.episode_words(seed=0, generation=5, episodes=2)
    lengths = np.zeros((3, 2), dtype=int)
    returns = task.rollout(net, layout, pop, words, lengths=lengths)
    for p in range(3):
        for e in range(2):
            env = gym.make("CartPole-v1")
            obs, _ = env.reset(seed=episode_seed(words[e]))
            total, n = 0.0, 0
            while True:
                x = np.asarray(obs, dtype=np.float32)[None, None]
                action = int(np.argmax(net.forward(layout, pop[p:p + 1], x, backend="numba")[0, 0]))
                obs, reward, terminated, truncated, _ = env.step(action)
                total, n = total + reward, n + 1
                if terminated or truncated:
                    break
            assert (returns[p, e], lengths[p, e]) == (total, n)
    assert task.describe()["actions"] == "discrete (argmax)" and task.max_steps == 500


def test_mujoco_body_through_the_vector_api_equals_the_builtin_task(rng):
    pytest.importorskip("mujoco", reason="needs the mujoco extra: pip install 'esprune[mujoco]'")
    pytest.importorskip("gymnasium.envs.mujoco", reason="Gymnasium's MuJoCo envs need the mujoco extra")
    slow = tasks.make("gym:Hopper-v5", max_steps=20, obs_norm=True)
    fast = tasks.make("Hopper-v5", max_steps=20)
    net, layout, pop = population(fast, 2, rng, scale=0.3)
    words = fast.episode_words(seed=2, generation=0, episodes=2)
    accs = []
    for task in (slow, fast):
        task.load_state_dict({"obs_steps": 40.0, "obs_mean": np.full(11, 0.1), "obs_var": np.full(11, 30.0)})
        accs.append(task.norm.accumulator())
    a = slow.rollout(net, layout, pop, words, acc=accs[0])
    b = fast.rollout(net, layout, pop, words, acc=accs[1])
    np.testing.assert_array_equal(a, b)
    assert accs[0].count == accs[1].count > 0
    np.testing.assert_array_equal(accs[0].sum, accs[1].sum)


def test_unknown_env_and_options_are_clear_errors():
    with pytest.raises(ConfigError, match="NoSuchEnv"):
        config.resolve({"task": "gym:NoSuchEnv-v0"})
    with pytest.raises(ConfigError, match="unknown option"):
        tasks.make("gym:CartPole-v1", episode=3)


def test_an_imp_run_on_a_gym_task(tmp_path):
    from esprune.imp import Experiment

    cfg = config.resolve({"task": "gym:CartPole-v1", "task_options": {"episodes": 2, "test_episodes": 2},
                          "iterations": 1, "generations": 3, "popsize": 6, "eval_every": 3, "keep": 0.5})
    rows = Experiment.start(cfg, tmp_path / "run.h5").execute()
    assert [r["iteration"] for r in rows] == [0, 1] and all(r["test"] > 0 for r in rows)
