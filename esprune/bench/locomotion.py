"""Workload W3 of ``esprune bench generation``: whole ES generations on Ant-v5 (MuJoCo), beside the floor.

W3: Ant-v5, policy 105→32→32→8 tanh (the paper's), Sep-CMA-ES, P=256, 8 episodes (2048 worlds), training
rollouts with observation normalization. Episodes are cut to ``max_steps`` (default 50) so that a row takes
seconds, not the minutes of the paper's 500 steps: the rate per environment step is what is measured, and Ant
rarely falls early, so nearly every world runs every step. The floor is MuJoCo's own batched stepping of the
same 2048 worlds (``mujoco.batch.Batch``, same threads, same frame skip, no policy, no contact-force pass,
no observations), timed in the same run; ``frac_floor`` = env steps/s of the generation ÷ the floor's.

With MuJoCo Warp (``physics="warp"``, or ``"auto"`` on the cupy backend) the generation is the device rollout
(``tasks.warp_rollout``: every world stepped every step, policy and rules on the device) and the floor is MuJoCo
Warp's own stepping of the same worlds (``WarpWorlds.step``, random controls uploaded before the clock starts);
the row's ``physics`` names which ran and where (``warp:cpu`` is Warp's CPU device, ``warp:cuda:0`` a GPU).
"""
from __future__ import annotations

import numpy as np

from .. import strategies, tasks
from .common import random_mask, timeit
from ..params import Layout

NAME = "Ant-v5 105-32-32-8 sep_cma_es P=256 E=8"
P, EPISODES = 256, 8


def w3_row(be, density: float = 1.0, repeats: int = 3, max_steps: int = 50, popsize: int = P,
           episodes: int = EPISODES, physics: str = "auto") -> dict:
    """One row: seconds per generation (ask → rollouts → normalizer update → tell), env steps/s and the floor.
    ``physics``: the task option (auto, mujoco, warp). ``popsize`` and ``episodes`` other than W3's are for
    tests."""
    task = tasks.make("Ant-v5", episodes=episodes, max_steps=max_steps, physics=physics)
    net = task.default_net()
    layout = Layout(net.spec, random_mask(net.spec, density))
    es = strategies.make("sep_cma_es", layout.dim, popsize, seed=0, backend=be, sigma_init=0.1, elite_ratio=0.5)
    es.mean = layout.flatten({k: v.astype(np.float64) for k, v in net.init(0).items()})
    state = {"g": 0, "steps": 0}

    def one_generation():
        lengths = np.zeros((popsize, episodes), dtype=np.int64)
        acc = task.norm.accumulator()
        words = task.episode_words(0, state["g"], episodes)
        returns = task.rollout(net, layout, es.ask(), words, be, acc, lengths)
        task.norm.update(acc)
        es.tell(returns.mean(axis=1))
        state["g"] += 1
        state["steps"] = int(lengths.sum())

    t = timeit(one_generation, repeats, be)
    steps = state["steps"]
    if task.physics_for(be) == "warp":
        worlds = task.warp_worlds_for(popsize * episodes, be)
        floor, engine = _warp_floor(task, worlds, be, repeats, max_steps), f"warp:{worlds.device}"
    else:
        from ..tasks.mujoco_worlds import Worlds, physics_threads

        floor = _floor(task, Worlds, popsize * episodes, physics_threads(be), repeats, max_steps)
        engine = "mujoco"
    rate = steps / t["median_s"]
    name = NAME if (popsize, episodes) == (P, EPISODES) else f"Ant-v5 sep_cma_es P={popsize} E={episodes}"
    return {"suite": "generation", "workload": f"W3 {name}", "backend": be.name, "density": density,
            "physics": engine, "active_weights": layout.mask.kept, "dim": layout.dim, **t, "max_steps": max_steps,
            "env_steps": float(steps), "steps_per_s": rate, "floor_steps_per_s": floor, "frac_floor": rate / floor}


def _floor(task, Worlds, n: int, threads: int, repeats: int, max_steps: int) -> float:
    """Env steps/s of MuJoCo's batched stepping alone: ``n`` worlds from the model's initial state, random
    controls, ``max_steps`` steps of ``frame_skip`` substeps; median over ``repeats`` after a warm-up."""
    import statistics
    import time

    model, body = task.model, task.body
    worlds = Worlds(model, n, threads)
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(-1.0, 1.0, (max_steps, n, model.nu))
    starts = np.tile(model.qpos0, (n, 1)), np.zeros((n, model.nv))
    ids = np.arange(n)
    rates = []
    for r in range(repeats + 1):
        worlds.reset(ids, *starts)
        t0 = time.perf_counter()
        for t in range(max_steps):
            worlds.step(ids, ctrl[t], body.frame_skip)
        if r:
            rates.append(n * max_steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def _warp_floor(task, worlds, be, repeats: int, max_steps: int) -> float:
    """Env steps/s of MuJoCo Warp's stepping alone (``_floor``'s measure for the device worlds): from the model's
    initial state, random controls uploaded before the clock starts, the device synchronised before reading it."""
    import statistics
    import time

    model, body, n = task.model, task.body, worlds.n
    rng = np.random.default_rng(0)
    rates = []
    with worlds.on_stream():
        ctrl = be.asarray(rng.uniform(-1.0, 1.0, (max_steps, n, model.nu)).astype(np.float32))
        starts = be.asarray(np.tile(np.concatenate([model.qpos0, np.zeros(model.nv)]), (n, 1)))
        for r in range(repeats + 1):
            worlds.reset(starts[:, :model.nq], starts[:, model.nq:])
            be.synchronize()
            t0 = time.perf_counter()
            for t in range(max_steps):
                worlds.ctrl[...] = ctrl[t]
                worlds.step(body.frame_skip)
            be.synchronize()
            if r:
                rates.append(n * max_steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def render_floor(rows) -> list[str]:
    return [f"W3 floor ({r.get('physics', 'mujoco')}): the physics' batched stepping of the same worlds, "
            f"{r['floor_steps_per_s']:.3g} "
            f"env steps/s; the generation reaches {100 * r['frac_floor']:.0f}% of it ({r['max_steps']}-step episodes)"
            for r in rows if "floor_steps_per_s" in r]
