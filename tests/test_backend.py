import numpy as np
import pytest

from esprune import backend
from esprune.errors import BackendUnavailable, UserError


def test_numpy_and_numba_are_always_usable():
    for name in ("numpy", "numba"):
        be = backend.get(name)
        assert be.name == name and be.xp is np and not be.is_gpu
        assert isinstance(be.to_numpy(be.asarray([1.0])), np.ndarray)


def test_auto_prefers_a_usable_gpu():
    expected = "cupy" if backend.probe()["cupy"][0] else "numba"
    assert backend.get("auto").name == expected


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match="unknown backend 'torch'"):
        backend.get("torch")


def test_cupy_without_a_device_is_a_clear_user_error():
    ok, why = backend.probe()["cupy"]
    if ok:
        pytest.skip("a GPU is usable here")
    with pytest.raises(BackendUnavailable, match="not usable here") as exc:
        backend.get("cupy")
    assert why in str(exc.value)
