"""Array backends: ``numpy`` (the reference), ``numba`` (fast CPU), ``cupy`` (GPU), and ``auto``.

Code above ``ops/`` never imports cupy or numba itself: it asks for a :class:`Backend` and uses its array
module ``xp``. The numpy backend is the oracle the others are tested against.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .errors import BackendUnavailable

NAMES = ("numpy", "numba", "cupy")
CHOICES = NAMES + ("auto",)


@dataclass(frozen=True)
class Backend:
    """An array module plus the name that selects which kernels run on it."""

    name: str
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asarray(self, a, dtype=None):
        """``a`` as an array of this backend (a no-op when it already is one)."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a) -> np.ndarray:
        """``a`` as a host numpy array."""
        if self.is_gpu:
            return self.xp.asnumpy(a)  # a host array passes through unchanged
        return np.asarray(a)

    def synchronize(self) -> None:
        """Wait for queued device work (for timing); a no-op on the CPU."""
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


def get(name: str | Backend = "auto") -> Backend:
    """The backend called ``name``; ``auto`` is cupy when a GPU is usable, else numba."""
    if isinstance(name, Backend):
        return name
    if name not in CHOICES:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    if name == "auto":
        name = "cupy" if probe()["cupy"][0] else "numba"
    ok, detail = probe()[name]
    if not ok:
        raise BackendUnavailable(f"backend {name!r} is not usable here: {detail}")
    return _make(name)


@functools.lru_cache(maxsize=None)
def _make(name: str) -> Backend:
    if name == "cupy":
        import cupy

        return Backend("cupy", cupy)
    return Backend(name, np)


@functools.lru_cache(maxsize=None)
def probe() -> dict[str, tuple[bool, str]]:
    """For each backend: whether it is usable and a one-line detail (its version, or why not)."""
    return {"numpy": (True, f"numpy {np.__version__}"), "numba": _probe_numba(), "cupy": _probe_cupy()}


def _probe_numba() -> tuple[bool, str]:
    try:
        import numba
    except ImportError as exc:  # pragma: no cover - numba is a hard dependency
        return False, f"numba is not installed ({exc}); pip install numba"
    return True, f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads"


def _probe_cupy() -> tuple[bool, str]:
    try:
        import cupy
    except ImportError:
        return False, "cupy is not installed; install the extra: pip install 'esprune[gpu]'"
    except Exception as exc:  # a broken CUDA install raises all sorts of things at import
        return False, f"cupy failed to import: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            return False, "cupy is installed but no CUDA device is visible"
        cupy.zeros(1, dtype=cupy.float32).sum().item()  # a real launch: catches driver/toolkit mismatch
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    except Exception as exc:
        return False, f"cupy {cupy.__version__} cannot use a CUDA device: {exc}"
    return True, f"cupy {cupy.__version__} on {gpu} ({count} device{'s' if count > 1 else ''})"


def array_module(a) -> ModuleType:
    """numpy or cupy, whichever ``a`` belongs to, without importing cupy when it is not in use."""
    stand_in = getattr(type(a), "__esprune_xp__", None)  # the tests' host stand-in for CuPy names its module
    if stand_in is not None:
        return stand_in
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def of_array(a) -> Backend:
    """The backend an array lives on for array arithmetic (numba and numpy share host arrays)."""
    return _make("cupy") if array_module(a) is not np else _make("numpy")


@contextlib.contextmanager
def on_compile(callback):
    """Call ``callback()`` once, when the first kernel compilation inside the ``with`` block starts (numba's
    ``numba:compile`` event, which fires only when no cached machine code exists for the signature; a kernel
    loaded from numba's on-disk cache does not trigger it). Without numba: nothing happens."""
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - numba is a hard dependency
        yield
        return
    fired = []

    class _First(event.Listener):
        def on_start(self, ev):
            if not fired:
                fired.append(True)
                callback()

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", _First()):
        yield
