"""The locomotion worlds on MuJoCo Warp (``physics="warp"``, and the cupy backend's default) against C MuJoCo,
on Warp's CPU device: one step from identical states, whole short episodes world by world (a body whose
trajectories stay close) and in distribution (Ant, whose contacts make trajectories diverge), and what crosses
between host and device on the cupy path (host emulation of CuPy, as in test_device_path.py).

MuJoCo Warp compiles its kernels on first use (about 30 s for Ant on 2 cores, a few seconds per further body)
and caches them on disk; the ``warp`` fixture is shared by the whole session so that happens once per process.
"""
import contextlib
import sys

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the locomotion tests need the mujoco extra: pip install 'esprune[mujoco]'")

from esprune import strategies, tasks  # noqa: E402
from esprune.bench import random_mask  # noqa: E402
from esprune.errors import BackendUnavailable, ConfigError  # noqa: E402
from esprune.params import Layout  # noqa: E402
from esprune.tasks.locomotion import PhysicsNotice  # noqa: E402
from esprune.tasks.mujoco_bodies import BODIES  # noqa: E402
from esprune.tasks.mujoco_worlds import Worlds, load_model  # noqa: E402

import host_cupy  # noqa: E402

SUPPORTED = ["Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Reacher-v5"]  # Humanoid-v5: PGS solver


@pytest.fixture(scope="session")
def warp():
    """MuJoCo Warp on Warp's CPU device (WarpWorlds picks it for host arrays), one per test session."""
    return pytest.importorskip("mujoco_warp", reason="the MuJoCo Warp tests need pip install 'esprune[gpu-physics]'")


pytestmark = pytest.mark.usefixtures("quiet_mujoco")  # tests/conftest.py


def varied_states(body, model, n, seed=0, steps=30):
    """``n`` states C MuJoCo reaches from Gymnasium's resets under ``steps`` random actions (many in contact)."""
    rng = np.random.default_rng(seed)
    worlds = Worlds(model, n, fields=body.fields, contact_forces=body.contact_forces)
    starts = [body.reset(np.random.default_rng(seed + i), model.qpos0.copy(), np.zeros(model.nv)) for i in range(n)]
    ids = np.arange(n)
    worlds.reset(ids, np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts]))
    for _ in range(steps):
        worlds.step(ids, rng.uniform(-1, 1, (n, model.nu)).astype(np.float32), body.frame_skip)
    return worlds.qpos.copy(), worlds.qvel.copy()


def one_step(worlds, ids, body, action, dt):
    """One env step as the rollouts take it; ``ids=None``: the device worlds (every world; controls are
    written through the view)."""
    device, ids = ids is None, slice(None) if ids is None else ids
    before = body.position(worlds, ids) if body.position else None
    if device:
        worlds.ctrl[...] = action
        worlds.step(body.frame_skip)
    else:
        worlds.step(ids, action, body.frame_skip)
    reward, terminated = body.reward(worlds, ids, action, before, dt)
    return body.observe(worlds, ids), reward, terminated


