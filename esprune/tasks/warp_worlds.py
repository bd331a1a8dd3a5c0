"""Many MuJoCo worlds of one body on MuJoCo Warp: the physics behind the locomotion tasks on the cupy backend.

The same step as :mod:`.mujoco_worlds` (Gymnasium's ``ctrl ← action; mj_step × frame_skip;
mj_rnePostConstraint``) on ``mujoco_warp`` (``put_model``, ``make_data(nworld=n)``, ``step``), all ``n`` worlds
at once, with ``opt.run_rne_postconstraint`` set where a body reads ``cfrc_ext`` (MuJoCo Warp then computes the
contact forces inside the step, from the same quantities as C's call after it). MuJoCo Warp is float32: one step
from the same state agrees with C MuJoCo to about 1e-4 (the tests state the tolerances), and whole trajectories
diverge chaotically, so this is a second physics backend, not a Gymnasium-exact one.

The fields a body reads (``qpos``, ``qvel``, ``ctrl``, ``cfrc_ext``, ``xpos``, ...) are views of MuJoCo Warp's
own arrays as arrays of the policy's backend, shaped as :class:`~.mujoco_worlds.Worlds`'s ``(n, ...)``: on a GPU
CuPy views through ``__cuda_array_interface__`` (no copy), on Warp's CPU device the host memory itself (what the
tests' stand-in for CuPy views). Writing ``ctrl`` or ``qpos`` through a view writes the worlds' state.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

PIN = "4.0.0"  # the mujoco-warp version the agreement tests were run with (setup.cfg's gpu-physics extra pins it)


def unavailable(model) -> str | None:
    """Why MuJoCo Warp cannot step ``model`` here (one line), or None when it can."""
    try:
        import mujoco_warp as mjw
    except ImportError:
        return "MuJoCo Warp is not installed (pip install 'esprune[gpu-physics]')"
    try:
        _put_model(mjw, model)
    except NotImplementedError as exc:  # e.g. Humanoid-v5's PGS solver, which MuJoCo Warp (like MJX) rejects
        return f"MuJoCo Warp does not support this model: {_solver_reason(model) or exc}"
    return None


def _solver_reason(model) -> str | None:
    import mujoco

    if model.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        return "its solver is PGS (MuJoCo Warp has CG and Newton only)"
    return None


@functools.lru_cache(maxsize=None)
def _quiet_warp():
    """Warp, initialised once, without its line per loaded kernel module."""
    import warp as wp

    wp.config.log_level = wp.LOG_WARNING
    wp.init()
    return wp


def _put_model(mjw, model, contact_forces: bool = False, device=None):
    wp = _quiet_warp()
    with wp.ScopedDevice(device):
        m = mjw.put_model(model)
    m.opt.run_rne_postconstraint = bool(contact_forces)
    return m


def device_for(array_type) -> str:
    """Warp's device for kernels whose arrays are ``array_type``: ``"cpu"`` where those live in host memory (the
    tests' stand-in for CuPy, a numpy subclass), else the CUDA device CuPy is using."""
    if issubclass(array_type, np.ndarray):
        return "cpu"
    import cupy

    return f"cuda:{cupy.cuda.Device().id}"


