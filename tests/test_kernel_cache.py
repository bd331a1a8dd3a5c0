"""Compiled kernels are cached on disk across processes (ops/jit.py): the first run says it is compiling, the
next one compiles nothing; an unwritable cache location falls back to compiling in every process."""
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from esprune.ops import jit

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, cache_home, name):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", "from cli import main; main()", "run", "--task", "Pendulum-v1",
                           "--iterations", "1", "--keep", "0.5", "--generations", "2", "--popsize", "4",
                           "--out", str(tmp_path / name)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # two processes, the first compiles every kernel of the run
def test_the_second_process_loads_the_kernels_the_first_compiled(tmp_path):
    first = _run(tmp_path, tmp_path / "cache", "a.h5")
    assert first.returncode == 0, first.stderr
    assert "compiling kernels (first run only" in first.stderr
    assert list((tmp_path / "cache" / "esprune" / "numba" / jit.source_hash()).rglob("*.nbi"))
    second = _run(tmp_path, tmp_path / "cache", "b.h5")
    assert second.returncode == 0, second.stderr
    assert "compiling kernels" not in second.stderr


def test_kernels_named_per_environment_do_not_share_cache_entries():
    from esprune.ops import rollout
    from esprune.tasks import acrobot, cartpole

    a, b = rollout._twin(cartpole), rollout._twin(acrobot)
    assert a.py_func.__qualname__ == "_members_cartpole" and b.py_func.__qualname__ == "_members_acrobot"
    assert a.py_func.__globals__["_env_step"] is cartpole.step and b.py_func.__globals__["_env_step"] is acrobot.step


def test_an_unwritable_cache_location_compiles_in_process(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    jit.cache_dir.cache_clear()
    try:
        assert jit.cache_dir() is None                      # esprune's directory cannot be made
    finally:
        jit.cache_dir.cache_clear()
    real = numba.njit

    def no_locator(*args, **options):                     # numba's own fallbacks unusable too
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'twice': no locator available for file")
        return real(*args, **options)
    monkeypatch.setattr(numba, "njit", no_locator)

    def twice(x):
        return 2 * x
    assert jit.njit()(twice)(np.arange(3)).tolist() == [0, 2, 4]


@pytest.mark.parametrize("given,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_between_parallel_kernels_unless_the_user_says(given, expected):
    """ops/jit.py sets OMP_WAIT_POLICY=PASSIVE before any kernel runs (spinning OpenMP threads took a core from
    the rollout's threads), and keeps a value the user set."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", "import os, esprune.ops.noise; print(os.environ['OMP_WAIT_POLICY'])"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
