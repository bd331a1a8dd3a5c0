"""The MuJoCo locomotion tasks against Gymnasium v5: random transitions and whole episodes, bit for bit; the
batched worlds against the one-MjData-per-world loop; the observation normalizer against evojax's formula."""
import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the locomotion tests need the mujoco extra: pip install 'esprune[mujoco]'")
gym = pytest.importorskip("gymnasium")
pytest.importorskip("gymnasium.envs.mujoco", reason="Gymnasium's MuJoCo envs need the mujoco extra (imageio)")

from esprune import tasks  # noqa: E402
from esprune.params import Layout, Mask  # noqa: E402
from esprune.tasks.mujoco_bodies import BODIES  # noqa: E402
from esprune.tasks.mujoco_worlds import Worlds, episode_seed, load_model  # noqa: E402
from esprune.tasks.obs_norm import ObsNormalizer  # noqa: E402

NAMES = list(BODIES)


pytestmark = pytest.mark.usefixtures("quiet_mujoco")  # tests/conftest.py


class Twin:
    """The task's physics and rules for ``n`` worlds, stepped by hand beside ``n`` Gymnasium envs."""

    def __init__(self, name, n, use_batch=True, threads=1):
        self.body, self.model = BODIES[name], load_model(BODIES[name].xml)
        self.w = Worlds(self.model, n, threads, fields=self.body.fields, contact_forces=self.body.contact_forces,
                        use_batch=use_batch)
        self.dt = self.model.opt.timestep * self.body.frame_skip

    def reset(self, i, seed):
        qpos, qvel = self.body.reset(np.random.default_rng(seed), self.model.qpos0.copy(), np.zeros(self.model.nv))
        self.set(i, qpos, qvel)

    def set(self, i, qpos, qvel):
        self.w.reset([i], qpos[None], qvel[None])
        return self.body.observe(self.w, np.array([i]))[0]

    def obs(self, ids):
        return self.body.observe(self.w, ids)

    def step(self, ids, action):
        before = self.body.position(self.w, ids) if self.body.position else None
        self.w.step(ids, action, self.body.frame_skip)
        reward, terminated = self.body.reward(self.w, ids, action, before, self.dt)
        return self.body.observe(self.w, ids), reward, terminated


def assert_same(ours, theirs, what):
    assert np.array_equal(ours, theirs), (what, np.max(np.abs(np.asarray(ours) - np.asarray(theirs))))


@pytest.mark.parametrize("name", NAMES)
def test_dimensions_are_gymnasiums(name):
    env = gym.make(name)
    task = tasks.make(name)
    assert (task.obs_dim,) == env.observation_space.shape and (task.act_dim,) == env.action_space.shape
    assert task.max_steps == env.spec.max_episode_steps
    assert BODIES[name].frame_skip == env.unwrapped.frame_skip


def run_against_gymnasium(name, seeds, steps, use_batch=True, threads=1):
    """Random float32 actions in every world; a world whose episode ends restarts from a new seed."""
    n = len(seeds)
    envs = [gym.make(name).unwrapped for _ in range(n)]
    twin = Twin(name, n, use_batch, threads)
    rng = np.random.default_rng(seeds[0])
    low, high = envs[0].action_space.low, envs[0].action_space.high
    next_seed = max(seeds) + 1
    ids = np.arange(n)
    for i, s in enumerate(seeds):
        obs, _ = envs[i].reset(seed=s)
        twin.reset(i, s)
        assert_same(twin.obs(ids[i:i + 1])[0], obs, "reset obs")
    terminations = 0
    for t in range(steps):
        action = rng.uniform(1.2 * low, 1.2 * high, (n, len(low))).astype(np.float32)  # beyond ctrlrange too
        obs, reward, terminated = twin.step(ids, action)
        for i, env in enumerate(envs):
            g_obs, g_reward, g_term, g_trunc, _ = env.step(action[i])
            assert_same(obs[i], g_obs, f"obs at step {t}, world {i}")
            assert reward[i] == g_reward, (t, i, reward[i], g_reward)
            assert terminated[i] == g_term and not g_trunc
            if g_term:
                terminations += 1
                g_obs, _ = env.reset(seed=next_seed)
                twin.reset(i, next_seed)
                assert_same(twin.obs(ids[i:i + 1])[0], g_obs, "reset obs")
                next_seed += 1
    return terminations


@pytest.mark.parametrize("name", NAMES)
def test_random_transitions_equal_gymnasium(name):
    terminations = run_against_gymnasium(name, seeds=[0, 1, 7], steps=40)
    if name in ("Hopper-v5", "Walker2d-v5", "Humanoid-v5"):
        assert terminations > 0  # random actions topple these bodies within 40 steps: termination is covered


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_thousand_random_transitions_equal_gymnasium(name):
    run_against_gymnasium(name, seeds=[3, 11], steps=500, threads=2)


