"""MPI: population shares, members drawn alone equal to ask()'s rows, and with a real mpiexec (the mpich wheel
of the mpi extra) a sharded run bit-identical to the single-process run, and a sweep over ranks."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from esprune import config, distributed, strategies
from esprune.errors import ConfigError
from esprune.imp import Experiment
from esprune.store import RunFile

from test_sweep import BASE, assert_same_run, write_grid

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def mpiexec():
    """(mpiexec, esprune) or a skip with the reason."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'esprune[mpi]')")
    launcher = BIN / "mpiexec" if (BIN / "mpiexec").exists() else shutil.which("mpiexec")
    if not launcher:
        pytest.skip("no mpiexec found (the mpich wheel of the mpi extra provides one)")
    return str(launcher), str(BIN / "esprune")


@pytest.mark.parametrize("P, R", [(7, 2), (7, 3), (10, 4), (3, 3), (100, 7)])
def test_shares_are_contiguous_cover_the_population_and_differ_by_at_most_one(P, R):
    spans = distributed.shares(P, R)
    assert spans[0][0] == 0 and spans[-1][1] == P
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    sizes = [hi - lo for lo, hi in spans]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize("name, hp", [("sep_cma_es", {}), ("open_es", {}), ("snes", {}),
                                      ("pgpe", {"w_decay": 0.01})])
def test_members_drawn_alone_are_asks_rows_and_tell_is_unchanged(name, hp):
    """ask_members(lo, hi) gives exactly rows lo..hi of ask(); tell after it reaches the same state bitwise
    (antithetic open_es mirrors rows across halves; w_decay needs the whole population)."""
    full = strategies.make(name, 13, 10, seed=4, backend="numba", **hp)
    part = strategies.make(name, 13, 10, seed=4, backend="numba", **hp)
    rng = np.random.default_rng(0)
    for _ in range(3):
        pop = full.ask()
        pieces = [part.ask_members(lo, hi) for lo, hi in distributed.shares(10, 3)]
        np.testing.assert_array_equal(np.concatenate(pieces), pop)
        fitness = rng.standard_normal(10)
        full.tell(fitness)
        part.tell(fitness)
    for key, value in full.state_dict().items():
        np.testing.assert_array_equal(np.asarray(part.state_dict()[key]), np.asarray(value), err_msg=key)


def test_launcher_environment_gives_size_and_rank(monkeypatch):
    for var in distributed._SIZE_VARS + distributed._RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    assert (distributed.world_size(), distributed.rank()) == (1, 0)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")  # srun of a plain program: not MPI
    assert distributed.world_size() == 1
    monkeypatch.setenv("PMI_SIZE", "3")
    monkeypatch.setenv("PMI_RANK", "2")
    assert (distributed.world_size(), distributed.rank()) == (3, 2)


def test_runs_that_cannot_be_sharded_are_refused():
    with pytest.raises(ConfigError, match="smaller than the 4 MPI ranks"):
        distributed._check({"trainer": "es", "popsize": 3, "task": "CartPole-v1", "task_options": {}}, 4)
    with pytest.raises(ConfigError, match="gradient-descent"):
        distributed._check({"trainer": "gd", "popsize": 100}, 2)
    pytest.importorskip("mujoco")
    with pytest.raises(ConfigError, match="observation statistics"):  # ranks would drift apart
        distributed._check({"trainer": "es", "popsize": 8, "task": "Hopper-v5", "task_options": {}}, 2)


