"""The six Gymnasium v5 bodies' rules — resets, observations, rewards, termination — vectorized over worlds.

Each function is a transcription of ``gymnasium/envs/mujoco/<body>_v5.py`` (Gymnasium 1.4) with the default
keyword arguments, written so that every number equals Gymnasium's bit for bit: the same operations in the same
order and dtypes. In particular the control cost is taken on the float32 action, so NumPy computes it in
float32 (``0.5 * np.float32`` stays float32), except Humanoid's, which reads the float64 ``data.ctrl``; resets
draw from the episode's Gymnasium generator in Gymnasium's order.

The same functions score MuJoCo Warp's worlds on the cupy backend (:mod:`.warp_rollout`): there ``ids`` is
``slice(None)`` and the fields are device arrays, so the rules use only NumPy functions that dispatch to CuPy
(``__array_function__``) and take sizes from arrays, never from ``ids``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Body:
    """One body's rules. ``position(worlds, ids)`` is what its forward velocity differentiates."""

    xml: str
    frame_skip: int
    obs_dim: int
    act_dim: int
    max_steps: int  # Gymnasium's max_episode_steps (TimeLimit)
    reset: Callable
    observe: Callable
    reward: Callable  # (worlds, ids, action, before, dt) -> (reward float64 (k,), terminated bool (k,))
    position: Callable | None = None
    fields: tuple = ()
    contact_forces: bool = False


def _ctrl_cost(weight, action):
    """``weight * np.sum(np.square(action))`` per row; float32 in, float32 out, as Gymnasium's scalar."""
    return weight * np.sum(np.square(action), axis=1)


# ---------------------------------------------------------------------------------------------- resets
def _reset_uniform_normal(scale):
    """Ant, HalfCheetah: qpos + U(−s, s), qvel + s·N(0, 1)."""
    def reset(rng, init_qpos, init_qvel):
        qpos = init_qpos + rng.uniform(low=-scale, high=scale, size=init_qpos.size)
        qvel = init_qvel + scale * rng.standard_normal(init_qvel.size)
        return qpos, qvel
    return reset


def _reset_uniform(scale):
    """Hopper, Walker2d, Humanoid: qpos + U(−s, s), qvel + U(−s, s)."""
    def reset(rng, init_qpos, init_qvel):
        qpos = init_qpos + rng.uniform(low=-scale, high=scale, size=init_qpos.size)
        qvel = init_qvel + rng.uniform(low=-scale, high=scale, size=init_qvel.size)
        return qpos, qvel
    return reset


def _reset_reacher(rng, init_qpos, init_qvel):
    """Arm angles U(−0.1, 0.1); the goal uniform on the disc of radius 0.2 by rejection; velocities small."""
    qpos = rng.uniform(low=-0.1, high=0.1, size=init_qpos.size) + init_qpos
    while True:
        goal = rng.uniform(low=-0.2, high=0.2, size=2)
        if np.linalg.norm(goal) < 0.2:
            break
    qpos[-2:] = goal
    qvel = init_qvel + rng.uniform(low=-0.005, high=0.005, size=init_qvel.size)
    qvel[-2:] = 0
    return qpos, qvel


# ---------------------------------------------------------------------------------------------- Ant
def _ant_observe(w, ids):
    contact = np.clip(w.cfrc_ext[ids], -1.0, 1.0)
    return np.concatenate((w.qpos[ids, 2:], w.qvel[ids], contact[:, 1:].reshape(len(contact), -1)), axis=1)


def _ant_reward(w, ids, action, before, dt):
    after = w.xpos[ids, 1, :2].copy()
    x_velocity = ((after - before) / dt)[:, 0]
    qpos, qvel = w.qpos[ids], w.qvel[ids]
    state = np.concatenate((qpos, qvel), axis=1)
    healthy = np.isfinite(state).all(axis=1) & (0.2 <= state[:, 2]) & (state[:, 2] <= 1.0)
    rewards = x_velocity * 1 + healthy * 1.0
    contact = np.clip(w.cfrc_ext[ids], -1.0, 1.0)
    contact = contact.reshape(len(contact), -1)
    costs = _ctrl_cost(0.5, action) + 5e-4 * np.sum(np.square(contact), axis=1)
    return rewards - costs, ~healthy


# ---------------------------------------------------------------------------------------------- HalfCheetah
def _cheetah_observe(w, ids):
    return np.concatenate((w.qpos[ids, 1:], w.qvel[ids]), axis=1)


def _cheetah_reward(w, ids, action, before, dt):
    x_velocity = (w.qpos[ids, 0] - before) / dt
    return 1.0 * x_velocity - _ctrl_cost(0.1, action), np.zeros_like(x_velocity, dtype=bool)


# ---------------------------------------------------------------------------------------------- Hopper, Walker2d
def _planar_observe(w, ids):
    return np.concatenate((w.qpos[ids, 1:], np.clip(w.qvel[ids], -10, 10)), axis=1)


def _hopper_healthy(qpos, qvel):
    state = np.concatenate((qpos, qvel), axis=1)[:, 2:]
    z, angle = qpos[:, 1], qpos[:, 2]
    healthy_state = np.all(np.logical_and(-100.0 < state, state < 100.0), axis=1)
    return healthy_state & (0.7 < z) & (z < float("inf")) & (-0.2 < angle) & (angle < 0.2)


