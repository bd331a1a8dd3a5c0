"""Many MuJoCo worlds of one body, stepped together: the physics behind the locomotion tasks.

The models are Gymnasium's v5 XML files, loaded from the installed gymnasium wheel (never copied here). A step
is Gymnasium's ``MujocoEnv._step_mujoco_simulation``: ``ctrl ← action; mj_step × frame_skip;
mj_rnePostConstraint`` (the last fills ``cfrc_ext``, which Ant's and Humanoid's observations and costs read).
:class:`Worlds` runs it on ``mujoco.batch.Batch`` (MuJoCo ≥ 4: a C thread pool over the worlds, identical to
a loop over one ``MjData`` per world) and falls back to such a loop when ``mujoco.batch`` is missing.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError

PIN = "4.0.0"  # the mujoco version whose transitions were checked equal to Gymnasium's (setup.cfg pins it)


class MujocoUnavailable(UserError):
    """The optional MuJoCo dependencies are missing."""


def require():
    """The ``mujoco`` module, or a one-line error saying how to install it."""
    try:
        import mujoco
    except ImportError:
        raise MujocoUnavailable("the locomotion tasks need MuJoCo and Gymnasium's models: "
                                "pip install 'esprune[mujoco]'") from None
    return mujoco


def assets_dir() -> Path:
    """``gymnasium/envs/mujoco/assets`` of the installed gymnasium, found without importing its MuJoCo envs."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise MujocoUnavailable("the locomotion tasks load Gymnasium's body models: pip install 'esprune[mujoco]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "envs" / "mujoco" / "assets"
    if not path.is_dir():
        raise MujocoUnavailable(f"gymnasium at {path.parents[2]} ships no MuJoCo models; "
                                "pip install 'gymnasium>=1.4'")
    return path


def load_model(xml_file: str, body_mass: dict | None = None):
    """The body's ``MjModel`` from Gymnasium's assets; ``body_mass`` {body name: kg} rescales those bodies.

    A rescaled body keeps its shape: mass and rotational inertia are multiplied by the same factor (a uniformly
    denser body), then ``mj_setConst`` recomputes the derived constants.
    """
    mujoco = require()
    model = _compile(mujoco, assets_dir() / xml_file)
    if body_mass:
        for name, mass in body_mass.items():
            body = model.body(name)
            factor = float(mass) / float(body.mass[0])
            body.mass[0] = float(mass)
            body.inertia[:] = body.inertia * factor
        mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def _compile(mujoco, path):
    """``MjModel.from_xml_path`` with MuJoCo's warnings as Python warnings (its default handler appends them to
    ./MUJOCO_LOG.TXT), except the deprecation of ``settotalmass`` in Gymnasium's half_cheetah.xml, which no
    user can act on."""
    old = mujoco.get_mju_user_warning()

    def warn(message):
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message}", stacklevel=3)

    mujoco.set_mju_user_warning(warn)
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    finally:
        mujoco.set_mju_user_warning(old)


def episode_rngs(words: np.ndarray) -> list[np.random.Generator]:
    """One Gymnasium generator per episode: ``reset(seed=s)`` seeds ``Generator(PCG64(SeedSequence(s)))`` with
    ``s`` = 63 bits of the episode's two uint32 ``words`` (rows of ``(E, 2)``)."""
    return [np.random.default_rng(episode_seed(w)) for w in words]


def episode_seed(w) -> int:
    """The integer seed Gymnasium's ``reset(seed=...)`` would take for the two uint32 words ``w``."""
    return (int(w[0]) & 0x7FFFFFFF) << 32 | int(w[1])


