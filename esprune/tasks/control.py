"""Classic-control tasks that score a whole population: mean return over shared episodes per member.

Every member sees the same reset states in a generation (common random numbers), drawn from esprune's
counter-based noise: training episodes from ``(seed, generation)`` on the RESET stream, test episodes from the
TEST_RESET stream, so a test score never reuses a training start. The test score averages ``test_episodes``
returns: 32 by default, the paper's ``n_evaluations`` for the classic-control (gym) configs (its Brax configs use
64).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend as _backend
from .. import noise
from ..errors import ConfigError, bounded
from ..nets import MLP
from ..ops import rollout as ops
from . import acrobot, cartpole, mountain_car, mountain_car_continuous, pendulum
from .episodes import MAX_EPISODES


TEST_EPISODES = 32  # the published gym.yaml: eval_config n_evaluations 32 × test_n_repeats 1


class ControlTask:
    """A classic-control environment. Discrete actions: argmax of the policy's outputs; continuous: its raw
    output, which the environment clips.

    Non-finite values follow one rule on every path (numpy reference, numba twin, CUDA kernel) and match
    Gymnasium for the same actions: a NaN stays NaN through tanh, relu (Python's ``max(v, 0)``, like
    ``np.maximum``) and every clip (``np.clip``); the discrete action is numpy's argmax, the first largest output
    or, when any output is NaN, the first NaN's index; a NaN continuous action enters the environment as NaN, so
    that episode's return is NaN (±inf actions are clipped as usual)."""

    kind = "control"

    def __init__(self, name, env, hidden=(64, 64), episodes: int = 8, test_episodes: int = TEST_EPISODES):
        self.name, self.env = name, env
        self.obs_dim, self.act_dim, self.max_steps = env.OBS_DIM, env.N_ACTIONS, env.MAX_STEPS
        self.obs_shape, self.continuous = (env.OBS_DIM,), env.CONTINUOUS
        self.hidden = tuple(hidden)
        self.episodes = bounded("episodes", episodes, MAX_EPISODES)
        self.test_episodes = bounded("test_episodes", test_episodes, MAX_EPISODES)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, episodes={self.episodes}, test_episodes={self.test_episodes})"

    def describe(self) -> dict:
        """What ``esprune tasks`` lists."""
        return {"kind": self.kind, "obs_shape": list(self.obs_shape), "act_dim": self.act_dim,
                "actions": "continuous (raw output, clipped)" if self.continuous else "discrete (argmax)",
                "horizon": self.max_steps, "episodes": self.episodes,
                "test_episodes": self.test_episodes, "default_net": repr(self.default_net())}

    def default_net(self) -> MLP:
        """The paper's policy: obs → 2×64 tanh → one output per action (continuous: the action itself)."""
        return MLP(self.obs_dim, self.hidden, self.act_dim, activation="tanh", head="linear")

    def resets(self, seed: int, generation: int, episodes: int, stream: int = noise.RESET) -> np.ndarray:
        """Initial states ``(episodes, state_dim)``, uniform on Gymnasium's reset box (rounded to float32 where
        Gymnasium stores them so)."""
        words = noise.philox_uint32(seed, generation, episodes, self.env.STATE_DIM, stream=stream)
        u = (words >> np.uint32(8)).astype(np.float64) * 2.0**-24
        states = self.env.RESET_LOW + (self.env.RESET_HIGH - self.env.RESET_LOW) * u
        return states.astype(np.float32).astype(np.float64) if self.env.RESET_FLOAT32 else states

    def evaluate(self, net, layout, pop, seed: int, generation: int = 0, episodes: int | None = None,
                 backend="numba") -> np.ndarray:
        """Mean return per member ``(P,)`` over this generation's shared training episodes."""
        episodes = self.episodes if episodes is None else int(episodes)
        return self._returns(net, layout, pop, self.resets(seed, generation, episodes), backend).mean(axis=1)

    def score(self, net, layout, pop, seed: int, episodes: int | None = None, backend="numba") -> np.ndarray:
        """Test-time mean return per member ``(P,)`` over ``episodes`` (default ``test_episodes``) episodes that
        training never sees."""
        episodes = self.test_episodes if episodes is None else int(episodes)
        resets = self.resets(seed, 0, episodes, noise.TEST_RESET)
        return self._returns(net, layout, pop, resets, backend).mean(axis=1)

    def _returns(self, net, layout, pop, resets, backend):
        be = _backend.get(backend)
        if net.activation not in ("tanh", "relu", "swish") or net.sizes[0] != self.obs_dim or net.sizes[-1] != self.act_dim:
            raise ConfigError(f"{self.name} needs a policy {self.obs_dim} → … → {self.act_dim}, got {net!r}")
        if net.activation == "swish":  # the paper's PPO policy: no fused kernel has swish, so Python steps it
            if be.name == "cupy":
                raise ConfigError("a swish policy runs on the numpy reference path only; use backend numba or numpy")
            return self.rollout_reference(net, layout, be.to_numpy(pop), resets)
        if be.name == "numpy":
            return self.rollout_reference(net, layout, be.to_numpy(pop), resets)
        # the whole episode in compiled code (on the device for cupy); only the returns come back
        xp = be.xp
        out = xp.zeros((2, pop.shape[0], len(resets)))  # returns and episode lengths: one transfer back
        ops.rollout(self.env, xp.ascontiguousarray(be.asarray(pop, dtype=np.float32)),
                    ops.policy_index(layout, net.n_layers, xp), net.activation == "tanh",
                    xp.asarray(resets, dtype=np.float64), self.max_steps, out[0], out[1], be)
        out = be.to_numpy(out)
        self.env_steps = int(out[1].sum())  # what the last call stepped: run profiles read it
        return out[0]

    def rollout_reference(self, net, layout, pop, resets) -> np.ndarray:
        """The oracle: Python steps the vectorized numpy environment; the policy is the batched forward."""
        P, E = pop.shape[0], len(resets)

        def act(obs):
            out = net.forward(layout, pop, obs.reshape(P, E, -1), backend="numba").reshape(P * E, -1)
            return out[:, 0] if self.continuous else np.argmax(out, axis=1)

        returns, self.env_steps = self.step_episodes(np.repeat(resets[None], P, axis=0).reshape(P * E, -1), act)
        return returns.reshape(P, E)

    def step_episodes(self, state, act) -> tuple[np.ndarray, int]:
        """Step the numpy environment from ``state`` ``(N, state_dim)`` until every episode ends or the horizon,
        with ``act(obs (N, obs_dim)) -> actions (N,)``; returns each episode's return ``(N,)`` and the env steps
        taken (ended episodes stop counting and their state is frozen)."""
        alive, returns, steps = np.ones(state.shape[0], dtype=bool), np.zeros(state.shape[0]), 0
        for _ in range(self.max_steps):
            steps += int(alive.sum())
            nxt, reward, terminated = self.env.step_reference(state, act(self.env.observe_reference(state)))
            returns += np.where(alive, reward, 0.0)
            state = np.where(alive[:, None], nxt, state)
            alive &= ~terminated
            if not alive.any():
                break
        return returns, steps


ENVIRONMENTS = {"CartPole-v1": cartpole, "Acrobot-v1": acrobot, "Pendulum-v1": pendulum,
                "MountainCar-v0": mountain_car, "MountainCarContinuous-v0": mountain_car_continuous}
TASKS = {name: functools.partial(ControlTask, name, env) for name, env in ENVIRONMENTS.items()}