@pytest.mark.slow
def test_sharded_run_is_bit_identical_to_the_single_process_run(tmp_path):
    """P = 7: shares 4+3 (R = 2) and 3+2+2 (R = 3). The R = 3 run is killed inside iteration 1 and resumed by
    R = 2; both files equal the single-process run's, dataset by dataset."""
    launcher, esprune = mpiexec()
    toml = tmp_path / "ck.toml"
    toml.write_text("checkpoint_every = 1\n")
    flags = [str(toml), "--task", "CartPole-v1", "--popsize", "7", "--generations", "4", "--iterations", "1",
             "--seed", "3", "--quiet"]
    cfg = config.resolve({"task": "CartPole-v1", "popsize": 7, "generations": 4, "iterations": 1, "seed": 3,
                          "checkpoint_every": 1})
    Experiment.start(cfg, tmp_path / "one.h5").execute()

    def mpi(ranks, *args, env=None):
        return subprocess.run([launcher, "-n", str(ranks), esprune, *args], capture_output=True, text=True,
                              timeout=300, env={**os.environ, **(env or {})})

    done = mpi(2, "run", *flags, "--out", str(tmp_path / "r2.h5"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("sparsity") == 1  # rank 0 alone prints the table
    assert_same_run(tmp_path / "r2.h5", tmp_path / "one.h5")
    killed = mpi(3, "run", *flags, "--out", str(tmp_path / "r3.h5"), env={"ESPRUNE_KILL_AT": "1:2"})
    assert killed.returncode != 0
    resumed = mpi(2, "resume", str(tmp_path / "r3.h5"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "r3.h5", tmp_path / "one.h5")
    again = mpi(2, "run", *flags, "--out", str(tmp_path / "r2.h5"))
    assert again.returncode == 2 and again.stderr.count("already exists") == 2  # every rank stops, none hangs


@pytest.mark.parametrize("rank", [0, 1])
def test_one_rank_out_of_memory_mid_run_ends_the_whole_job_with_one_line(tmp_path, rank):
    """Rank ``rank`` alone runs out of memory inside iteration 1 (the test hook ESPRUNE_OOM_AT): the job ends
    at once with status 2 and the one-line error, once; before, the other rank waited in its next allgather
    for ever."""
    launcher, esprune = mpiexec()
    private = set(Path(tempfile.gettempdir()).glob("esprune-rank*"))
    done = subprocess.run([launcher, "-n", "2", esprune, "run", "--task", "CartPole-v1", "--popsize", "7",
                           "--generations", "4", "--iterations", "1", "--out", str(tmp_path / "r.h5"), "--quiet"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ESPRUNE_OOM_AT": f"1:2:{rank}"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count(f"Error: out of memory: this needs more memory than this machine has "
                             f"(ESPRUNE_OOM_AT=1:2:{rank}); reduce --popsize") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert RunFile.open(tmp_path / "r.h5").tickets() == 2  # iteration 0's commit stays
    left = set(Path(tempfile.gettempdir()).glob("esprune-rank*")) - private
    assert not [p for p in left if p.name.startswith(f"esprune-rank{rank}-")]  # the aborting rank removed its copy
    for folder in left:  # the rank the launcher killed: gone once its process is (the launcher does not wait)
        pid = int(folder.name.split("-pid")[1].split("-")[0])
        for _ in range(100):
            if not distributed._alive(pid):
                break
            time.sleep(0.1)
    again = subprocess.run([launcher, "-n", "2", esprune, "run", "--task", "CartPole-v1", "--popsize", "7",
                            "--generations", "1", "--iterations", "0", "--out", str(tmp_path / "s.h5"), "--quiet"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert not {p.name for p in set(Path(tempfile.gettempdir()).glob("esprune-rank*")) - private}  # next start: gone


@pytest.mark.slow
def test_sweep_over_ranks_runs_every_point_once(tmp_path):
    launcher, esprune = mpiexec()
    grid = write_grid(tmp_path, 'seed = [0, 1, 2]\n', BASE.replace("generations = 4", "generations = 2"))
    out = tmp_path / "d"
    done = subprocess.run([launcher, "-n", "3", esprune, "sweep", str(grid), "--dir", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 run, 0 resumed, 0 already done, 0 failed" in done.stdout
    from esprune import sweep

    assert [r["state"] for r in sweep.status(out)] == ["done"] * 3
    point = sweep.expand(sweep.load(grid), out)[1]
    Experiment.start(point.config, tmp_path / "alone.h5").execute()
    assert_same_run(point.path, tmp_path / "alone.h5")


def test_bench_measure_in_one_process_counts_no_bytes():
    from esprune.bench import mpi as bench_mpi

    out = bench_mpi.measure(generations=2, popsize=4, episodes=1)
    assert (out["ranks"], out["mpi"], out["bytes_sent_per_rank"], out["bytes_received_per_rank"]) == (1, False, 0, 0)
    assert 0 < out["min_s"] <= out["median_s"] <= out["max_s"]
    rows = {"workload": "w", "same_mean_after_all_generations": True,
            "rows": [{**out, "config": "single", "speedup_vs_single": 1.0}]}
    assert "single" in bench_mpi.render(rows)
