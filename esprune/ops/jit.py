"""numba compilation with an on-disk cache shared by every process, so a run pays the kernels' compilation
(seconds per process) once per esprune version, not once per process.

numba's ``cache=True`` keys a cached function by its own source file's time stamp only: an edit to a function
it calls in another file (an environment's ``step`` inside the fused rollout, ``fast_tanh`` inside the policy)
would leave stale machine code in use. So esprune keeps its kernels in a directory of their own named by a
hash of every source compiled into them (``esprune/ops/*.py``, ``esprune/tasks/*.py``) and numba's version:
any edit starts a fresh directory. ``NUMBA_CACHE_DIR``, when the user sets it, is respected as it is. Where no
directory is writable, the kernels compile in every process as before (numba's own fallbacks are tried first:
the source tree's ``__pycache__``, then the user-wide cache).
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numba

# numba's OpenMP threads (its default threading layer here) spin after every parallel region, libgomp's default,
# and so take a core from the rollout's threads that start right after the noise kernels: measured on 2 cores,
# W1 lost a quarter of its speed to it. They sleep at once instead; a user's own setting is kept. libgomp reads
# the variable when it loads, at the first parallel kernel.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_SOURCES = ("ops", "tasks")  # the packages whose Python source numba compiles into esprune's kernels


def njit(**options):
    """``numba.njit(cache=True, **options)`` with esprune's kernel cache directory (see the module docstring);
    without caching when no cache location is usable."""
    def wrap(fn):
        where = cache_dir()
        saved = numba.config.CACHE_DIR
        if where is not None and not os.environ.get("NUMBA_CACHE_DIR"):
            numba.config.CACHE_DIR = str(where)  # read by numba when the dispatcher is made, i.e. right here
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available": compile per process instead
            return numba.njit(**options)(fn)
        finally:
            numba.config.CACHE_DIR = saved
    return wrap


@functools.lru_cache(maxsize=1)
def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/esprune/numba/<hash>`` (default ``~/.cache``), created if needed; None when it cannot be
    written (numba's own cache locations are then used, if any)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "esprune" / "numba"
    where = base / source_hash()
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError:
        return None
    return where


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """16 hex digits of sha256 over numba's version and every kernel source file (name and bytes)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(numba.__version__.encode())
    for package in _SOURCES:
        for path in sorted((root / package).glob("*.py")):
            h.update(f"{package}/{path.name}".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
