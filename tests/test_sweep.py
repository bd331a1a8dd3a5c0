"""Sweeps: grids checked before anything runs, one run file per point, a killed sweep continued by the same
command to the numbers of uninterrupted runs, status lines, and the paper's grid presets."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config, grids, presets, sweep
from esprune.errors import ConfigError
from esprune.imp import Experiment

ROOT = Path(__file__).resolve().parents[1]
BASE = """
[base]
task = "CartPole-v1"
popsize = 6
generations = 4
iterations = 1
keep = 0.5
eval_every = 2
checkpoint_every = 1
task_options = {episodes = 2}
"""


def write_grid(tmp_path, axes, base=BASE):
    path = tmp_path / "grid.toml"
    path.write_text(base + "[axes]\n" + axes)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def datasets(path):
    """Every dataset of a run file except the wall-clock column of the summary."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    out["summary"] = np.array([tuple(r)[:-1] for r in out["summary"]], dtype=np.float64)
    return out


def assert_same_run(a, b):
    da, db = datasets(a), datasets(b)
    assert da.keys() == db.keys()
    for name in da:
        np.testing.assert_array_equal(da[name], db[name], err_msg=name)


@pytest.mark.parametrize("axes, grid_base, message", [
    ('bogus = [1, 2]\n', BASE, "unknown axis key 'bogus'"),
    ('seed = []\n', BASE, "axis seed is empty"),
    ('seed = 3\n', BASE, "axis seed must be a list"),
    ('seed = [0, 0]\n', BASE, "have the same config"),
    ('strategy = ["SNES", "snes"]\n', BASE, "have the same config"),  # one strategy, two spellings
    ('seed = [0, 1]\npopsize = [6, 1]\n', BASE, "popsize"),  # the last point is bad: nothing runs
    ('"strategy_options.no_such" = [1]\n', BASE, "unknown hyperparameter"),
    ('"seed.x" = [1]\n', BASE, "take dotted option names"),
    ('seed = [0]\n', BASE + "colour = 1\n", "unknown config key"),
    ('seed = [0]\n', "[bases]\nseed = 1\n", "unknown grid key"),
])
def test_bad_grid_is_one_line_exit_2_before_any_run(tmp_path, axes, grid_base, message):
    result = invoke("sweep", write_grid(tmp_path, axes, grid_base), "--dir", tmp_path / "d")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("d/*.h5"))


def test_points_are_named_from_axis_values_and_configs_are_base_plus_point(tmp_path):
    grid = sweep.load(write_grid(tmp_path, 'seed = [0, 1]\nstrategy_options.sigma_init = [0.05, 0.2]\n'))
    points = sweep.expand(grid, tmp_path / "d")
    assert [p.path.name for p in points] == ["seed=0__sigma_init=0.05.h5", "seed=0__sigma_init=0.2.h5",
                                             "seed=1__sigma_init=0.05.h5", "seed=1__sigma_init=0.2.h5"]
    base = grid["base"]
    assert points[3].config == config.resolve(base, {"seed": 1, "strategy_options": {"sigma_init": 0.2}},
                                              prepare=False)


def test_axes_of_equal_option_names_keep_their_table_in_the_name():
    names = sweep._short_names(["seed", "strategy_options.sigma_init", "task_options.batch_size",
                                "gd_options.batch_size"])
    assert names == {"seed": "seed", "strategy_options.sigma_init": "sigma_init",
                     "task_options.batch_size": "task_options.batch_size", "gd_options.batch_size": "gd_options.batch_size"}


def test_toml_dotted_option_keys_are_axes_too(tmp_path):
    dotted = sweep.expand(sweep.load(write_grid(tmp_path, 'strategy_options.sigma_init = [0.05]\n')), tmp_path)
    quoted = sweep.expand(sweep.load(write_grid(tmp_path, '"strategy_options.sigma_init" = [0.05]\n')), tmp_path)
    assert dotted[0].name == quoted[0].name == "sigma_init=0.05"
    assert dotted[0].config["strategy_options"]["sigma_init"] == 0.05


