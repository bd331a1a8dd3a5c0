"""Run the CUDA sources in ``kernels/`` on the CPU: a stand-in for ``cuda.load`` where there is no GPU.

``load(filename, *options)`` compiles ``kernels/<filename>`` with the host C++ compiler against
``kernels/host_cuda.h`` (which maps CUDA's built-ins onto host code and runs a grid's threads one by one) and
returns an object with CuPy's ``RawModule.get_function`` interface. Launches check what CuPy does not: every
argument's dtype against the kernel's parameter type, contiguity, and CUDA's grid and block limits. It is for
the tests (the kernels' own arithmetic, compared with their numba twins, on every CI run); it is slow.

What it cannot show: device math (CUDA's ``logf``/``cosf``/``sin`` differ from glibc's by an ulp or two),
NVRTC's contraction of multiply-adds where a file is not loaded with ``--fmad=false`` (the host build never
contracts), races, and speed. Those need ``pytest -m gpu`` on a device.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable
from . import cuda

SHIM = "host_cuda.h"
FLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
MAX_BLOCK_THREADS = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)

# C parameter type (without const) -> the numpy dtype an argument must have.
SCALARS = {"int": np.int32, "unsigned int": np.uint32, "long long": np.int64, "unsigned long long": np.uint64,
           "float": np.float32, "double": np.float64, "bool": np.bool_}

_KERNEL = re.compile(r'extern\s+"C"\s+__esprune_kernel__\s+void\s+(\w+)\s*\(([^)]*)\)')


def compiler() -> str | None:
    """The host C++ compiler (``$CXX``, else ``g++`` or ``c++`` on the PATH), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return name
    return None


def cache_dir() -> Path:
    """Where built libraries are kept: ``$ESPRUNE_CACHE``, else the user's cache, else the temp directory."""
    root = os.environ.get("ESPRUNE_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(root) / "esprune" / "host_cuda"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home (some CI sandboxes)
        path = Path(tempfile.gettempdir()) / f"esprune-host-cuda-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
    return path


class Param:
    """One kernel parameter: ``const float* x`` -> pointer to float32; ``long long d`` -> int64 scalar."""

    def __init__(self, declaration: str):
        words = declaration.replace("*", " * ").split()
        self.name, words = words[-1], [w for w in words[:-1] if w != "const"]
        self.pointer = words[-1] == "*"
        base = " ".join(w for w in words if w != "*")
        if base not in SCALARS:
            raise TypeError(f"host emulation does not know the C type {base!r} (in {declaration.strip()!r})")
        self.ctype = declaration.rsplit(self.name, 1)[0].strip()
        self.dtype = np.dtype(SCALARS[base])

    def marshal(self, position: int, value):
        """A ctypes object holding what the kernel reads for this parameter, after checking ``value``."""
        where = f"argument {position} ({self.ctype} {self.name})"
        if self.pointer:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where} must be an array, got {type(value).__name__}")
            if value.dtype != self.dtype:
                raise TypeError(f"{where} points to {self.dtype}, got an array of {value.dtype}")
            if not value.flags.c_contiguous:
                raise ValueError(f"{where} must be C-contiguous")
            return ctypes.c_void_p(value.ctypes.data)
        # CuPy passes a numpy scalar with its own width and a Python int as 8 bytes, whatever the kernel reads.
        given = value.dtype if isinstance(value, np.generic) else np.dtype(type(value)) if isinstance(
            value, (bool, int, float)) else None
        if given != self.dtype:
            raise TypeError(f"{where} needs a numpy {self.dtype} scalar, got {given or type(value).__name__}")
        return np.ctypeslib.as_ctypes_type(self.dtype)(value.item() if isinstance(value, np.generic) else value)


