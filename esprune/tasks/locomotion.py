"""Locomotion tasks on MuJoCo (Gymnasium v5 bodies) that score a whole population at once.

P members × E episodes are P·E worlds of one :class:`~.mujoco_worlds.Worlds`, stepped together on MuJoCo's
thread pool (as many threads as the backend's: numba's thread count). Each step the policy runs for every
member with a live episode in one batched forward (``MLP.forward`` on esprune's kernels, any backend); worlds
whose episode ended are no longer stepped, observed or evaluated. Every member sees the same E episodes
(common random numbers): episode e starts as Gymnasium's ``reset(seed=s_e)``, with ``s_e`` drawn from esprune's
counter-based noise (training: RESET stream of ``(seed, generation)``; test: TEST_RESET of ``(seed, 0)``).

Physics (``physics=``): ``"auto"`` steps the worlds with MuJoCo Warp on the cupy backend (:mod:`.warp_rollout`:
physics, rules and policy on the GPU, no host round trip) when the ``gpu-physics`` extra is installed and the
body is supported, else with C MuJoCo (a one-line notice says why, once); ``"mujoco"`` always C MuJoCo (the
Gymnasium-exact physics); ``"warp"`` always MuJoCo Warp (float32: a separate physics, not Gymnasium-exact), also
beside a CPU backend, on Warp's CPU device.

Observations are normalized as in the paper's code (:mod:`.obs_norm`): statistics updated by training rollouts
only (``evaluate(..., update_norm=True)``), read by test episodes. They are state of the run:
``state_dict`` / ``load_state_dict`` / ``reset_state`` let the experiment checkpoint and store them.
"""
from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np

from .. import backend as _backend
from ..errors import BackendUnavailable, ConfigError, bounded, written
from ..nets import MLP
from .episodes import MAX_EPISODES, MAX_STEPS, NormalizedEpisodes
from .mujoco_bodies import BODIES
from .mujoco_worlds import Worlds, episode_rngs, load_model, physics_threads, require
from .obs_norm import ObsNormalizer


PHYSICS = ("auto", "mujoco", "warp")