def test_a_file_of_another_config_in_the_directory_is_refused(tmp_path):
    grid = sweep.load(write_grid(tmp_path, 'seed = [0]\n'))
    point = sweep.expand(grid, tmp_path / "d")[0]
    Experiment.start(config.resolve(point.config, {"popsize": 8}), point.path)
    with pytest.raises(ConfigError, match=r"another config .*\(differs in popsize\)"):
        sweep.expand(grid, tmp_path / "d")


def test_grid_presets_expand_and_scale(tmp_path):
    points = sweep.expand(grids.get("fig1-pendulum"), tmp_path, scale=0.01)
    assert len(points) == 15 and {p.config["prune"] for p in points} == {"snr", "magnitude", "random-reinit"}
    assert {p.config["seed"] for p in points} == {0, 1, 2, 3, 4}
    cfg = points[0].config
    assert (cfg["task"], cfg["generations"], cfg["eval_every"], cfg["popsize"], cfg["iterations"]) == \
           ("Pendulum-v1", 20, 1, 100, 20)  # budget cut, sparsity levels and population kept
    full = sweep.expand(grids.get("fig1-pendulum"), tmp_path)[0].config
    assert full["generations"] == 2000 and full["eval_every"] == 50
    fig3 = sweep.expand(grids.get("fig3-cartpole"), tmp_path, scale=0.01)
    assert {(p.config["trainer"], p.config["prune"]) for p in fig3} == {("es", "snr"), ("gd", "magnitude")}
    gd = next(p.config for p in fig3 if p.config["trainer"] == "gd")
    assert gd["gd_options"]["timesteps"] == 2000
    assert sweep.scaled({"generations": 10, "eval_every": 5, "checkpoint_every": 50, "gd_options": {}}, 0.01) == \
        {"generations": 1, "eval_every": 1, "checkpoint_every": 1}