@pytest.mark.parametrize("name", SUPPORTED)
def test_one_step_from_identical_states_agrees_with_c_mujoco(warp, name):
    """Tolerances: MuJoCo Warp computes in float32 (relative rounding ~6e-8), C MuJoCo in float64. Without
    contact (and for these bodies' contacts, except Ant's) one env step agreed to ≤ 2e-5 in every observation,
    reward and state entry (measured: HalfCheetah 1.5e-5, Walker2d 1.8e-5 in qvel); 1e-4 leaves 5× for other
    CPUs. Ant's contact solve differs: MuJoCo Warp stops its Newton solver at tolerance 1e-6 (float32) where C
    goes on to 1e-8, so in contact worlds velocities differ by up to ~0.7 after one step, and the contact forces
    only roughly agree; there the median is checked (measured 5e-8) and the forces' pattern and correlation.

    The MuJoCo Warp side runs as on the cupy path: its fields are views typed as the tests' stand-in for CuPy
    arrays, so the body rules run in their device form and any host array among them raises."""
    from esprune.tasks.warp_worlds import WarpWorlds

    body, model = BODIES[name], load_model(BODIES[name].xml)
    n = 16
    qpos, qvel = varied_states(body, model, n)
    dt = model.opt.timestep * body.frame_skip
    device = WarpWorlds(model, n, host_cupy.ndarray, fields=body.fields, contact_forces=body.contact_forces)
    theirs = Worlds(model, n, fields=body.fields, contact_forces=body.contact_forces)
    ids = np.arange(n)
    device.reset(on_device(qpos), on_device(qvel))
    theirs.reset(ids, qpos, qvel)
    np.testing.assert_allclose(host(body.observe(device, slice(None))), body.observe(theirs, ids), atol=2e-6, rtol=0)
    action = np.random.default_rng(1).uniform(-1, 1, (n, model.nu)).astype(np.float32)
    stepped = one_step(device, None, body, on_device(action), dt)
    assert all(isinstance(a, host_cupy.ndarray) for a in stepped)  # observations, rewards, ends stay on the device
    obs, reward, terminated = (host(a) for a in stepped)
    obs_c, reward_c, terminated_c = one_step(theirs, ids, body, action, dt)
    ours = Host(device)
    assert obs.dtype == np.float32 and obs.shape == (n, body.obs_dim)
    np.testing.assert_array_equal(terminated, terminated_c)
    if name != "Ant-v5":
        np.testing.assert_allclose(obs, obs_c, atol=1e-4, rtol=0)
        np.testing.assert_allclose(reward, reward_c, atol=1e-4, rtol=0)
        np.testing.assert_allclose(ours.qpos, theirs.qpos, atol=1e-4, rtol=0)
        return
    touching = touches(model, qpos, qvel, action, body.frame_skip)
    assert 2 <= touching.sum() <= n - 2  # the states cover both cases
    np.testing.assert_array_equal(np.abs(ours.cfrc_ext).sum(axis=2) > 0, np.abs(theirs.cfrc_ext).sum(axis=2) > 0)
    free = ~touching
    np.testing.assert_allclose(obs[free], obs_c[free], atol=1e-4, rtol=0)
    np.testing.assert_allclose(reward[free], reward_c[free], atol=1e-4, rtol=0)
    assert np.median(np.abs(ours.qpos - theirs.qpos)) < 1e-5
    assert np.median(np.abs(obs - obs_c)) < 1e-5
    assert np.corrcoef(ours.cfrc_ext[touching].ravel(), theirs.cfrc_ext[touching].ravel())[0, 1] > 0.95


def on_device(a):
    return np.ascontiguousarray(a).view(host_cupy.ndarray)


def host(a):
    return np.array(a.view(np.ndarray)) if isinstance(a, host_cupy.ndarray) else np.asarray(a)


class Host:
    """Host copies of a device world's fields, for comparing."""

    def __init__(self, worlds):
        self.qpos, self.cfrc_ext = host(worlds.qpos), host(worlds.cfrc_ext)


def touches(model, qpos, qvel, action, frame_skip):
    """Per world: whether C MuJoCo finds a contact in any substep of the env step."""
    import mujoco

    found = []
    for q, v, a in zip(qpos, qvel, action):
        d = mujoco.MjData(model)
        d.qpos[:], d.qvel[:], d.ctrl[:] = q, v, a
        mujoco.mj_forward(model, d)
        hit = d.ncon > 0
        for _ in range(frame_skip):
            mujoco.mj_step(model, d)
            hit |= d.ncon > 0
        found.append(hit)
    return np.array(found)


def population(task, P, seed=0, scale=0.5):
    net = task.default_net()
    layout = Layout(net.spec, random_mask(net.spec, 1.0, seed=1))
    mean = layout.flatten({k: v.astype(np.float64) for k, v in net.init(0).items()})
    pop = mean + scale * np.random.default_rng(seed).standard_normal((P, layout.dim))
    return net, layout, pop.astype(np.float32)