class WarpWorlds:
    """``n`` copies of ``model`` on MuJoCo Warp, every world stepped every time.

    ``array_type``: the policy backend's device array type (``ops.cuda.device_array_type()``), which decides
    the Warp device (:func:`device_for`) and the type of the field views; ``fields``: the derived ``Data``
    fields a body reads; ``contact_forces``: keep ``cfrc_ext`` current (Ant, Humanoid).
    Raises ``NotImplementedError`` for a model MuJoCo Warp rejects (:func:`unavailable` says why first).
    """

    # capacity overflows (contacts, constraint rows) void a step's physics; solver iteration limits do not
    _CAPACITY = ("NEFC", "NJMAX_NNZ", "BROADPHASE", "NARROWPHASE", "CCD", "NVMAX", "EPA_HORIZON")

    def __init__(self, model, n: int, array_type, fields=(), contact_forces: bool = False):
        import mujoco_warp as mjw

        wp = _quiet_warp()
        self.model, self.n, self.contact_forces = model, int(n), bool(contact_forces)
        self._mjw, self._wp, self._array_type = mjw, wp, array_type
        self.device = wp.get_device(device_for(array_type))
        self._m = _put_model(mjw, model, contact_forces, self.device)
        # same seed, same numbers (esprune's rule): stable contact order and atomic sums on a GPU; set on Warp's
        # CPU device too, so that the tests there run the code path a GPU runs
        self._m.opt.deterministic = int(mjw.DeterminismType.ALL)
        with wp.ScopedDevice(self.device):
            self._d = mjw.make_data(model, nworld=self.n)
        self.qpos, self.qvel, self.ctrl, self.cfrc_ext = (self._view(f) for f in ("qpos", "qvel", "ctrl", "cfrc_ext"))
        self._fields = {f: self._view(f) for f in fields}
        overflow = mjw.OverflowType
        self._capacity = int(functools.reduce(lambda a, b: a | b, (getattr(overflow, k) for k in self._CAPACITY)))
        self.overflow = self._view("overflow")
        self._graph = {}

    def __getattr__(self, name):
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def _view(self, name: str):
        """The Data field ``name`` as a device array of the policy's backend, sharing MuJoCo Warp's memory."""
        a = getattr(self._d, name)
        if self.device.is_cuda:
            import cupy

            return cupy.asarray(a)  # __cuda_array_interface__: CuPy wraps Warp's pointer, nothing is copied
        return a.numpy().view(self._array_type)  # Warp's CPU device: a.numpy() is the host memory itself

    def reset(self, qpos, qvel) -> None:
        """Gymnasium's ``reset`` of every world: ``mj_resetData``, ``set_state(qpos, qvel)`` (``mj_forward``);
        ``qpos`` ``(n, nq)``, ``qvel`` ``(n, nv)`` device arrays. ``cfrc_ext`` is zero after it, as in C (where
        ``mj_forward`` does not compute it; MuJoCo Warp's forward would)."""
        with self._wp.ScopedDevice(self.device):
            self._mjw.reset_data(self._m, self._d)
            self.qpos[...] = qpos
            self.qvel[...] = qvel
            self._mjw.forward(self._m, self._d)
        self.cfrc_ext[...] = 0.0

    def step(self, frame_skip: int) -> None:
        """One environment step of every world under the current ``ctrl``: ``frame_skip`` MuJoCo Warp steps,
        replayed from a captured CUDA graph on a GPU (one launch instead of a few hundred)."""
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self.device):
            if not self.device.is_cuda:
                for _ in range(frame_skip):
                    mjw.step(self._m, self._d)
                return
            if frame_skip not in self._graph:
                with wp.ScopedCapture(device=self.device) as capture:
                    for _ in range(frame_skip):
                        mjw.step(self._m, self._d)
                self._graph[frame_skip] = capture.graph
            wp.capture_launch(self._graph[frame_skip])

    def capacity_overflow(self):
        """Per world, the capacity overflows (contacts, constraint rows) since the last reset, as a device int
        array: nonzero means MuJoCo Warp dropped contacts or constraints in that world."""
        return self.overflow & self._capacity

    @contextlib.contextmanager
    def on_stream(self):
        """CuPy's work (the policy, observations, rewards) and Warp's on one CUDA stream, Warp's, ordered after
        what CuPy's current stream had queued and before what it queues next; a no-op on Warp's CPU device, whose
        launches run synchronously."""
        if not self.device.is_cuda:
            yield
            return
        import cupy

        before = cupy.cuda.get_current_stream()
        stream = cupy.cuda.ExternalStream(self._wp.get_stream(self.device).cuda_stream, self.device.ordinal)
        stream.wait_event(before.record())
        with stream:
            yield
        before.wait_event(stream.record())