@pytest.mark.slow
def test_killed_sweep_continues_with_the_same_command_to_uninterrupted_numbers(tmp_path):
    grid = write_grid(tmp_path, 'seed = [0, 1]\nprune = ["random-reinit"]\n')
    out = tmp_path / "d"
    cmd = [sys.executable, "-c", "from cli import main; main()", "sweep", str(grid), "--dir", str(out), "--quiet"]
    killed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "ESPRUNE_KILL_AT": "1:3"})  # the first point dies in iteration 1
    assert killed.returncode == -9
    rows = {r["point"]: r["state"] for r in sweep.status(out)}
    assert rows["seed=0__prune=random-reinit"] == "partial (iteration 1, generation 3)"
    assert rows["seed=1__prune=random-reinit"] == "not started"
    status = invoke("sweep", "status", out)
    assert status.exit_code == 0 and len(status.output.strip().splitlines()) == 2
    again = subprocess.run(cmd + ["--jobs", "2"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "1 run, 1 resumed, 0 already done, 0 failed" in again.stdout
    assert {r["state"] for r in sweep.status(out)} == {"done"}
    for point in sweep.expand(sweep.load(grid), out):
        alone = tmp_path / f"alone-{point.name}.h5"
        Experiment.start(point.config, alone).execute()
        assert_same_run(point.path, alone)
    third = invoke("sweep", grid, "--dir", out, "--quiet")
    assert third.exit_code == 0 and "0 run, 0 resumed, 2 already done" in third.output


def test_only_runs_the_points_asked_for_and_the_status_keeps_the_whole_grid(tmp_path):
    grid = write_grid(tmp_path, 'seed = [0, 1]\nstrategy_options.sigma_init = [0.05, 0.2]\n')
    out = tmp_path / "d"
    done = invoke("sweep", "start", grid, "--dir", out, "--only", "sigma_init=0.20", "--only", "seed=1", "--quiet")
    assert done.exit_code == 0, done.output
    assert "1 of 4 points (--only)" in done.output and "1 run, 0 resumed" in done.output
    assert [(r["point"], r["state"]) for r in sweep.status(out)] == [
        ("seed=0__sigma_init=0.05", "not started"), ("seed=0__sigma_init=0.2", "not started"),
        ("seed=1__sigma_init=0.05", "not started"), ("seed=1__sigma_init=0.2", "done")]
    points = sweep.expand(sweep.load(grid), out)
    either = sweep.select(points, [("seed", "0"), ("seed", "1"), ("strategy_options.sigma_init", "0.05")])
    assert [p.name for p in either] == ["seed=0__sigma_init=0.05", "seed=1__sigma_init=0.05"]
    by_value = sweep.select(points, [(" seed", "1.0"), ("sigma_init", "5e-2")])  # numbers compare by value
    assert [p.name for p in by_value] == ["seed=1__sigma_init=0.05"]
    spelled = sweep.select(points, [("seed", "01"), ("sigma_init", ".05")])  # spellings JSON refuses, as numbers
    assert [p.name for p in spelled] == ["seed=1__sigma_init=0.05"]
    # text values compare as text, bare or quoted ("01" is not "1"); true is not 1
    assert [sweep._matches(given, value) for given, value in [("snr", "snr"), ('"snr"', "snr"), ("01", "1"),
                                                              ("1", "1"), ("1", True), ("true", True)]] == [
        True, True, False, True, False, True]
    for only, message in [("sigma=0.05", "sigma is not an axis of this grid (axes: seed, strategy_options.sigma_init)"),
                          ("seed=2", "axis seed has the values 0, 1 (one value per --only"),
                          ("seed=nan", "axis seed has the values 0, 1"),
                          ("seed=\uff11", "axis seed has the values 0, 1"),  # a fullwidth 1: float() takes it
                          ("seed=true", "axis seed has the values 0, 1"),
                          ("prune=snr,magnitude", "prune is not an axis"), ("seed", "--only takes AXIS=VALUE")]:
        refused = invoke("sweep", "start", grid, "--dir", out, "--only", only, "--quiet")
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert len(refused.output.strip().splitlines()) == 1
    assert len(sweep.status(out)) == 4


def test_only_needs_the_data_of_the_points_it_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ESPRUNE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/esprune either
    (tmp_path / "empty").mkdir()
    grid = tmp_path / "g.toml"
    grid.write_text('[base]\ngenerations = 2\niterations = 0\n[axes]\ntask = ["CartPole-v1", "mnist"]\n')
    whole = invoke("sweep", "start", grid, "--dir", tmp_path / "d", "--list")
    assert whole.exit_code == 2 and "grid point task=mnist" in whole.output and "not found" in whole.output
    part = invoke("sweep", "start", grid, "--dir", tmp_path / "d", "--list", "--only", "task=CartPole-v1")
    assert part.exit_code == 0, part.output
    assert "task=CartPole-v1.h5  new" in part.output and "1 of 2 points (--only); nothing run" in part.output


def test_a_second_grid_is_refused_in_a_sweeps_folder_and_only_checks_the_files_it_runs(tmp_path):
    out = tmp_path / "d"
    first = write_grid(tmp_path, 'seed = [0, 1]\n')
    assert invoke("sweep", "start", first, "--dir", out, "--only", "seed=0", "--quiet").exit_code == 0
    other = tmp_path / "other.toml"
    other.write_text(BASE + "[axes]\nseed = [5]\n")
    refused = invoke("sweep", "start", other, "--dir", out, "--quiet")
    assert refused.exit_code == 2 and "holds the sweep of another grid" in refused.output
    assert [r["point"] for r in sweep.status(out)] == ["seed=0", "seed=1"]  # the first grid's manifest stands
    scaled = invoke("sweep", "start", first, "--dir", out, "--only", "seed=1", "--scale", "0.5", "--list")
    assert scaled.exit_code == 0, scaled.output  # seed=0's file (another budget) is not among the points run
    assert invoke("sweep", "start", first, "--dir", out, "--scale", "0.5", "--list").exit_code == 2


def test_status_lists_points_not_started(tmp_path):
    grid = sweep.load(write_grid(tmp_path, 'seed = [0, 1]\n'))
    points = sweep.expand(grid, tmp_path / "d")
    sweep.write_manifest(points, tmp_path / "d", grid)
    assert sweep.run_point(points[0]) == "finished"
    rows = sweep.status(tmp_path / "d")
    assert [(r["point"], r["state"], r["tickets_trained"], r["tickets"]) for r in rows] == [
        ("seed=0", "done", 2, 2), ("seed=1", "not started", None, None)]  # the grid's iterations = 1: 2 tickets
    assert sweep.run_point(points[0]) == "skipped"
    assert json.loads(invoke("sweep", "status", tmp_path / "d", "--json").output)[0]["state"] == "done"
    assert invoke("sweep", "status", tmp_path / "nothing").exit_code == 2


@pytest.mark.parametrize("name", sorted(grids.REPRO))
def test_reproduction_grids_are_three_seeds_of_the_paper_preset_with_only_the_stated_cuts(tmp_path, name):
    """REPRODUCTION.md's grids: ≥ 3 seeds, and each point is its preset's paper config except the keys its
    [base] names (the budget cuts REPRODUCTION.md states), so nothing else departs silently."""
    grid = grids.get(name)
    assert len(grid["axes"]["seed"]) >= 3
    for point in sweep.expand(grid, tmp_path, prepare=False):
        paper = config.resolve(presets.get(grid["preset"]),
                               {k: v for k, v in point.values.items()}, prepare=False).to_dict()
        mine = point.config.to_dict()
        differ = {k for k in mine if mine[k] != paper[k]}
        assert differ <= set(grid.get("base", {})), differ


def test_reproduce_script_trains_transfers_with_the_target_grids_strategy_options():
    """scripts/reproduce.sh gives the SNES → PGPE transfer its strategy options flag by flag (a new strategy starts
    from its defaults): they must be the PGPE target grid's, or the transfer and its target curves differ in more
    than the ticket."""
    import re
    from pathlib import Path

    from cli import _key_values

    script = (Path(__file__).parents[1] / "scripts" / "reproduce.sh").read_text()
    block = re.search(r"PGPE_OPTIONS=\((.*?)\)", script, re.S).group(1)
    given = _key_values(re.findall(r"--strategy-option (\S+)", block), "--strategy-option")
    assert given == presets.get(grids.get("repro-pgpe-fashion-mnist")["preset"])["strategy_options"]


def test_a_point_out_of_memory_is_its_error_line_and_other_errors_still_raise(tmp_path, monkeypatch):
    """One point too big for the machine must not end the sweep's other points (a MemoryError, or numpy's
    ValueError for a size beyond addressing), while a real bug (another ValueError) is not hidden."""
    points = sweep.expand(sweep.load(write_grid(tmp_path, "seed = [0]\n")), tmp_path / "d")

    def fails_with(err):
        def run_point(point, progress=None):
            raise err
        return run_point

    monkeypatch.setattr(sweep, "run_point", fails_with(MemoryError("Unable to allocate 8.00 TiB")))
    assert sweep.attempt(points[0]).startswith("error: out of memory")
    monkeypatch.setattr(sweep, "run_point", fails_with(ValueError("Maximum allowed size exceeded")))
    assert sweep.attempt(points[0]).startswith("error: out of memory")
    monkeypatch.setattr(sweep, "run_point", fails_with(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        sweep.attempt(points[0])


def test_reproduce_status_lists_each_experiment_and_runs_nothing(tmp_path):
    """`make reproduce-status`: every sweeps/repro-* folder's points with their state, and the reproduction grids
    not started yet, without running anything (hours of work would start otherwise)."""
    d = tmp_path / "sweeps" / "repro-pendulum"
    d.mkdir(parents=True)
    tiny = {"task": "CartPole-v1", "task_options": {"episodes": 1}, "iterations": 0, "generations": 2, "popsize": 4,
            "eval_every": 1}
    Experiment.start(config.resolve(tiny), d / "seed=0__prune=snr.h5").execute()
    env = {**os.environ, "ES": str(Path(sys.executable).with_name("esprune")), "STAGES": "pendulum"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "reproduce.sh"), "--status"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "seed=0__prune=snr" in done.stdout and "done" in done.stdout
    assert "sweeps/repro-fashion-mnist: not started" in done.stdout
    assert sorted(p.name for p in d.iterdir()) == ["seed=0__prune=snr.h5"]  # nothing ran, nothing was written
    for args, extra, message in [(["--stauts"], {}, "unknown argument(s) --stauts"),
                                 (["status", "x"], {}, "unknown argument(s) status x"),
                                 (["--status"], {"ES": str(tmp_path / "no-venv" / "esprune")}, "run make setup")]:
        refused = subprocess.run(["bash", str(ROOT / "scripts" / "reproduce.sh"), *args], cwd=tmp_path,
                                 env={**env, **extra}, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr  # a typo starts no stage
    assert sorted(p.name for p in d.iterdir()) == ["seed=0__prune=snr.h5"]


def test_points_another_process_runs_are_waited_for_and_continued_here_if_it_stops(tmp_path, monkeypatch):
    """Two `sweep start` of one grid (two shells, or machines on a shared disk) share its points: a point whose
    run file another process holds is neither failed nor run twice; the sweep waits for it, counts it as done
    there when that process finishes it, and runs or resumes it itself when that process stops first."""
    import threading

    import cli as cli_module
    from esprune.store import RunFile

    monkeypatch.setattr(cli_module, "_POLL_S", 0.2)
    grid = write_grid(tmp_path, 'seed = [0, 1, 2]\n')
    out = tmp_path / "d"
    done_there, stopped_there, free = sweep.expand(sweep.load(grid), out)
    Experiment.start(done_there.config, done_there.path).execute()  # finished by "the other process"
    holds = [RunFile(done_there.path), RunFile(stopped_there.path)]  # its locks (flock: other file descriptions)
    for hold in holds:
        hold.lock()
    timers = [threading.Timer(0.5, holds[0].unlock, kwargs={"remove": True}),
              threading.Timer(1.0, holds[1].unlock, kwargs={"remove": True})]  # stopped before writing its point
    for t in timers:
        t.start()
    try:
        shared = invoke("sweep", "start", grid, "--dir", out, "--quiet")
    finally:
        for t in timers:
            t.join()
    assert shared.exit_code == 0, shared.output
    assert "waiting for 2 point(s) another esprune process is running" in shared.output
    assert "2 run, 0 resumed, 0 already done, 0 failed, 1 done by another esprune process" in shared.output
    assert "error" not in shared.output
    assert [r["state"] for r in sweep.status(out)] == ["done"] * 3
    alone = tmp_path / "alone.h5"
    Experiment.start(stopped_there.config, alone).execute()
    assert_same_run(stopped_there.path, alone)
    assert not list(out.glob("*.lock")) and not list(out.glob("*.tmp"))


def test_a_point_created_by_another_sweep_between_the_check_and_the_start_is_not_a_failure(tmp_path, monkeypatch):
    """The race of two sweeps on a new point: the file appears after this sweep saw none. It is then treated as
    a file that was there (here: finished, so skipped), not as "already exists; pass --overwrite"."""
    point = sweep.expand(sweep.load(write_grid(tmp_path, 'seed = [0]\n')), tmp_path / "d")[0]
    Experiment.start(point.config, point.path).execute()
    real_exists = Path.exists
    first = []

    def exists(path):  # the first look at the point's file happens before the other sweep wrote it
        if path == point.path and not first:
            first.append(True)
            return False
        return real_exists(path)

    monkeypatch.setattr(Path, "exists", exists)
    assert sweep.run_point(point) == "skipped"
    assert first