@pytest.mark.parametrize("name", ["Ant-v5", "Hopper-v5"])
def test_mjdata_loop_equals_gymnasium(name):
    run_against_gymnasium(name, seeds=[5, 6], steps=25, use_batch=False)


def random_state(name, model, rng):
    """States across (and beyond) the healthy ranges, so that every termination rule is exercised."""
    qpos = model.qpos0 + rng.uniform(-0.4, 0.4, model.nq)
    qvel = rng.normal(0.0, 3.0, model.nv)
    height = {"Ant-v5": 2, "Humanoid-v5": 2, "Hopper-v5": 1, "Walker2d-v5": 1}.get(name)
    if height is not None:
        qpos[height] = rng.uniform(0.1, 2.3)
    if name in ("Hopper-v5", "Walker2d-v5"):
        qpos[2] = rng.uniform(-1.3, 1.3)
    if name == "Hopper-v5" and rng.random() < 0.2:
        qvel[rng.integers(model.nv)] = rng.choice([-150.0, 150.0])
    return qpos, qvel


@pytest.mark.parametrize("name", NAMES)
def test_transitions_from_random_states_equal_gymnasium(name):
    env = gym.make(name).unwrapped
    twin = Twin(name, 1)
    rng = np.random.default_rng(42)
    outcomes = set()
    for k in range(30):
        qpos, qvel = random_state(name, twin.model, rng)
        env.reset(seed=k)
        env.set_state(qpos, qvel)
        twin.set(0, qpos, qvel)
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated = twin.step(np.array([0]), action[None])
        g_obs, g_reward, g_term, _, _ = env.step(action)
        assert_same(obs[0], g_obs, f"obs from state {k}")
        assert reward[0] == g_reward and terminated[0] == g_term, (k, reward[0], g_reward, terminated[0], g_term)
        outcomes.add(bool(g_term))
    if name not in ("HalfCheetah-v5", "Reacher-v5"):
        assert outcomes == {True, False}