class LocomotionTask(NormalizedEpisodes):
    """One Gymnasium v5 body. Actions: the policy's tanh outputs in [−1, 1] (MuJoCo clamps to the actuators'
    ctrlrange, as in Gymnasium)."""

    kind = "locomotion"

    def __init__(self, name: str, episodes: int = 8, test_episodes: int = 64, max_steps: int | None = None,
                 obs_norm: bool = True, hidden=(32, 32), torso_mass_scale: float = 1.0, physics: str = "auto"):
        self.name, self.body = name, BODIES[name]
        self.episodes = bounded("episodes", episodes, MAX_EPISODES)
        self.test_episodes = bounded("test_episodes", test_episodes, MAX_EPISODES)
        self.max_steps = self.body.max_steps if max_steps is None else bounded("max_steps", max_steps, MAX_STEPS)
        if not float(torso_mass_scale) > 0:
            raise ConfigError(f"torso_mass_scale must be positive, got {torso_mass_scale}")
        if float(torso_mass_scale) != 1.0 and name == "Reacher-v5":
            raise ConfigError("Reacher-v5 has no torso; torso_mass_scale applies to the walking bodies")
        self.torso_mass_scale = float(torso_mass_scale)
        if physics not in PHYSICS:
            raise ConfigError(f"physics must be one of {', '.join(PHYSICS)}, got {written(physics)}")
        self.physics = physics
        self.obs_dim, self.act_dim, self.obs_shape = self.body.obs_dim, self.body.act_dim, (self.body.obs_dim,)
        self.hidden, self.continuous = tuple(int(h) for h in hidden), True
        self.norm = ObsNormalizer(self.obs_dim, enabled=obs_norm)
        self._model, self._worlds, self._warp_worlds, self._warp_why, self._warned = None, {}, {}, None, False

    def __repr__(self):
        return f"LocomotionTask({self.name!r}, episodes={self.episodes}, max_steps={self.max_steps})"

    def describe(self) -> dict:
        """What ``esprune tasks`` lists (needs no MuJoCo)."""
        return {"kind": self.kind, "obs_shape": list(self.obs_shape), "act_dim": self.act_dim,
                "actions": "continuous (tanh output; MuJoCo clamps to ctrlrange)", "horizon": self.max_steps,
                "episodes": self.episodes, "test_episodes": self.test_episodes,
                "default_net": repr(self.default_net()), "needs": "pip install 'esprune[mujoco]'"}

    def default_net(self) -> MLP:
        """The paper's locomotion policy (evojax MLPPolicy, brax config): obs → 32 → 32 tanh → tanh actions."""
        return MLP(self.obs_dim, self.hidden, self.act_dim, activation="tanh", head="tanh")

    # ------------------------------------------------------------------------------------------ the model
    def prepare(self):
        """Load the model now: a missing ``mujoco`` is a one-line error before any work."""
        return self.model

    @property
    def model(self):
        if self._model is None:
            require()
            masses = None
            if self.torso_mass_scale != 1.0:
                base = load_model(self.body.xml)
                masses = {"torso": base.body("torso").mass[0] * self.torso_mass_scale}
            self._model = load_model(self.body.xml, masses)
        return self._model

    # ------------------------------------------------------------------------------------------ rollouts
    def rollout(self, net, layout, pop, words, backend="numba", acc=None, lengths=None) -> np.ndarray:
        """Returns ``(P, E)`` float64 of every member on the episodes seeded by ``words`` ``(E, 2)``.

        ``acc`` (an ``ObsNormalizer.accumulator``) collects the observations that count for the statistics;
        ``lengths``, if given, an int array ``(P, E)``, receives the episode lengths.
        """
        be = _backend.get(backend)
        if net.sizes[0] != self.obs_dim or net.sizes[-1] != self.act_dim:
            raise ConfigError(f"{self.name} needs a policy {self.obs_dim} → … → {self.act_dim}, got {net!r}")
        if self.physics_for(be) == "warp":
            from .warp_rollout import rollout

            pop = be.asarray(pop, dtype=np.float32)
            worlds = self.warp_worlds_for(pop.shape[0] * len(words), be)
            return rollout(self, worlds, net, layout, pop, words, be, acc, lengths)
        with policy_on_one_thread(be):
            return self._rollout(net, layout, be.asarray(pop, dtype=np.float32), words, be, acc, lengths)

    def _rollout(self, net, layout, pop, words, be, acc, lengths):
        body, model = self.body, self.model
        P, E = pop.shape[0], len(words)
        n = P * E
        worlds = self._worlds_for(n, physics_threads(be))
        starts = [body.reset(rng, model.qpos0.copy(), np.zeros(model.nv)) for rng in episode_rngs(words)]
        alive = np.arange(n)
        worlds.reset(alive, np.tile(np.stack([s[0] for s in starts]), (P, 1)),
                     np.tile(np.stack([s[1] for s in starts]), (P, 1)))
        dt = model.opt.timestep * body.frame_skip
        returns, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
        obs = body.observe(worlds, alive)
        for t in range(self.max_steps):
            action = self._act(net, layout, pop, alive, self.norm.normalize(obs), P, E, be)
            before = body.position(worlds, alive) if body.position else None
            worlds.step(alive, action, body.frame_skip)
            reward, terminated = body.reward(worlds, alive, action, before, dt)
            returns[alive] += reward
            steps[alive] += 1
            if acc is not None and t + 1 < self.max_steps:  # evojax counts obs whose step did not end the episode
                acc.add(obs[~terminated])
            alive = alive[~terminated]
            if not alive.size:
                break
            obs = body.observe(worlds, alive)
        if lengths is not None:
            lengths[...] = steps.reshape(P, E)
        return returns.reshape(P, E)

    def _act(self, net, layout, pop, alive, x, P, E, be) -> np.ndarray:
        """The policy's float32 actions ``(len(alive), act_dim)`` for the live worlds, one batched forward over
        the members that still have a live episode (their finished episodes' inputs are zeros, outputs unused)."""
        members = np.unique(alive // E)
        inputs = np.zeros((len(members), E, self.obs_dim), dtype=np.float32)
        slot = np.searchsorted(members, alive // E)
        inputs[slot, alive % E] = x
        rows = pop if len(members) == P else pop[be.asarray(members)]
        out = be.to_numpy(net.forward(layout, rows, be.asarray(inputs), backend=be))
        return np.ascontiguousarray(out[slot, alive % E], dtype=np.float32)

    def physics_for(self, backend) -> str:
        """``"warp"`` or ``"mujoco"``: the physics that steps this task's worlds beside ``backend`` (see the
        module's docstring). ``physics="auto"`` on the cupy backend without MuJoCo Warp, or for a body it does not
        support (Humanoid-v5's PGS solver), warns once, in one line, that C MuJoCo steps the worlds and why.
        Raises ``BackendUnavailable`` for ``physics="warp"`` where MuJoCo Warp cannot run."""
        be = _backend.get(backend)
        if self.physics == "mujoco" or (self.physics == "auto" and not be.is_gpu):
            return "mujoco"
        if self._warp_why is None:
            from .warp_worlds import unavailable

            self._warp_why = unavailable(self.model) or ""
        if not self._warp_why:
            return "warp"
        if self.physics == "warp":
            raise BackendUnavailable(f"{self.name} cannot run on MuJoCo Warp: {self._warp_why}")
        if not self._warned:
            self._warned = True
            warnings.warn(f"{self.name}: the cupy backend steps C MuJoCo on the CPU: {self._warp_why}",
                          PhysicsNotice, stacklevel=3)
        return "mujoco"

    def warp_worlds_for(self, n: int, be):
        """MuJoCo Warp's worlds of one size, kept between generations like :meth:`_worlds_for`'s."""
        from ..ops import cuda
        from .warp_worlds import WarpWorlds

        array_type = cuda.device_array_type() if be.is_gpu else np.ndarray
        key = (n, array_type)
        if key not in self._warp_worlds:
            if len(self._warp_worlds) >= 3:
                self._warp_worlds.pop(next(iter(self._warp_worlds)))
            body = self.body
            self._warp_worlds[key] = WarpWorlds(self.model, n, array_type, fields=body.fields,
                                                contact_forces=body.contact_forces)
        return self._warp_worlds[key]

    def _worlds_for(self, n: int, threads: int) -> Worlds:
        """The worlds of one size, kept between generations (building 2048 persistent worlds takes seconds);
        training and test episodes use two sizes, so the last few are kept."""
        key = (n, threads)
        if key not in self._worlds:
            if len(self._worlds) >= 3:
                self._worlds.pop(next(iter(self._worlds)))
            body = self.body
            self._worlds[key] = Worlds(self.model, n, threads, fields=body.fields, contact_forces=body.contact_forces)
        return self._worlds[key]


@contextlib.contextmanager
def policy_on_one_thread(be):
    """The numba kernels of the policy on the calling thread only, while MuJoCo's pool steps the worlds.

    numba's OpenMP workers spin-wait after every parallel region, on the very cores MuJoCo's threads need
    next (on 2 cores, a small Hopper IMP run took 3.7× longer with both pools live: 11.9 s against 3.2 s). The
    policy is a small part of a step (Ant, P·E = 2048: 19 MFLOP, a few ms, against 0.3–1 s of physics), so it
    loses little by running alone.
    """
    if be.name != "numba":
        yield
        return
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


class PhysicsNotice(UserWarning):
    """The cupy backend's locomotion worlds run on C MuJoCo, not MuJoCo Warp (the message says why)."""


TASKS = {name: functools.partial(LocomotionTask, name) for name in BODIES}