def rollouts(name, physics, P, E, max_steps, backend="numba", generation=0, norm_state=None):
    """Returns, lengths and the observation accumulator of one training rollout."""
    task = tasks.make(name, episodes=E, max_steps=max_steps, physics=physics)
    assert task.physics_for(backend) == ("mujoco" if physics == "mujoco" else "warp")
    net, layout, pop = population(task, P)
    if norm_state is not None:
        task.load_state_dict(norm_state)
    lengths, acc = np.zeros((P, E), dtype=np.int64), task.norm.accumulator()
    words = task.episode_words(0, generation, E)
    returns = task.rollout(net, layout, pop, words, backend, acc, lengths)
    return returns, lengths, acc


def warmed_norm(name):
    """Observation statistics after one C-MuJoCo generation: the normalizer's non-trivial path."""
    task = tasks.make(name, episodes=4, max_steps=20, physics="mujoco")
    net, layout, pop = population(task, 4, seed=7)
    task.evaluate(net, layout, pop, seed=3, update_norm=True)
    return task.state_dict()


def test_short_episodes_agree_with_c_mujoco_world_by_world(warp, cupy_backend):
    """The cupy path's default physics (MuJoCo Warp; on the host emulation, Warp's CPU device) against C MuJoCo:
    Walker2d over 40 steps, 4 distinct members × 4 episodes, normalized observations: every world's return
    within 1% (measured ≤ 3.5e-4 relative), equal episode lengths, and the same observations counted for the
    statistics (their sums within 1e-3 relative). A member paired with the wrong episode, a mis-sliced
    observation or a wrong normalization moves returns by far more."""
    norm = warmed_norm("Walker2d-v5")
    r_w, len_w, acc_w = rollouts("Walker2d-v5", "auto", 4, 4, 40, cupy_backend, norm_state=norm)
    r_c, len_c, acc_c = rollouts("Walker2d-v5", "mujoco", 4, 4, 40, norm_state=norm)
    np.testing.assert_array_equal(len_w, len_c)
    assert len(np.unique(len_c)) > 2  # members and episodes differ
    np.testing.assert_allclose(r_w, r_c, rtol=1e-2, atol=1e-2)
    assert acc_w.count == acc_c.count
    np.testing.assert_allclose(acc_w.sum, acc_c.sum, rtol=1e-3, atol=1e-3 * np.abs(acc_c.sum).max())
    np.testing.assert_allclose(acc_w.sumsq, acc_c.sumsq, rtol=1e-3)


@pytest.mark.slow
def test_ant_returns_agree_in_distribution(warp, cupy_backend):
    """Ant, a fixed policy, 64 episodes of 25 steps (2 members × 32 seeds): contacts make single trajectories
    diverge, so the returns are compared as samples: means within 4 standard errors (measured z = 0.34), spreads
    within 30%, mean lengths within 2 steps. Dropping the healthy reward (+1 a step) would move the mean by
    ~10 standard errors."""
    r_w, len_w, _ = rollouts("Ant-v5", "auto", 2, 32, 25, cupy_backend)
    r_c, len_c, _ = rollouts("Ant-v5", "mujoco", 2, 32, 25)
    se = np.sqrt(r_w.var(ddof=1) / r_w.size + r_c.var(ddof=1) / r_c.size)
    assert abs(r_w.mean() - r_c.mean()) < 4 * se, (r_w.mean(), r_c.mean(), se)
    assert 0.7 < r_w.std() / r_c.std() < 1.3
    assert abs(len_w.mean() - len_c.mean()) < 2


def test_reset_worlds_repeat_a_rollout_exactly(warp):
    """The worlds are kept between generations: a reset must clear everything a step leaves behind (warm
    starts, time, contacts), so the same rollout after another one gives the very same numbers."""
    task = tasks.make("Reacher-v5", episodes=2, max_steps=8, physics="warp")
    net, layout, pop = population(task, 2)
    first = task.rollout(net, layout, pop, task.episode_words(0, 0, 2))
    task.rollout(net, layout, pop[::-1].copy(), task.episode_words(0, 1, 2))
    np.testing.assert_array_equal(task.rollout(net, layout, pop, task.episode_words(0, 0, 2)), first)


