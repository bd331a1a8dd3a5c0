"""Any Gymnasium environment as an esprune task (``gym:<env id>``), through Gymnasium's vector API.

This is the slow path, for users' own environments (registered by their package on import, named with
``env_module``): every step goes through Python and Gymnasium's ``SyncVectorEnv``, and finished episodes keep
being stepped (the vector API steps all sub-environments; their rewards are no longer counted). The built-in
bodies (``Ant-v5`` ...) are much faster. Runs, run files and analyses are those of any task.

P members × E episodes are P·E sub-environments; episode e of every member starts from Gymnasium's
``reset(seed=s_e)`` with ``s_e`` from esprune's counter-based noise, as in the locomotion tasks. Observations
must be flat boxes; actions a box (the policy's tanh outputs, passed as they are: the environment clips or
clamps as it would any action) or discrete (argmax of a linear output layer). Observation normalization
(evojax's, off by default) is the locomotion tasks' and is state of the run in the same way.
"""
from __future__ import annotations

import importlib

import numpy as np

from .. import backend as _backend
from ..errors import ConfigError, UserError, bounded
from ..nets import MLP
from .episodes import MAX_EPISODES, MAX_STEPS, NormalizedEpisodes
from .mujoco_worlds import episode_seed
from .obs_norm import ObsNormalizer

PREFIX = "gym:"


class GymVectorTask(NormalizedEpisodes):
    kind = "gym"

    def __init__(self, env_id: str, episodes: int = 8, test_episodes: int = 16, max_steps: int | None = None,
                 obs_norm: bool = False, hidden=(32, 32), env_module: str | None = None, env_options=None):
        self.env_id, self.name = env_id, PREFIX + env_id
        self.episodes = bounded("episodes", episodes, MAX_EPISODES)
        self.test_episodes = bounded("test_episodes", test_episodes, MAX_EPISODES)
        if max_steps is not None:
            max_steps = bounded("max_steps", max_steps, MAX_STEPS)
        self.hidden, self.env_module, self.env_options = tuple(int(h) for h in hidden), env_module, dict(env_options or {})
        self._max_steps, self._spaces = max_steps, None
        self._obs_norm = bool(obs_norm)
        self.norm = None

    def __repr__(self):
        return f"GymVectorTask({self.env_id!r}, episodes={self.episodes})"

    # ------------------------------------------------------------------------------------------ the environment
    def prepare(self):
        """Make one environment to learn its spaces and horizon; an unknown id is a one-line error."""
        if self._spaces is None:
            gym = _gymnasium()
            if self.env_module:
                try:
                    importlib.import_module(self.env_module)
                except ImportError as err:
                    raise UserError(f"env_module {self.env_module!r} cannot be imported: {err}") from None
            try:
                env = gym.make(self.env_id, **self.env_options)
            except gym.error.Error as err:
                raise ConfigError(f"gym:{self.env_id}: {err}") from None
            obs, act = env.observation_space, env.action_space
            env.close()
            if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
                raise ConfigError(f"gym:{self.env_id} has observations {obs}; esprune needs a flat Box")
            if isinstance(act, gym.spaces.Discrete):
                act_dim, continuous = int(act.n), False
            elif isinstance(act, gym.spaces.Box) and len(act.shape) == 1:
                act_dim, continuous = int(act.shape[0]), True
            else:
                raise ConfigError(f"gym:{self.env_id} has actions {act}; esprune needs a flat Box or Discrete")
            horizon = self._max_steps or (env.spec.max_episode_steps if env.spec else None)
            if not horizon or int(horizon) < 1:
                raise ConfigError(f"gym:{self.env_id} registers no max_episode_steps; give the task option "
                                  "max_steps")
            self._spaces = (int(obs.shape[0]), act_dim, continuous, int(horizon))
            self.norm = ObsNormalizer(self._spaces[0], enabled=self._obs_norm)
        return self._spaces

    @property
    def obs_dim(self):
        return self.prepare()[0]

    @property
    def act_dim(self):
        return self.prepare()[1]

    @property
    def max_steps(self):
        return self.prepare()[3]

    def describe(self) -> dict:
        obs_dim, act_dim, continuous, horizon = self.prepare()
        return {"kind": self.kind, "obs_shape": [obs_dim], "act_dim": act_dim,
                "actions": "continuous (tanh output)" if continuous else "discrete (argmax)", "horizon": horizon,
                "episodes": self.episodes, "test_episodes": self.test_episodes,
                "default_net": repr(self.default_net()), "note": "Gymnasium vector API: Python-stepped, the slow path"}

    def default_net(self) -> MLP:
        obs_dim, act_dim, continuous, _ = self.prepare()
        return MLP(obs_dim, self.hidden, act_dim, activation="tanh", head="tanh" if continuous else "linear")

    # ------------------------------------------------------------------------------------------ rollouts
    def rollout(self, net, layout, pop, words, backend="numba", acc=None, lengths=None) -> np.ndarray:
        """Returns ``(P, E)`` of every member on the episodes seeded by ``words``; ``acc`` and ``lengths`` as in
        ``LocomotionTask.rollout``."""
        obs_dim, act_dim, continuous, horizon = self.prepare()
        be = _backend.get(backend)
        pop = be.asarray(pop, dtype=np.float32)
        P, E = pop.shape[0], len(words)
        n = P * E
        envs = _gymnasium().make_vec(self.env_id, num_envs=n, vectorization_mode="sync", **self.env_options)
        try:
            obs, _ = envs.reset(seed=[episode_seed(words[w % E]) for w in range(n)])
            alive = np.ones(n, dtype=bool)
            returns, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
            for t in range(horizon):
                x = self.norm.normalize(np.asarray(obs, dtype=np.float64)).reshape(P, E, obs_dim)
                out = be.to_numpy(net.forward(layout, pop, be.asarray(x), backend=be)).reshape(n, act_dim)
                action = out if continuous else np.argmax(out, axis=1)
                nxt, reward, terminated, truncated, _ = envs.step(action)
                ended = np.asarray(terminated) | np.asarray(truncated) | (t + 1 == horizon)
                returns[alive] += np.asarray(reward, dtype=np.float64)[alive]
                steps[alive] += 1
                if acc is not None:  # as evojax: the observations whose step did not end the episode
                    acc.add(np.asarray(obs, dtype=np.float64)[alive & ~ended])
                alive &= ~ended
                if not alive.any():
                    break
                obs = nxt
        finally:
            envs.close()
        if lengths is not None:
            lengths[...] = steps.reshape(P, E)
        return returns.reshape(P, E)


def _gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise UserError("gym: tasks need Gymnasium: pip install gymnasium (or 'esprune[mujoco]')") from None
    return gymnasium


def make(name: str, **options) -> GymVectorTask:
    return GymVectorTask(name[len(PREFIX):], **options)
