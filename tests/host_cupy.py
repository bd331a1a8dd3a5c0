"""A stand-in for CuPy on machines without a GPU, so that esprune's ``cupy`` code path runs in every CI job.

Device arrays are numpy arrays of their own type that refuse, as CuPy's do, to mix with host arrays in
arithmetic and array functions (the transfers ``asarray``/``array``/``ascontiguousarray`` and ``asnumpy`` are the
only way across). Kernels come from ``esprune.ops.host_cuda``: the real ``kernels/*.cu`` sources compiled for the
host, with each launch's argument types checked against the kernel's signature.

What it cannot catch: ``np.asarray`` of a device array (CuPy raises; a numpy subclass cannot refuse), a numpy
function CuPy lacks, device math and anything about speed. ``pytest -m gpu`` on a device covers those.
"""
from __future__ import annotations

import functools
import sys
from types import SimpleNamespace

import numpy as np

_TRANSFERS = {"asarray", "array", "ascontiguousarray", "asanyarray"}


class ndarray(np.ndarray):
    """A 'device' array."""

    __esprune_xp__ = sys.modules[__name__]  # esprune.backend.array_module reads this to find the module

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(ufunc.__name__, inputs + (out or ()))
        inputs = tuple(_host_view(x) for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(_host_view(x) for x in out)
        return _to_device(getattr(ufunc, method)(*inputs, **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(func.__name__, tuple(_flatten(args)) + tuple(_flatten(kwargs.values())))
        args = [_host_view(a) if not isinstance(a, (list, tuple)) else type(a)(_host_view(x) for x in a)
                for a in args]
        kwargs = {k: _host_view(v) for k, v in kwargs.items()}
        return _to_device(func(*args, **kwargs))

    def get(self) -> np.ndarray:
        return asnumpy(self)


# Bytes moved each way, per call site's function name, for the tests that count what crosses per generation.
transfers = {"to_host": [], "to_device": []}


def asnumpy(a) -> np.ndarray:
    """A host copy (CuPy's ``asnumpy``; a host array passes through)."""
    if isinstance(a, ndarray):
        transfers["to_host"].append(a.nbytes)
        return np.array(a.view(np.ndarray))
    return np.asarray(a)


def get_array_module(*arrays):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


def _host_view(a):
    return a.view(np.ndarray) if isinstance(a, ndarray) else a


def _to_device(result):
    if isinstance(result, np.ndarray) and not isinstance(result, ndarray):
        return result.view(ndarray)
    if isinstance(result, tuple):
        return tuple(_to_device(r) for r in result)
    return result


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


def _refuse_host(what: str, values) -> None:
    for v in _flatten(values):
        if isinstance(v, np.ndarray) and not isinstance(v, ndarray):
            raise TypeError(f"{what}: a host numpy array among device arrays (CuPy refuses implicit transfers)")


def __getattr__(name: str):
    """Every other name is numpy's, with device arrays in and out."""
    obj = getattr(np, name)
    if isinstance(obj, type) or not callable(obj):
        return obj  # dtypes, constants

    @functools.wraps(obj)
    def on_device(*args, **kwargs):
        if name not in _TRANSFERS:
            _refuse_host(name, tuple(args) + tuple(kwargs.values()))
        elif args and not isinstance(args[0], ndarray):
            transfers["to_device"].append(np.asarray(args[0]).nbytes)
        return _to_device(obj(*[_host_view(a) for a in args], **{k: _host_view(v) for k, v in kwargs.items()}))

    return on_device


class _Stream:
    def synchronize(self) -> None:  # host work is already done when a call returns
        pass


cuda = SimpleNamespace(get_current_stream=_Stream, runtime=SimpleNamespace(getDeviceCount=lambda: 1))
__version__ = "host emulation"
