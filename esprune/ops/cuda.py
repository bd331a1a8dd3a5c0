"""Loading CUDA C sources from ``kernels/`` into CuPy RawModules, once per process."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

BLOCK = 128  # threads per block for the 1-D launches; a multiple of the warp size


def kernels_dir() -> Path:
    """Where the ``.cu`` sources live: the installed ``esprune.kernels`` package (``kernels/`` in a checkout)."""
    try:
        import esprune.kernels as pkg

        return Path(pkg.__file__).parent
    except ImportError:  # running from a source tree that was never installed
        return Path(__file__).resolve().parents[2] / "kernels"


def kernel_sources() -> list[Path]:
    """Every compilable CUDA source file (``*.cu``), for the build check and the tests."""
    return sorted(kernels_dir().glob("*.cu"))


@functools.lru_cache(maxsize=None)
def load(filename: str, *options: str):
    """The RawModule of ``kernels/<filename>``, compiled on first use (CuPy caches the binary on disk);
    ``options`` are extra NVRTC flags (e.g. ``--fmad=false`` where a kernel must round like its twin)."""
    import cupy

    path = kernels_dir() / filename
    # '#line' makes NVRTC's messages point into the .cu file instead of an anonymous string.
    code = f'#line 1 "{path}"\n' + path.read_text()
    return cupy.RawModule(code=code, options=("-std=c++17", f"-I{kernels_dir()}", *options))


def grid(n: int, block: int = BLOCK) -> tuple[int]:
    """Blocks needed to give ``n`` threads one each."""
    return ((int(n) + block - 1) // block,)


def device_array_type() -> type:
    """The array type kernels accept (``cupy.ndarray``; the tests swap in a host stand-in)."""
    import cupy

    return cupy.ndarray


def check_device_array(name: str, a, dtype) -> None:
    """CuPy launches check nothing: refuse host arrays, wrong dtypes and strided views before the kernel runs."""
    if not isinstance(a, device_array_type()):
        raise TypeError(f"{name} must be a cupy array on the device, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