class HostKernel:
    """A callable like ``cupy.RawKernel``: ``kernel(grid, block, args)``."""

    def __init__(self, library, name: str, params: list[Param]):
        self.name, self.params = name, params
        self._launch = getattr(library, f"esprune_launch_{name}")
        self._launch.restype = ctypes.c_ulonglong
        self._launch.argtypes = (ctypes.c_uint * 3, ctypes.c_uint * 3, ctypes.POINTER(ctypes.c_void_p))

    def __call__(self, grid, block, args) -> None:
        grid, block = _dims("grid", grid), _dims("block", block)
        if np.prod(block) > MAX_BLOCK_THREADS:
            raise ValueError(f"{self.name}: a block of {np.prod(block)} threads exceeds CUDA's {MAX_BLOCK_THREADS}")
        if any(g > m for g, m in zip(grid, MAX_GRID)):
            raise ValueError(f"{self.name}: grid {grid} exceeds CUDA's limits {MAX_GRID}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        held = [p.marshal(i, a) for i, (p, a) in enumerate(zip(self.params, args))]
        pointers = (ctypes.c_void_p * max(1, len(held)))(*[ctypes.addressof(h) for h in held])
        self._launch((ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block), pointers)


class HostModule:
    """A compiled ``kernels/*.cu`` file with ``RawModule``'s ``get_function``."""

    def __init__(self, library, kernels: dict[str, list[Param]]):
        self._library, self.kernels = library, kernels

    def get_function(self, name: str) -> HostKernel:
        if name not in self.kernels:
            raise AttributeError(f"no kernel {name!r}; this file defines {', '.join(self.kernels)}")
        return HostKernel(self._library, name, self.kernels[name])


@functools.lru_cache(maxsize=None)
def load(filename: str, *options: str) -> HostModule:
    """``kernels/<filename>`` built for the host (cached on disk by content); ``options`` are the NVRTC flags
    ``cuda.load`` would get (accepted for symmetry: the host build never fuses multiply-adds anyway)."""
    cxx = compiler()
    if cxx is None:
        raise BackendUnavailable("host emulation of the CUDA kernels needs a C++ compiler (g++) on the PATH")
    source = cuda.kernels_dir() / filename
    kernels = _scan(cxx, source)
    wrapper = _wrapper(source, kernels)
    key = hashlib.sha256("\n".join([cxx, *FLAGS, wrapper, *_inputs(source)]).encode()).hexdigest()[:20]
    library = cache_dir() / f"{source.stem}-{key}.so"
    if not library.exists():
        _build(cxx, wrapper, library)
    return HostModule(ctypes.CDLL(str(library)), kernels)


def _dims(what: str, dims) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in dims)
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise ValueError(f"{what} must be 1 to 3 positive sizes, got {dims}")
    return dims + (1,) * (3 - len(dims))


def _inputs(source: Path) -> list[str]:
    # Everything the build reads: the shim and every header beside the source, so editing one rebuilds.
    headers = sorted(source.parent.glob("*.cuh")) + [source.parent / SHIM, source]
    return [f"{p.name}\n{p.read_text()}" for p in headers]


def _scan(cxx: str, source: Path) -> dict[str, list[Param]]:
    """The ``extern "C"`` kernels of ``source`` and their parameters, read after preprocessing (so kernels
    stamped out by macros are found too)."""
    text = _run([cxx, "-E", "-P", "-x", "c++", "-std=c++17", "-DESPRUNE_HOST_SCAN", "-include", SHIM,
                 f"-I{source.parent}", str(source)], f"preprocessing {source.name}")
    kernels = {name: [Param(p) for p in params.split(",") if p.strip()]
               for name, params in _KERNEL.findall(text)}
    if not kernels:
        raise BackendUnavailable(f"{source.name} defines no extern \"C\" __global__ kernel")
    return kernels


def _wrapper(source: Path, kernels: dict[str, list[Param]]) -> str:
    """C++ that includes the kernel file and gives each kernel a C launcher taking CuPy-style ``void** args``."""
    lines = [f'#include "{SHIM}"', f'#include "{source}"']
    for name, params in kernels.items():
        call = ", ".join(f"*({p.ctype}*)args[{i}]" for i, p in enumerate(params))
        lines += [f'extern "C" unsigned long long esprune_launch_{name}(const unsigned int* grid, '
                  f"const unsigned int* block, void** args) {{",
                  f"    return esprune_host::launch(grid, block, [&] {{ {name}({call}); }});", "}"]
    return "\n".join(lines) + "\n"


def _build(cxx: str, wrapper: str, library: Path) -> None:
    with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
        cpp, so = Path(tmp) / "launch.cpp", Path(tmp) / library.name
        cpp.write_text(wrapper)
        _run([cxx, *FLAGS, f"-I{cuda.kernels_dir()}", str(cpp), "-o", str(so)], f"compiling {library.stem}")
        os.replace(so, library)  # atomic: a concurrent build or a crash never leaves half a library behind


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendUnavailable(f"{what} for the host failed:\n{done.stderr.strip()}")
    return done.stdout
