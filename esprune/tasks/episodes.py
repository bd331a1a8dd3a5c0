"""What the episodic tasks with observation statistics share (the MuJoCo bodies and ``gym:<id>`` tasks): the
statistics as the task's part of the ES state, the episodes' seeds, and training and test returns over
``self.rollout``. A task using it provides ``prepare()``, ``norm`` (an ``ObsNormalizer``, ready after
``prepare``), ``episodes``, ``test_episodes`` and ``rollout(net, layout, pop, words, backend, acc)``.
"""
from __future__ import annotations

import numpy as np

from .. import noise

# Upper bounds of the episodic tasks' options (errors.bounded): far above any real use (the paper uses 8-64
# episodes and 1000-step horizons), low enough that a typo is refused with the config
MAX_EPISODES = 100_000
MAX_STEPS = 1_000_000


class NormalizedEpisodes:
    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The observation statistics: the task's part of the ES state."""
        self.prepare()
        return self.norm.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.prepare()
        self.norm.load_state_dict(state)

    def reset_state(self) -> None:
        """Fresh statistics, as at the start of every training run (IMP iteration) of the paper's code."""
        self.prepare()
        self.norm.reset()

    # ------------------------------------------------------------------------------------------ scoring
    def episode_words(self, seed: int, generation: int, episodes: int, stream: int = noise.RESET) -> np.ndarray:
        """``(episodes, 2)`` uint32: each row is one episode's Gymnasium seed (``mujoco_worlds.episode_seed``)."""
        return noise.philox_uint32(seed, generation, episodes, 2, stream=stream)

    def evaluate(self, net, layout, pop, seed: int, generation: int = 0, episodes: int | None = None,
                 backend="numba", update_norm: bool = False) -> np.ndarray:
        """Mean return per member ``(P,)`` float64 over this generation's shared training episodes.

        ``update_norm``: let these rollouts update the observation statistics (the training loop's call only).
        """
        self.prepare()
        words = self.episode_words(seed, generation, self.episodes if episodes is None else int(episodes))
        acc = self.norm.accumulator() if update_norm else None
        lengths = np.zeros((np.shape(pop)[0], len(words)), dtype=np.int64)
        returns = self.rollout(net, layout, pop, words, backend, acc, lengths)
        self.env_steps = int(lengths.sum())  # what this call stepped: run profiles (timing.work_of) read it
        if acc is not None:
            self.norm.update(acc)
        return returns.mean(axis=1)

    def score(self, net, layout, pop, seed: int, episodes: int | None = None, backend="numba") -> np.ndarray:
        """Test-time mean return per member over ``test_episodes`` episodes training never sees (paper: 64
        for locomotion); reads the statistics, never updates them."""
        words = self.episode_words(seed, 0, self.test_episodes if episodes is None else int(episodes),
                                   noise.TEST_RESET)
        return self.rollout(net, layout, pop, words, backend).mean(axis=1)
