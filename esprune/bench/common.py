"""What every suite of ``esprune bench`` shares: timing, the machine's measured peaks, the thread count, the
machine description, random masks and the one table renderer.

Every suite returns ``{"machine": ..., "peak": ..., "rows": [...]}``; the matmul peak is measured in the same
run, so that achieved GFLOP/s can be read as a fraction of what this machine's BLAS (or cuBLAS) reaches.
Nothing here asserts a speed: it measures and reports.
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numba
import numpy as np

from .. import __version__
from .. import backend as _backend
from ..errors import ConfigError
from ..params import Mask
from ..timing import macs_per_example as macs  # noqa: F401  (the suites' FLOP count)


def timeit(fn, repeats: int, be) -> dict:
    """Median, min and max seconds of ``fn()`` over ``repeats`` calls after one warm-up (compilation) call, and
    every call's seconds (``times_s``)."""
    fn()
    be.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        be.synchronize()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats,
            "times_s": times}


def matmul_peak(be, n: int | None = None, repeats: int = 5) -> dict:
    """float32 GFLOP/s of one large square matmul on ``be`` (BLAS on the CPU, cuBLAS on the GPU)."""
    n = n or (8192 if be.is_gpu else 2048)
    rng = np.random.default_rng(0)
    a = be.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = be.asarray(rng.standard_normal((n, n), dtype=np.float32))
    t = timeit(lambda: a @ b, repeats, be)
    return {"backend": be.name, "n": n, **t, "gflops": 2 * n**3 / t["median_s"] / 1e9}


def memory_bandwidth(be, mib: int = 1024, repeats: int = 5) -> dict:
    """Device-memory copy bandwidth (read + write bytes per second) of a ``mib`` MiB array copy on ``be``."""
    a = be.xp.ones(mib * 2**20 // 4, dtype=np.float32)
    b = be.xp.empty_like(a)
    t = timeit(lambda: b.__setitem__(Ellipsis, a), repeats, be)
    return {"backend": be.name, "mib": mib, **t, "gbs": 2 * a.nbytes / t["median_s"] / 1e9}


def peaks_of(bes) -> dict:
    """Per backend measured here: the float32 matmul peak, and on a GPU also the memory bandwidth."""
    out = {}
    for be in bes:
        if be.name in ("numba", "cupy"):
            out[be.name] = matmul_peak(be)
            if be.is_gpu:
                out[be.name]["bandwidth_gbs"] = memory_bandwidth(be)["gbs"]
    return out


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads for esprune's kernels (numba) and, where threadpoolctl is installed, for
    BLAS (the matmul peak); ``None`` keeps numba's default, every core. Returns the thread count in force."""
    if threads is not None:
        most = numba.config.NUMBA_NUM_THREADS
        if not 1 <= threads <= most:
            raise ConfigError(f"--threads must be between 1 and {most} (NUMBA_NUM_THREADS), got {threads}")
        numba.set_num_threads(threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            threadpool_limits(threads)
    return numba.get_num_threads()


def blas_threads() -> int | None:
    """Threads of the BLAS behind numpy where threadpoolctl can tell, else None (usually every core)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return min(counts) if counts else None


def machine() -> dict:
    """What produced a result: versions, CPU, cores, the threads used, the usable backends."""
    return {"esprune": __version__, "numpy": np.__version__, "numba": numba.__version__,
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": numba.get_num_threads(), "blas_threads": blas_threads(),
            "backends": {k: v[1] for k, v in _backend.probe().items() if v[0]}}


def backends_to_measure(names=None) -> list:
    """The named backends (an unusable one is a UserError), or by default every usable one."""
    if names:
        return [_backend.get(n) for n in names]
    return [_backend.get(n) for n in _backend.NAMES if _backend.probe()[n][0]]


def random_mask(spec, density: float, seed: int = 0) -> Mask:
    """Each prunable tensor keeps exactly round(density · size) entries, chosen at random."""
    rng = np.random.default_rng(seed)
    masks = {}
    for t in spec:
        if t.prunable:
            keep = np.zeros(t.size, dtype=bool)
            keep[rng.choice(t.size, size=max(1, round(density * t.size)), replace=False)] = True
            masks[t.name] = keep.reshape(t.shape)
    return Mask(masks, spec)


def table(rows: list[dict], columns) -> str:
    """An aligned text table: ``columns`` are ``(header, width, key, format)``; ``key`` is a row key or a
    function of the row, a missing value prints "-". Numbers are right-aligned, text left-aligned (format ">":
    right-aligned)."""
    def cell(row, width, key, fmt):
        value = key(row) if callable(key) else row.get(key)
        if value is None:
            return f"{'-':>{width}}"
        if isinstance(value, str):  # text: left-aligned unless the format says ">"
            return format(value, f"{fmt or '<'}{width}")
        return f"{format(value, fmt):>{width}}"

    head = "".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w, _, _) in enumerate(columns))
    lines = [head, "-" * len(head)]
    lines += ["".join(cell(r, w, k, f) for _, w, k, f in columns) for r in rows]
    return "\n".join(lines)


def render_peaks(result: dict) -> list[str]:
    """The measured peaks and the threads, as the lines above a suite's table."""
    m = result.get("machine", {})
    lines = [f"threads: {m.get('threads', '?')} (numba), BLAS {m.get('blas_threads') or 'default'}; "
             f"{m.get('cores', '?')} cores"] if m else []
    return lines + [f"matmul peak ({p['backend']}, n={p['n']}): {p['gflops']:.1f} GFLOP/s"
                    + (f"; memory bandwidth {p['bandwidth_gbs']:.0f} GB/s" if "bandwidth_gbs" in p else "")
                    for p in result["peak"].values()]
