import os
from pathlib import Path

import numpy as np
import pytest

from esprune import backend
from esprune.ops import cuda, host_cuda

import host_cupy


def gpu_usable() -> bool:
    return backend.probe()["cupy"][0]


@pytest.fixture
def host_device(monkeypatch):
    """esprune's cupy backend with CuPy replaced by tests/host_cupy.py: the same launchers and the same
    ``kernels/*.cu`` sources, compiled for the CPU (esprune/ops/host_cuda.py)."""
    if host_cuda.compiler() is None:
        pytest.skip("no C++ compiler to build the CUDA kernels for the host")
    monkeypatch.setattr(cuda, "load", host_cuda.load)
    monkeypatch.setattr(cuda, "device_array_type", lambda: host_cupy.ndarray)
    host, real_get = backend.Backend("cupy", host_cupy), backend.get
    monkeypatch.setattr(backend, "get", lambda name="auto": host if name == "cupy" else real_get(name))
    return host


@pytest.fixture(params=["host", pytest.param("device", marks=pytest.mark.gpu)])
def cupy_backend(request):
    """esprune's cupy code path, twice: ``host`` (the emulation above, on every CI run) and ``device`` (CuPy on
    a GPU; skipped, with the reason, without one)."""
    if request.param == "host":
        return request.getfixturevalue("host_device")
    ok, why = backend.probe()["cupy"]
    if not ok:
        pytest.skip(f"no usable GPU: {why}")
    return backend.get("cupy")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """ESPRUNE_DATA, else ../shared/data beside the checkout; skip with the reason when neither exists."""
    candidates = [os.environ.get("ESPRUNE_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    pytest.skip("dataset files not found: set ESPRUNE_DATA or place the data in ../shared/data")


@pytest.fixture
def quiet_mujoco():
    """Gymnasium's half_cheetah.xml makes MuJoCo warn (into ./MUJOCO_LOG.TXT) each time a model loads it: the
    locomotion test modules silence that for each test."""
    import mujoco

    old = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: None)
    yield
    mujoco.set_mju_user_warning(old)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config, items):
    """gpu-marked tests are skipped, with the reason, when cupy or a device is missing."""
    if gpu_usable():
        return
    reason = backend.probe()["cupy"][1]
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"no usable GPU: {reason}"))