def _walker_healthy(qpos, qvel):
    z, angle = qpos[:, 1], qpos[:, 2]
    return (0.8 < z) & (z < 2.0) & (-1.0 < angle) & (angle < 1.0)


def _planar_reward(healthy_fn):
    def reward(w, ids, action, before, dt):
        qpos = w.qpos[ids]
        x_velocity = (qpos[:, 0] - before) / dt
        healthy = healthy_fn(qpos, w.qvel[ids])
        rewards = 1.0 * x_velocity + healthy * 1.0
        return rewards - _ctrl_cost(0.001, action), ~healthy
    return reward


# ---------------------------------------------------------------------------------------------- Reacher
def _reacher_ids(model):
    return model.body("fingertip").id, model.body("target").id


def _reacher_observe(w, ids):
    qpos = w.qpos[ids]
    theta = qpos[:, :2]
    tip, target = _reacher_ids(w.model)
    vec = w.xpos[ids, tip] - w.xpos[ids, target]
    return np.concatenate((np.cos(theta), np.sin(theta), qpos[:, 2:], w.qvel[ids, :2], vec[:, :2]), axis=1)


def _reacher_reward(w, ids, action, before, dt):
    tip, target = _reacher_ids(w.model)
    vec = w.xpos[ids, tip] - w.xpos[ids, target]
    if type(vec) is np.ndarray:
        # np.linalg.norm of a 3-vector is sqrt(x.dot(x)), and dot's order (BLAS, fused multiply-adds) is not a
        # vectorized expression's: take each world's dot as Gymnasium does
        norm = np.sqrt(np.array([v.dot(v) for v in vec]))
    else:  # device arrays (MuJoCo Warp's float32 physics, warp_worlds): no row loop, rounding order moot
        norm = np.sqrt(np.sum(vec * vec, axis=1))
    reward_dist = -norm * 1
    reward_ctrl = -np.sum(np.square(action), axis=1) * 1
    return reward_dist + reward_ctrl, np.zeros_like(norm, dtype=bool)


# ---------------------------------------------------------------------------------------------- Humanoid
def _humanoid_position(w, ids):
    """Gymnasium's ``mass_center``: einsum("b,bj->j", body_mass, xipos) / body_mass.sum(), x and y."""
    mass = w.model.body_mass
    return (np.einsum("b,nbj->nj", mass, w.xipos[ids]) / mass.sum())[:, 0:2].copy()


def _humanoid_observe(w, ids):
    n = len(ids)
    return np.concatenate((w.qpos[ids, 2:], w.qvel[ids], w.cinert[ids, 1:].reshape(n, -1),
                           w.cvel[ids, 1:].reshape(n, -1), w.qfrc_actuator[ids, 6:],
                           w.cfrc_ext[ids, 1:].reshape(n, -1)), axis=1)


def _humanoid_reward(w, ids, action, before, dt):
    x_velocity = ((_humanoid_position(w, ids) - before) / dt)[:, 0]
    z = w.qpos[ids, 2]
    healthy = (1.0 < z) & (z < 2.0)
    rewards = 1.25 * x_velocity + healthy * 5.0
    ctrl_cost = 0.1 * np.sum(np.square(w.ctrl[ids]), axis=1)
    contact_cost = np.clip(5e-7 * np.sum(np.square(w.cfrc_ext[ids].reshape(len(ids), -1)), axis=1), -np.inf, 10.0)
    return rewards - (ctrl_cost + contact_cost), ~healthy


BODIES = {
    "Ant-v5": Body("ant.xml", 5, 105, 8, 1000, _reset_uniform_normal(0.1), _ant_observe, _ant_reward,
                   position=lambda w, ids: w.xpos[ids, 1, :2].copy(), fields=("xpos",), contact_forces=True),
    "HalfCheetah-v5": Body("half_cheetah.xml", 5, 17, 6, 1000, _reset_uniform_normal(0.1), _cheetah_observe,
                           _cheetah_reward, position=lambda w, ids: w.qpos[ids, 0].copy()),
    "Hopper-v5": Body("hopper.xml", 4, 11, 3, 1000, _reset_uniform(0.005), _planar_observe,
                      _planar_reward(_hopper_healthy), position=lambda w, ids: w.qpos[ids, 0].copy()),
    "Walker2d-v5": Body("walker2d_v5.xml", 4, 17, 6, 1000, _reset_uniform(0.005), _planar_observe,
                        _planar_reward(_walker_healthy), position=lambda w, ids: w.qpos[ids, 0].copy()),
    "Reacher-v5": Body("reacher.xml", 2, 10, 2, 50, _reset_reacher, _reacher_observe, _reacher_reward,
                       fields=("xpos",)),
    "Humanoid-v5": Body("humanoid.xml", 5, 348, 17, 1000, _reset_uniform(0.01), _humanoid_observe,
                        _humanoid_reward, position=_humanoid_position,
                        fields=("xipos", "cinert", "cvel", "qfrc_actuator"), contact_forces=True),
}
