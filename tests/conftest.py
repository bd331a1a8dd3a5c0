import os
from pathlib import Path

import numpy as np
import pytest

from esprune import backend


def gpu_usable() -> bool:
    return backend.probe()["cupy"][0]


@pytest.fixture
def cupy_backend():
    """The cupy backend, or a skip saying why it cannot be used here."""
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
