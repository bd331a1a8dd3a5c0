"""The locomotion rollout with the worlds on MuJoCo Warp: physics, rules and policy on one device.

All P·E worlds are stepped every step (MuJoCo Warp steps its whole batch anyway); a world whose episode ended
gets zero controls and its rewards, lengths and observation statistics are masked out. Each step the policy reads
the normalized observations and writes the controls without leaving the device: MuJoCo Warp's arrays are viewed
as CuPy arrays (``warp_worlds``), the Gymnasium rules (``mujoco_bodies``, the C path's very functions) run as
CuPy array code on them, and the policy is esprune's CUDA kernels (``MLP.forward``). On Warp's CPU device the
same code runs on host memory (the tests' stand-in for CuPy, or plain numpy with ``physics="warp"`` on a CPU
backend).

What crosses between host and device per rollout: up, the E episodes' start states ``(E, nq + nv)`` and the
normalizer's mean, scale and the accumulator's mean ``(3, obs_dim)``, float64; down, one float64 array holding
the P·E returns and episode lengths, the accumulated observation sums ``(2·obs_dim + 1)`` and the number of
worlds that overflowed MuJoCo Warp's contact or constraint capacity while running; and one byte every ``POLL``
steps (is any episode still running? if none, the rollout stops early, as the C path does). The policy's
parameters never leave the device.
"""
from __future__ import annotations

import numpy as np

from .mujoco_worlds import episode_rngs
from .obs_norm import CLIP

POLL = 25  # steps between the one-byte checks for "every episode ended"
ALL = slice(None)  # the body rules' ``ids``: every world


class CapacityOverflow(RuntimeError):
    """MuJoCo Warp dropped contacts or constraint rows in a running episode: its physics is not MuJoCo's."""


def rollout(task, worlds, net, layout, pop, words, be, acc=None, lengths=None) -> np.ndarray:
    """``(P, E)`` float64 returns of every member on the episodes seeded by ``words`` ``(E, 2)`` uint32, as
    ``LocomotionTask.rollout`` (same starts, rules, normalization, truncation), physics on ``worlds``
    (:class:`~.warp_worlds.WarpWorlds` of P·E worlds). ``pop`` ``(P, d)`` float32 on ``be``'s device.

    ``acc``: an ``ObsNormalizer.accumulator`` to add the counted observations to; ``lengths``: int ``(P, E)``
    receiving the episode lengths. Raises :class:`CapacityOverflow` when a running world overflowed.
    """
    body, model, xp = task.body, task.model, be.xp
    P, E, obs_dim = pop.shape[0], len(words), task.obs_dim
    n = P * E
    starts = [body.reset(rng, model.qpos0.copy(), np.zeros(model.nv)) for rng in episode_rngs(words)]
    starts = np.concatenate([np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts])], axis=1)
    mean, scale = task.norm.moments()
    moments = np.stack([mean, scale, acc.mean if acc is not None else mean])
    dt = model.opt.timestep * body.frame_skip
    with worlds.on_stream():
        starts, moments = be.asarray(starts), be.asarray(moments)
        starts = xp.tile(starts, (P, 1))  # world p·E + e runs episode e, as on the C path
        worlds.reset(starts[:, :model.nq], starts[:, model.nq:])
        alive = xp.ones(n, dtype=bool)
        overflowed = xp.zeros(n, dtype=bool)
        returns, steps = xp.zeros(n), xp.zeros(n)
        sums, count = xp.zeros((2, obs_dim)), xp.zeros(1)
        obs = body.observe(worlds, ALL)
        for t in range(task.max_steps):
            x = _normalize(xp, obs, moments, task.norm.enabled).reshape(P, E, obs_dim)
            action = net.forward(layout, pop, x, backend=be).reshape(n, task.act_dim)
            worlds.ctrl[...] = xp.where(alive[:, None], action, 0.0)
            before = body.position(worlds, ALL) if body.position else None
            worlds.step(body.frame_skip)
            reward, terminated = body.reward(worlds, ALL, action, before, dt)
            overflowed |= alive & (worlds.capacity_overflow() != 0)
            returns += xp.where(alive, reward, 0.0)
            steps += alive
            if acc is not None and t + 1 < task.max_steps:  # evojax counts obs whose step did not end the episode
                counted = alive & ~terminated
                dev = xp.where(counted[:, None], obs - moments[2], 0.0)
                sums += xp.stack([dev.sum(axis=0), (dev * dev).sum(axis=0)])
                count += counted.sum()
            alive &= ~terminated
            if (t + 1) % POLL == 0 and t + 1 < task.max_steps and not be.to_numpy(alive.any(keepdims=True))[0]:
                break
            obs = body.observe(worlds, ALL)
        out = be.to_numpy(xp.concatenate([returns, steps, sums.ravel(), count,
                                          overflowed.sum(keepdims=True).astype(xp.float64)]))
    returns, steps = out[:n], out[n:2 * n]
    if out[-1]:
        raise CapacityOverflow(f"{task.name}: MuJoCo Warp ran out of contact or constraint capacity in "
                               f"{int(out[-1])} of {n} running worlds; its results are not MuJoCo's")
    if acc is not None:
        s = out[2 * n:2 * n + 2 * obs_dim].reshape(2, obs_dim)
        acc.sum += s[0]
        acc.sumsq += s[1]
        acc.count += int(out[-2])
    if lengths is not None:
        lengths[...] = steps.reshape(P, E)
    return returns.reshape(P, E)


def _normalize(xp, obs, moments, enabled):
    """``ObsNormalizer.normalize`` on the device: the same formula, float64 arithmetic, float32 out."""
    if not enabled:
        return obs.astype(xp.float32)
    return xp.clip((obs - moments[0]) / moments[1], -CLIP, CLIP).astype(xp.float32)