# ---------------------------------------------------------------------------------------------- whole episodes
def population(task, P, rng, scale=0.3, sparsity=0.0):
    net = task.default_net()
    mask = Mask({n: rng.random(net.spec[n].shape) >= sparsity for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = layout.flatten(net.init(0))[None] + scale * rng.standard_normal((P, layout.dim)).astype(np.float32)
    return net, layout, pop.astype(np.float32)


def gymnasium_returns(task, net, layout, pop, words):
    """The oracle: one Gymnasium env per (member, episode), the policy on each normalized observation alone."""
    P, E = pop.shape[0], len(words)
    returns, lengths = np.zeros((P, E)), np.zeros((P, E), dtype=int)
    for p in range(P):
        for e in range(E):
            env = gym.make(task.name, max_episode_steps=task.max_steps)
            obs, _ = env.reset(seed=episode_seed(words[e]))
            while True:
                x = task.norm.normalize(obs)[None, None]
                action = net.forward(layout, pop[p:p + 1], x, backend="numba")[0, 0]
                obs, reward, terminated, truncated, _ = env.step(action)
                returns[p, e] += reward
                lengths[p, e] += 1
                if terminated or truncated:
                    break
    return returns, lengths


def assert_rollout_equals_gymnasium(task, net, layout, pop, words):
    """The fused numba rollout's returns and episode lengths equal Gymnasium's exactly; returns both."""
    lengths = np.zeros((len(pop), words.shape[0]), dtype=int)
    returns = task.rollout(net, layout, pop, words, "numba", lengths=lengths)
    ref, ref_lengths = gymnasium_returns(task, net, layout, pop, words)
    np.testing.assert_array_equal(lengths, ref_lengths)
    np.testing.assert_array_equal(returns, ref)
    return returns, lengths


@pytest.mark.parametrize("name", NAMES)
def test_population_rollout_equals_gymnasium_episodes(name, rng):
    task = tasks.make(name, max_steps=20)
    net, layout, pop = population(task, 2, rng, sparsity=0.5)
    task.norm.steps, task.norm.mean, task.norm.var = 50.0, rng.normal(0, 0.1, task.obs_dim), \
        rng.uniform(10, 200, task.obs_dim)  # a non-trivial normalization, frozen
    returns, _ = assert_rollout_equals_gymnasium(task, net, layout, pop, task.episode_words(seed=4, generation=1,
                                                                                           episodes=2))
    assert returns.max() > returns.min()


@pytest.mark.parametrize("name", ["Hopper-v5", "HalfCheetah-v5", pytest.param("Ant-v5", marks=pytest.mark.slow)])
def test_fixed_action_episodes_equal_gymnasium(name, rng):
    """Zero weights make the policy a constant action tanh(b_out): whole fixed-action episodes of the task."""
    task = tasks.make(name, max_steps=80, obs_norm=False)
    net = task.default_net()
    layout = Layout(net.spec, Mask.dense(net.spec))
    pop = np.zeros((3, layout.dim), dtype=np.float32)
    out_bias = layout.segment(f"dense_{net.n_layers - 1}/b")
    pop[:, out_bias] = np.array([[0.0], [0.9], [-2.0]], dtype=np.float32) + rng.uniform(-0.3, 0.3, (3, task.act_dim))
    _, lengths = assert_rollout_equals_gymnasium(task, net, layout, pop, task.episode_words(seed=1, generation=0,
                                                                                           episodes=1))
    if name == "Hopper-v5":
        assert (lengths < 80).any()  # some fixed action topples the hopper: the episode ends by termination


@pytest.mark.slow
def test_full_length_episodes_equal_gymnasium(rng):
    task = tasks.make("HalfCheetah-v5")  # never terminates: every episode runs Gymnasium's 1000 steps
    net, layout, pop = population(task, 2, rng)
    words = task.episode_words(seed=0, generation=0, episodes=1)
    lengths = np.zeros((2, 1), dtype=int)
    returns = task.rollout(net, layout, pop, words, "numba", lengths=lengths)
    ref, ref_lengths = gymnasium_returns(task, net, layout, pop, words)
    assert (lengths == 1000).all()
    np.testing.assert_array_equal(returns, ref)


def test_physics_threads_do_not_change_numbers(rng, monkeypatch):
    task = tasks.make("Ant-v5", max_steps=20, episodes=2)
    net, layout, pop = population(task, 4, rng)
    base = task.evaluate(net, layout, pop, seed=3, generation=2, backend="numba")
    import esprune.tasks.locomotion as loco
    monkeypatch.setattr(loco, "physics_threads", lambda be: 2)
    np.testing.assert_array_equal(task.evaluate(net, layout, pop, seed=3, generation=2), base)
    assert task._worlds_for(8, 2)._batch.nthread == 2


def test_common_random_numbers_and_fresh_episodes(rng):
    task = tasks.make("Hopper-v5", max_steps=15, episodes=2)
    net, layout, pop = population(task, 2, rng)
    same = np.repeat(pop[:1], 2, axis=0)
    f = task.evaluate(net, layout, same, seed=0, generation=0)
    assert f[0] == f[1]  # every member sees the same episodes
    assert task.evaluate(net, layout, same, seed=0, generation=1)[0] != f[0]  # new episodes each generation
    assert task.score(net, layout, same[:1], seed=0, episodes=2)[0] != f[0]  # test episodes are others


# ---------------------------------------------------------------------------------------------- normalization
def evojax_update(params, buffer, mask):
    """evojax ``update_obs_params`` transcribed (float64): buffer (T, N, d), mask (T, N)."""
    steps, mean, var = params
    m = mask[..., None]
    total = steps + mask.sum()
    old = (buffer - mean) * m
    new_mean = mean + np.sum(old / total, axis=(0, 1))
    var = var + np.sum((buffer - new_mean) * m * old, axis=(0, 1))
    return total, new_mean, var


def test_normalizer_update_equals_evojax(rng):
    norm = ObsNormalizer(5)
    params = (0.0, np.zeros(5), np.zeros(5))
    for gen in range(3):
        buffer = rng.normal(3.0, 2.0, (7, 4, 5))
        mask = rng.random((7, 4)) < 0.8
        acc = norm.accumulator()
        for t in range(7):
            acc.add(buffer[t][mask[t]])
        norm.update(acc)
        params = evojax_update(params, buffer, mask)
        assert norm.steps == params[0]
        np.testing.assert_allclose(norm.mean, params[1], rtol=1e-12)
        np.testing.assert_allclose(norm.var, params[2], rtol=1e-10)
    x = rng.normal(3.0, 4.0, (10, 5))
    variance = np.clip(params[2] / (params[0] + 1), 1e-6, 1e6)
    expected = np.clip((x - params[1]) / np.sqrt(variance), -5, 5)
    np.testing.assert_allclose(norm.normalize(x), expected, rtol=1e-6)
    assert np.abs(norm.normalize(100 * x)).max() == 5.0


def test_fresh_normalizer_clips_like_evojax():
    x = np.array([[0.0, 1e-4, -2.0, 3.0]])
    np.testing.assert_array_equal(ObsNormalizer(4).normalize(x), np.float32([[0.0, 0.1, -5.0, 5.0]]))


def test_training_rollouts_update_statistics_and_test_rollouts_do_not(rng):
    task = tasks.make("Hopper-v5", max_steps=25, episodes=3)
    net, layout, pop = population(task, 4, rng, scale=1.0)
    task.score(net, layout, pop, seed=0, episodes=2)
    task.evaluate(net, layout, pop, seed=0, generation=0)
    assert task.norm.steps == 0  # neither test episodes nor an evaluate without update_norm count
    lengths = np.zeros((4, 3), dtype=int)
    task.rollout(net, layout, pop, task.episode_words(0, 0, 3), lengths=lengths)
    task.evaluate(net, layout, pop, seed=0, generation=0, update_norm=True)
    # each episode's last observation led to its end (termination or truncation) and is not counted
    assert task.norm.steps == (lengths - 1).sum() and (lengths < 25).any()


def test_normalizer_state_resumes_bit_identically(rng):
    def run(task, gens):
        return [task.evaluate(net, layout, pop, seed=1, generation=g, update_norm=True) for g in gens]

    a = tasks.make("Walker2d-v5", max_steps=12, episodes=2)
    net, layout, pop = population(a, 3, rng)
    full = run(a, range(4))
    b = tasks.make("Walker2d-v5", max_steps=12, episodes=2)
    run(b, range(2))
    state = {k: np.copy(v) for k, v in b.state_dict().items()}
    c = tasks.make("Walker2d-v5", max_steps=12, episodes=2)
    c.load_state_dict(state)
    rest = run(c, range(2, 4))
    np.testing.assert_array_equal(np.array(full[2:]), np.array(rest))
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, c.state_dict()[key])
    c.reset_state()
    assert c.norm.steps == 0 and not c.norm.mean.any()


# ---------------------------------------------------------------------------------------------- options, errors
def test_torso_mass_scale_makes_a_heavier_body(rng):
    heavy = tasks.make("Ant-v5", torso_mass_scale=1.5, max_steps=30, episodes=1)
    base = tasks.make("Ant-v5", max_steps=30, episodes=1)
    m0, m1 = base.model.body("torso"), heavy.model.body("torso")
    assert m1.mass[0] == pytest.approx(1.5 * m0.mass[0]) and np.allclose(m1.inertia, 1.5 * m0.inertia)
    assert heavy.model.body_subtreemass[1] > base.model.body_subtreemass[1]  # mj_setConst ran
    net, layout, pop = population(base, 2, rng)
    assert (heavy.evaluate(net, layout, pop, seed=0) != base.evaluate(net, layout, pop, seed=0)).all()
    with pytest.raises(tasks.ConfigError):
        tasks.make("Reacher-v5", torso_mass_scale=2.0)


def test_missing_mujoco_is_one_clear_error(monkeypatch):
    import sys

    from esprune.errors import UserError

    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco now raises ImportError
    task = tasks.make("Hopper-v5")
    assert task.describe()["obs_shape"] == [11]  # listing tasks needs no MuJoCo
    with pytest.raises(UserError, match=r"esprune\[mujoco\]"):
        task.prepare()



def test_policy_on_the_cupy_path_steers_the_same_episodes(cupy_backend, rng):
    """The policy forward on the device (host emulation of kernels/dense.cu, or a GPU), physics on the CPU."""
    task = tasks.make("Walker2d-v5", max_steps=15, episodes=2, physics="mujoco")  # auto: MuJoCo Warp (its tests)
    net, layout, pop = population(task, 3, rng)
    on_device = task.evaluate(net, layout, cupy_backend.asarray(pop), seed=1, generation=0, backend="cupy")
    # close, not bitwise: the device forward (kernels/dense.cu) may round differently from the numba twin
    np.testing.assert_allclose(on_device, task.evaluate(net, layout, pop, seed=1, generation=0), rtol=1e-3)


def test_bench_row_w3_runs_small_and_reports_its_floor():
    from esprune import backend
    from esprune.bench.generation import render
    from esprune.bench.locomotion import w3_row

    row = w3_row(backend.get("numba"), repeats=1, max_steps=3, popsize=4, episodes=2)
    assert row["env_steps"] == 4 * 2 * 3 and row["floor_steps_per_s"] > 0
    assert row["frac_floor"] == row["steps_per_s"] / row["floor_steps_per_s"]
    assert "W3 floor" in render({"peak": {}, "rows": [row]})


def test_a_locomotion_runs_profile_counts_its_env_steps(tmp_path):
    """`show --timing` read "0 images" for locomotion runs: their evaluations did not record the env steps taken.
    Hopper stays healthy for its first 3 steps, so every episode runs max_steps = 3."""
    from esprune import config
    from esprune.imp import Experiment
    from esprune.store import RunFile

    cfg = config.resolve({"task": "Hopper-v5", "task_options": {"episodes": 2, "test_episodes": 2, "max_steps": 3},
                          "iterations": 0, "generations": 2, "popsize": 4, "eval_every": 2})
    Experiment.start(cfg, tmp_path / "r.h5").execute()
    (profile,) = RunFile.open(tmp_path / "r.h5").timing()
    assert profile["work_unit"] == "env steps" and profile["work"] == 2 * 4 * 2 * 3 and profile["gflops"] > 0
