"""Classic-control tasks that score a whole population: mean return over shared episodes per member.

Every member sees the same reset states in a generation (common random numbers), drawn from esprune's
counter-based noise: training episodes from ``(seed, generation)`` on the RESET stream, test episodes from the
TEST_RESET stream, so a test score never reuses a training start.
"""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from .. import noise
from ..errors import ConfigError
from ..nets import MLP
from . import cartpole
from .rollout import make_fused_rollout, pack_policy

class DiscreteControlTask:
    """A discrete-action environment; the policy acts by the argmax of its outputs."""

    def __init__(self, name, env, hidden=(64, 64), episodes: int = 8):
        self.name, self.env = name, env
        self.obs_dim, self.act_dim, self.max_steps = env.OBS_DIM, env.N_ACTIONS, env.MAX_STEPS
        self.hidden, self.episodes = tuple(hidden), int(episodes)
        self._fused = make_fused_rollout(env.step, env.OBS_DIM)

    def default_net(self) -> MLP:
        """The paper's policy: obs → 2×64 tanh → one output per action."""
        return MLP(self.obs_dim, self.hidden, self.act_dim, activation="tanh", head="linear")

    def resets(self, seed: int, generation: int, episodes: int, stream: int = noise.RESET) -> np.ndarray:
        """Initial states ``(episodes, state_dim)``, uniform on Gymnasium's reset interval."""
        words = noise.philox_uint32(seed, generation, episodes, self.obs_dim, stream=stream)
        u = (words >> np.uint32(8)).astype(np.float64) * 2.0**-24
        return self.env.RESET_LOW + (self.env.RESET_HIGH - self.env.RESET_LOW) * u

    def evaluate(self, net, layout, pop, seed: int, generation: int = 0, episodes: int | None = None,
                 backend="numba") -> np.ndarray:
        """Mean return per member ``(P,)`` over this generation's shared training episodes."""
        episodes = self.episodes if episodes is None else int(episodes)
        return self._returns(net, layout, pop, self.resets(seed, generation, episodes), backend).mean(axis=1)

    def score(self, net, layout, pop, seed: int, episodes: int = 16, backend="numba") -> np.ndarray:
        """Test-time mean return per member on episodes training never sees."""
        resets = self.resets(seed, 0, episodes, noise.TEST_RESET)
        return self._returns(net, layout, pop, resets, backend).mean(axis=1)

    def _returns(self, net, layout, pop, resets, backend):
        be = _backend.get(backend)
        if net.activation not in ("tanh", "relu") or net.sizes[0] != self.obs_dim or net.sizes[-1] != self.act_dim:
            raise ConfigError(f"{self.name} needs a policy {self.obs_dim} → … → {self.act_dim}, got {net!r}")
        pop = be.to_numpy(pop)
        if be.name == "numpy":
            return self.rollout_reference(net, layout, pop, resets)
        returns = np.zeros((pop.shape[0], len(resets)))
        self._fused(pack_policy(layout, pop, net.n_layers), np.asarray(net.sizes, dtype=np.int64),
                    net.activation == "tanh", resets, self.max_steps, returns)
        return returns

    def rollout_reference(self, net, layout, pop, resets) -> np.ndarray:
        """The oracle: Python steps the vectorized numpy environment; the policy is the batched forward."""
        P, E = pop.shape[0], len(resets)
        state = np.repeat(resets[None], P, axis=0).reshape(P * E, -1)
        alive = np.ones(P * E, dtype=bool)
        returns = np.zeros(P * E)
        for _ in range(self.max_steps):
            obs = state.astype(np.float32).reshape(P, E, -1)
            logits = net.forward(layout, pop, obs, backend="numba").reshape(P * E, -1)
            nxt, reward, terminated = self.env.step_reference(state, np.argmax(logits, axis=1))
            returns += np.where(alive, reward, 0.0)
            state = np.where(alive[:, None], nxt, state)
            alive &= ~terminated
            if not alive.any():
                break
        return returns.reshape(P, E)


TASKS = {"CartPole-v1": lambda **kw: DiscreteControlTask("CartPole-v1", cartpole, **kw)}


def make(name: str, **options):
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; available: {', '.join(TASKS)}")
    return TASKS[name](**options)