@contextlib.contextmanager
def counting(moved):
    for log in host_cupy.transfers.values():
        log.clear()
    yield
    moved.update({k: list(v) for k, v in host_cupy.transfers.items()})


@pytest.mark.slow
def test_a_device_generation_moves_only_returns_and_a_poll_to_the_host(warp, host_device):
    """A whole ES generation on the cupy path (Hopper; host emulation of CuPy, physics on Warp's CPU device):
    down, one float64 array (returns, lengths, observation sums, overflow count) and one byte at step 25; up,
    nothing of the parameters' size. The returns equal the numba backend's on the same MuJoCo Warp physics."""
    P, E, T = 3, 2, 26
    task = tasks.make("Hopper-v5", episodes=E, max_steps=T)
    assert task.physics_for(host_device) == "warp"
    net, layout, pop = population(task, P)
    es = strategies.make("snes", layout.dim, P, seed=0, backend=host_device)
    es.mean = layout.flatten({k: v.astype(np.float64) for k, v in net.init(0).items()})
    task.evaluate(net, layout, es.ask(), seed=0, generation=0, backend=host_device, update_norm=True)
    state, moved = task.state_dict(), {}
    with counting(moved):
        pop = es.ask()
        fitness = task.evaluate(net, layout, pop, seed=0, generation=1, backend=host_device, update_norm=True)
        es.tell(fitness)
    n, obs = P * E, task.obs_dim
    assert sorted(moved["to_host"]) == [1, 8 * (2 * n + 2 * obs + 2)]
    nq_nv = task.model.nq + task.model.nv
    assert max(moved["to_device"]) <= 8 * max(E * nq_nv, 3 * obs, 4 * P)
    assert 8 * layout.dim > 20 * max(moved["to_device"])

    twin = tasks.make("Hopper-v5", episodes=E, max_steps=T, physics="warp")
    twin.load_state_dict(state)
    on_numba = twin.evaluate(net, layout, host_device.to_numpy(pop), seed=0, generation=1, update_norm=True)
    np.testing.assert_allclose(fitness, on_numba, rtol=1e-4)
    assert twin.norm.steps == task.norm.steps  # the same observations were counted for the statistics
    np.testing.assert_allclose(twin.norm.mean, task.norm.mean, rtol=1e-6)


def test_the_cupy_path_falls_back_to_c_mujoco_with_one_line_saying_why(warp, host_device, monkeypatch):
    humanoid = tasks.make("Humanoid-v5")
    with pytest.warns(PhysicsNotice, match="PGS") as caught:
        assert humanoid.physics_for(host_device) == "mujoco"
    assert "\n" not in str(caught[0].message)
    with pytest.raises(BackendUnavailable, match="PGS"):
        tasks.make("Humanoid-v5", physics="warp").physics_for("numba")
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)  # as if the gpu-physics extra were missing
    with pytest.warns(PhysicsNotice, match=r"esprune\[gpu-physics\]"):
        assert tasks.make("Hopper-v5").physics_for(host_device) == "mujoco"
    assert tasks.make("Hopper-v5").physics_for("numba") == "mujoco"  # CPU backends: C MuJoCo, no notice
    with pytest.raises(ConfigError, match="physics must be one of"):
        tasks.make("Hopper-v5", physics="brax")


def test_bench_row_w3_runs_on_mujoco_warp(warp):
    from esprune import backend
    from esprune.bench.generation import render
    from esprune.bench.locomotion import w3_row

    row = w3_row(backend.get("numba"), repeats=1, max_steps=3, popsize=2, episodes=2, physics="warp")
    assert row["physics"] == "warp:cpu" and row["env_steps"] == 2 * 2 * 3 and row["floor_steps_per_s"] > 0
    assert "W3 floor (warp:cpu)" in render({"peak": {}, "rows": [row]})