class Worlds:
    """``n`` copies of ``model``; state and the derived fields the bodies read as ``(n, ...)`` float64 arrays.

    ``fields``: the derived ``MjData`` fields to keep current (e.g. ``xpos``, ``cinert``); ``contact_forces``:
    run ``mj_rnePostConstraint`` after every step so that ``cfrc_ext`` is Gymnasium's.
    """

    def __init__(self, model, n: int, threads: int = 1, fields=(), contact_forces: bool = False,
                 use_batch: bool | None = None):
        mujoco = require()
        self.model, self.n, self.contact_forces = model, int(n), bool(contact_forces)
        self._mujoco = mujoco
        if use_batch is None:
            use_batch = importlib.util.find_spec("mujoco.batch") is not None
        self.kind = "batch" if use_batch else "loop"
        self._scratch = mujoco.MjData(model)
        if use_batch:
            from mujoco.batch import Batch

            # persistent: each world keeps its MjData, which mj_rnePostConstraint needs after the step
            self._batch = Batch(model, self.n, nthread=max(1, int(threads)), persistent=self.contact_forces)
            self.qpos, self.qvel, self.ctrl = (self._batch.bind(f) for f in ("qpos", "qvel", "ctrl"))
            self._fields = {f: self._batch.bind(f) for f in fields}
        else:
            self._datas = [mujoco.MjData(model) for _ in range(self.n)]
            self.qpos = np.zeros((self.n, model.nq))
            self.qvel = np.zeros((self.n, model.nv))
            self.ctrl = np.zeros((self.n, model.nu))
            self._fields = {f: np.zeros((self.n, *getattr(self._scratch, f).shape)) for f in fields}
        self.cfrc_ext = np.zeros((self.n, model.nbody, 6))

    def __getattr__(self, name):
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def reset(self, ids, qpos, qvel) -> None:
        """Gymnasium's ``reset``: ``mj_resetData``, then ``set_state(qpos, qvel)`` (which runs ``mj_forward``)."""
        ids = np.asarray(ids, dtype=np.int64)
        self.cfrc_ext[ids] = 0.0  # mj_resetData zeroes it and mj_forward does not compute it
        if self.kind == "batch":
            self._batch.reset(ids, stage=self._mujoco.mjtStage.mjSTAGE_NONE)
            self.qpos[ids], self.qvel[ids] = qpos, qvel
            self._batch.forward(ids)
            return
        for k, i in enumerate(ids):
            d = self._datas[i]
            self._mujoco.mj_resetData(self.model, d)
            d.qpos[:], d.qvel[:] = qpos[k], qvel[k]
            self._mujoco.mj_forward(self.model, d)
            self._copy_out(i, d)

    def step(self, ids, ctrl, frame_skip: int) -> None:
        """One environment step of worlds ``ids`` under ``ctrl`` ``(len(ids), nu)``."""
        ids = np.asarray(ids, dtype=np.int64)
        self.ctrl[ids] = ctrl
        mujoco, scratch = self._mujoco, self._scratch
        if self.kind == "batch":
            self._batch.step(ids, nstep=frame_skip)
            if self.contact_forces:
                for i in ids:  # the batch keeps each world's MjData; this is Gymnasium's last call per step
                    self._batch.get_data(int(i), scratch)
                    mujoco.mj_rnePostConstraint(self.model, scratch)
                    self.cfrc_ext[i] = scratch.cfrc_ext
            return
        for i in ids:
            d = self._datas[i]
            d.ctrl[:] = self.ctrl[i]
            mujoco.mj_step(self.model, d, nstep=frame_skip)
            if self.contact_forces:
                mujoco.mj_rnePostConstraint(self.model, d)
                self.cfrc_ext[i] = d.cfrc_ext
            self._copy_out(i, d)

    def _copy_out(self, i, d) -> None:
        self.qpos[i], self.qvel[i] = d.qpos, d.qvel
        for name, arr in self._fields.items():
            arr[i] = getattr(d, name)


def physics_threads(backend) -> int:
    """Threads for the physics: the numba backend's thread count (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``); 1 on the numpy reference; every CPU beside a GPU."""
    if backend.name == "numba":
        import numba

        return int(numba.get_num_threads())
    if backend.name == "cupy":
        return os.cpu_count() or 1
    return 1
