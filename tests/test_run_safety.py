"""Issue 15: a user mistake prints one line and exits 2, and nothing is lost. Each fault found by trying esprune
as a new user would (bad inputs, faults, symlinks, a full disk) has a test here; every run is tiny and every
test works in its own temporary directory."""
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config, store, strategies
from esprune.errors import BackendUnavailable, ConfigError, UserError
from esprune.imp import Experiment
from esprune.store import RunFile, RunFileError

TINY = {"task": "CartPole-v1", "task_options": {"episodes": 1}, "strategy": "sep_cma_es", "prune": "snr",
        "iterations": 1, "keep": 0.5, "generations": 4, "popsize": 4, "eval_every": 2, "checkpoint_every": 1,
        "seed": 5}
FLAGS = ["--task", "CartPole-v1", "--iterations", "1", "--keep", "0.5", "--generations", "4", "--popsize", "4",
         "--seed", "5", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, words=""):
    """Exit status 2, the error in one line naming ``words`` (after any progress line), no usage block, no
    traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert lines and lines[-1].startswith("Error: ") and words in lines[-1], lines
    assert not any(line.startswith(("Usage:", "Try ", "Traceback")) for line in lines), lines
    assert sum(line.startswith("Error") for line in lines) == 1 and "Traceback" not in result.output
    return lines[-1]


@pytest.mark.parametrize("flag, message", [
    ("--task-option=episodes=true", "episodes must be an integer, got true"),
    ("--task-option=episodes=null", "episodes must be an integer, got null"),
    ("--strategy-option=sigma_init=abc", 'sigma_init must be a number, got "abc"'),
    ("--strategy-option=elite_ratio=[0.5]", "elite_ratio must be a number, got [0.5]"),
])
def test_a_bad_value_is_spelled_as_the_config_or_flag_writes_it(tmp_path, flag, message):
    """TOML and KEY=VALUE flags write true, null and "text"; Python's True, None and 'text' are not what the user
    typed."""
    one_line_error(invoke("run", *FLAGS, flag, "--out", tmp_path / "r.h5"), message)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def finished(tmp_path):
    """A finished tiny run (fresh per test: tests below damage or replace it)."""
    path = tmp_path / "good.h5"
    rows = Experiment.start(config.resolve(TINY), path).execute()
    return path, rows


def comparable(rows):
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k != "seconds"}
            for r in rows]


# ---------------------------------------------------------------------------------------------- data loss
def test_transfer_onto_its_own_source_is_refused_and_the_source_kept(finished, tmp_path):
    path, _ = finished
    before = digest(path)
    one_line_error(invoke("transfer", path, "--out", path, "--overwrite", "--quiet"), "source")
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    one_line_error(invoke("transfer", path, "--out", link, "--overwrite", "--quiet"), "source")
    assert digest(path) == before and RunFile.open(path).finished


def test_transfer_to_another_strategy_starts_from_its_own_hyperparameters(tmp_path):
    """A Sep-CMA-ES run's options (elite_ratio, learning_rates) mean nothing to SNES: the transfer drops them."""
    source = tmp_path / "src.h5"
    Experiment.start(config.resolve({**TINY, "strategy_options": {"elite_ratio": 0.5}}), source).execute()
    cfg = config.transfer_config(source, {"strategy": "snes"}, prepare=False)
    assert cfg.strategy == "snes" and "elite_ratio" not in cfg.strategy_options
    assert config.transfer_config(source, {}, prepare=False).strategy_options["elite_ratio"] == 0.5  # same ES: kept
    result = invoke("transfer", source, "--strategy", "snes", "--out", tmp_path / "t.h5", "--quiet")
    assert result.exit_code == 0, result.output


def test_transfer_takes_the_new_strategy_and_task_options_given(tmp_path):
    """SNES → PGPE and Fashion-MNIST → MNIST as the paper ran them need the target's tuned hyperparameters and
    the batch size: --strategy-option / --task-option layer them over the new strategy's / task's defaults, and
    over the source's own when the strategy or task stays."""
    source = tmp_path / "src.h5"
    Experiment.start(config.resolve({**TINY, "strategy": "snes", "strategy_options": {"temperature": 12.0}}),
                     source).execute()
    out = tmp_path / "t.h5"
    result = invoke("transfer", source, "--strategy", "pgpe", "--strategy-option", "sigma_init=0.05",
                    "--strategy-option", "sigma_rule=evosax-0.1.4", "--task-option", "episodes=2", "--out", out,
                    "--quiet")
    assert result.exit_code == 0, result.output
    cfg = RunFile.open(out).config
    assert cfg["strategy"] == "pgpe"
    assert cfg["strategy_options"] == strategies.resolved_options("pgpe", {"sigma_init": 0.05,
                                                                           "sigma_rule": "evosax-0.1.4"})
    assert cfg["task_options"]["episodes"] == 2 and cfg["task"] == "CartPole-v1"
    same = config.transfer_config(source, {"strategy_options": {"sigma_init": 0.3}}, prepare=False)
    assert same.strategy_options["temperature"] == 12.0 and same.strategy_options["sigma_init"] == 0.3
    ran = invoke("run", "--preset", "demo", "--strategy-option", "sigma_init=0.2", "--task-option", "episodes=1",
                 "--iterations", "0", "--generations", "1", "--out", tmp_path / "r.h5", "--quiet")
    assert ran.exit_code == 0, ran.output  # `esprune run` layers the same flags over its preset's options
    cfg = RunFile.open(tmp_path / "r.h5").config
    assert cfg["strategy_options"]["sigma_init"] == 0.2 and cfg["strategy_options"]["elite_ratio"] == 0.5
    assert cfg["task_options"]["episodes"] == 1
    one_line_error(invoke("transfer", source, "--strategy", "pgpe", "--strategy-option", "temperature=12",
                          "--out", tmp_path / "u.h5", "--quiet"), "temperature")
    one_line_error(invoke("transfer", source, "--task-option", "batch", "--out", tmp_path / "v.h5", "--quiet"),
                   "--task-option takes KEY=VALUE")
    one_line_error(invoke("transfer", source, "--strategy-option", "sigma_init=0.1", "--strategy-option",
                          "sigma_init=0.2", "--out", tmp_path / "w.h5", "--quiet"),
                   "--strategy-option sigma_init is given twice (sigma_init=0.1 and sigma_init=0.2)")
    assert not any((tmp_path / name).exists() for name in ("u.h5", "v.h5", "w.h5"))


def test_transfer_of_an_unfinished_source_takes_only_the_tickets_asked_for(tmp_path):
    """A source still running (or stopped) has fewer tickets now than it will have: a transfer of "all" of them
    would silently be short and look finished, so it is refused unless --iterations names the ones it has."""
    source = tmp_path / "src.h5"
    exp = Experiment.start(config.resolve({**TINY, "iterations": 2}), source)
    exp.run.unlock(remove=True)  # made, not trained: ticket 0 only
    one_line_error(invoke("transfer", source, "--out", tmp_path / "t.h5", "--quiet"), "unfinished")
    assert not (tmp_path / "t.h5").exists()
    result = invoke("transfer", source, "--iterations", "0", "--out", tmp_path / "t.h5", "--quiet")
    assert result.exit_code == 0, result.output
    assert RunFile.open(tmp_path / "t.h5").finished and RunFile.open(tmp_path / "t.h5").config["iterations"] == 0


def test_transfer_source_is_found_from_any_directory_and_when_both_files_move(tmp_path, monkeypatch):
    """tickets_from is stored relative to the transfer's own file: resume, show --config and report work from
    another working directory, and after the two folders move together."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path)
    Experiment.start(config.resolve(TINY), "a/src.h5").execute()
    result = invoke("transfer", "a/src.h5", "--iterations", "0", "--out", "b/t.h5", "--quiet")
    assert result.exit_code == 0, result.output
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "a", moved / "a")
    shutil.copytree(tmp_path / "b", moved / "b")
    monkeypatch.chdir(tmp_path / "a")  # elsewhere, and the originals still there: the moved pair reads its own
    assert os.path.samefile(RunFile.open(moved / "b" / "t.h5").config["tickets_from"], moved / "a" / "src.h5")
    result = invoke("resume", moved / "b" / "t.h5", "--iterations", "1", "--quiet")
    assert result.exit_code == 0, result.output
    from esprune import report

    transfer = RunFile.open(moved / "b" / "t.h5").config
    assert report.label(transfer, set()) == "snr tickets of sep_cma_es → sep_cma_es"
    across = report.label({**transfer, "task": "Acrobot-v1"}, set())  # a task transfer names both tasks
    assert across == f"snr tickets of sep_cma_es, {transfer['task']} → sep_cma_es, Acrobot-v1"


def test_gradient_descent_runs_refuse_evolution_strategy_flags_and_transfer_back_to_es(tmp_path):
    gd_run = tmp_path / "gd.h5"
    blobs = {"task": "blobs", "task_options": {"n_train": 128, "n_test": 32, "size": 12, "batch_size": 16},
             "trainer": "gd", "prune": "magnitude", "iterations": 1, "gd_options": {"epochs": 1}}
    Experiment.start(config.resolve(blobs), gd_run).execute()
    for flags in (["--strategy", "pgpe"], ["--strategy-option", "sigma_init=0.1"], ["--popsize", "8"],
                  ["--generations", "3"]):
        one_line_error(invoke("transfer", gd_run, *flags, "--out", tmp_path / "x.h5", "--quiet"), flags[0])
    one_line_error(invoke("run", "--task", "CartPole-v1", "--trainer", "gd", "--prune", "magnitude", "--popsize",
                          "8", "--out", tmp_path / "x.h5", "--quiet"), "--popsize")
    assert not (tmp_path / "x.h5").exists()
    result = invoke("transfer", gd_run, "--trainer", "es", "--generations", "2", "--popsize", "4",
                    "--out", tmp_path / "es.h5", "--quiet")  # the source's GD options are dropped, not an error
    assert result.exit_code == 0, result.output
    assert RunFile.open(tmp_path / "es.h5").config["gd_options"] == {}


@pytest.mark.parametrize("bad", [["--backend", "cupy"], ["--seed", "99999999999"], ["--seed", "-1"],
                                 ["--seed", "4294967295"], ["--keep", "1e-9", "--iterations", "3"]])
def test_overwrite_with_a_rejected_config_keeps_the_old_run(finished, bad):
    from esprune import backend

    if bad[1] == "cupy" and backend.probe()["cupy"][0]:
        pytest.skip("a GPU is usable here, so --backend cupy is not a mistake")
    path, _ = finished
    before = digest(path)
    one_line_error(invoke("run", *FLAGS, "--out", path, "--overwrite", *bad))
    assert digest(path) == before


def test_overwrite_replaces_the_old_run_only_when_the_first_commit_lands(finished, monkeypatch):
    path, _ = finished
    before = digest(path)
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(RunFileError, match="no space left"):
        Experiment.start(config.resolve(TINY), path, overwrite=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert digest(path) == before and not (path.parent / "good.h5.tmp").exists()


def test_every_iterations_seed_is_checked_up_front():
    top = 2**32 - 1
    with pytest.raises(ConfigError, match="every iteration's seed"):
        config.resolve({**TINY, "seed": top}, prepare=False)           # seed + 1 leaves uint32 at iteration 1
    assert config.resolve({**TINY, "seed": top - 1}, prepare=False).seed_at(1) == top
    assert config.resolve({**TINY, "seed": top, "fixed_seed": True}, prepare=False).seed_at(1) == top
    for bad in ({"seed": -1}, {"init_seed": 2**32}, {"init_seed": -3}):
        with pytest.raises(ConfigError, match="seed"):
            config.resolve({**TINY, **bad}, prepare=False)


def test_a_symlinked_run_is_written_where_it_points_and_locked_once(tmp_path):
    real = tmp_path / "real" / "run.h5"
    real.parent.mkdir()
    Experiment.start(config.resolve(TINY), real).run.unlock()            # started, not run: unfinished
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    holder = RunFile.open(real)
    holder.lock()
    with pytest.raises(RunFileError, match="another esprune process"):
        RunFile.open(link).lock()                                       # one lock for both names
    holder.unlock()
    Experiment.resume(link).execute()
    assert link.is_symlink() and RunFile.open(real).finished
    assert not (tmp_path / "link.h5.lock").exists()



def test_a_run_or_resume_that_ends_cleanly_leaves_no_lock_file(tmp_path):
    path = tmp_path / "run.h5"
    assert invoke("run", *FLAGS, "--out", path).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]
    stopped = tmp_path / "stopped.h5"
    Experiment.start(config.resolve(TINY), stopped).run.unlock()       # as a killed run leaves it: a lock file
    assert (tmp_path / "stopped.h5.lock").exists()
    assert invoke("resume", stopped, "--quiet").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "stopped.h5"]


@pytest.mark.parametrize("fail_at", [1, 3])  # the creating commit; a checkpoint inside iteration 0
def test_a_one_line_error_leaves_no_lock_file(tmp_path, monkeypatch, fail_at):
    toml = tmp_path / "tiny.toml"
    toml.write_text("checkpoint_every = 1\n")
    _disk_full_at(monkeypatch, fail_at)
    one_line_error(invoke("run", toml, *FLAGS, "--out", tmp_path / "full.h5"), "no space left")
    assert not list(tmp_path.glob("*.lock"))


def test_a_lock_file_removed_by_its_holder_is_not_locked_by_the_next_writer(tmp_path, monkeypatch):
    """The race of removing a lock file: B opens RUN.lock, A (its holder) ends cleanly and removes it, B then
    locks the removed file. B must notice and lock the file at RUN.lock, so that a third writer C is refused."""
    path = tmp_path / "run.h5"
    a, b, c = RunFile(path), RunFile(path), RunFile(path)
    a.lock()
    real_flock, calls = store.fcntl.flock, []

    def flock(fd, how):
        calls.append(fd)
        if len(calls) == 1:
            a.unlock(remove=True)                                       # between B's open and B's flock
            assert not a.lock_path.exists()
        return real_flock(fd, how)

    monkeypatch.setattr(store.fcntl, "flock", flock)
    b.lock()
    monkeypatch.setattr(store.fcntl, "flock", real_flock)
    assert len(calls) == 2 and b.lock_path.exists()                     # B retried on the file now there
    with pytest.raises(RunFileError, match="another esprune process"):
        c.lock()
    b.unlock(remove=True)
    assert not b.lock_path.exists()
    c.lock()                                                            # free again
    c.unlock()

STRATEGY_BAD = {"elite_ratio": [1.5, -0.5, 0.0], "sigma_init": [float("nan"), float("inf"), -1.0, 1e300, 0.0, "big"],
                "lrate_init": [0.0, -1.0, "x"], "lrate_limit": [-1.0], "lrate_decay": [1.5, 0.0], "beta1": [1.0], "beta2": [-0.1],
                "sigma_decay": [2.0], "sigma_limit": [-1.0], "sigma_max_change": [1.0, -0.1], "sigma_lrate": [-1.0],
                "temperature": [float("nan"), -3.0], "lrate_mean": [0.0], "lrate_sigma": [-0.1], "w_decay": [-1.0],
                "mean_decay": [1.0, -0.1], "centered_rank": [1, "yes"], "opt": ["rmsprop"], "momentum": [1.0],
                "eps": [0.0], "z_score": [0], "norm_range": ["no"], "sigma_rule": ["evosax"], "ties": ["first"],
                "learning_rates": ["ros-hansen"]}


@pytest.mark.parametrize("strategy", sorted(strategies.REGISTRY))
def test_every_hyperparameter_range_is_checked_up_front_for_every_strategy(strategy):
    from esprune.strategies import hparams

    names = strategies.hyperparameters(strategy)
    assert set(names) <= set(hparams.RANGES)  # a new hyperparameter cannot escape the check
    for name in names:
        for value in STRATEGY_BAD[name]:
            with pytest.raises(ConfigError, match=name):
                config.resolve({**TINY, "strategy": strategy, "popsize": 4,
                                "strategy_options": {name: value}}, prepare=False)
    config.resolve({**TINY, "strategy": strategy, "strategy_options": dict(names)}, prepare=False)  # defaults pass


# ---------------------------------------------------------------------------------------------- one-line errors
def _damaged(path, tmp_path, change, name):
    out = tmp_path / name
    out.write_bytes(path.read_bytes())
    with h5py.File(out, "r+") as f:
        change(f)
    return out


@pytest.mark.parametrize("change, words", [
    (lambda f: f.__delitem__("checkpoint"), "lacks /checkpoint"),
    (lambda f: f.__delitem__("summary"), "lacks /summary"),
    (lambda f: f.attrs.__setitem__("config", "{not json"), "not valid JSON"),
    (lambda f: f.attrs.__setitem__("config", json.dumps({"task": "CartPole-v1"})), "config lacks key"),
    (lambda f: f.attrs.__setitem__("config", json.dumps([1, 2])), "not a JSON object"),
    (lambda f: f.attrs.__setitem__("format_version", "1"), "str '1'"),
])
def test_damaged_run_files_are_one_line_errors(finished, tmp_path, change, words):
    path, _ = finished
    bad = _damaged(path, tmp_path, change, "bad.h5")
    for command in (["resume", bad], ["show", bad]):
        one_line_error(invoke(*command), words if command[0] == "resume" or "config" not in words else "")


def test_resume_of_a_stub_without_checkpoint(tmp_path):
    stub = tmp_path / "stub.h5"
    with h5py.File(stub, "w") as f:  # what `run --seed -1` left behind before this fix
        f.attrs.update(format="esprune-run", format_version=1, config=json.dumps(config.DEFAULTS), param_spec="[]")
        f.create_group("iterations")
    one_line_error(invoke("resume", stub), "never completely written")


@pytest.mark.parametrize("bad, words", [
    ({"task_options": {"episodes": "many"}}, "episodes must be an integer"),
    ({"task_options": {"episodes": 2.5}}, "episodes must be an integer"),
    ({"task": "blobs", "task_options": {"batch_size": "abc"}}, "batch_size must be an integer"),
    ({"task": "blobs", "task_options": {"batch_size": 2.7}}, "batch_size must be an integer"),
    ({"strategy_options": {"sigma_init": "big"}}, "sigma_init must be a number"),
    ({"trainer": "gd", "prune": "magnitude", "gd_options": {"lr": "abc"}}, "lr must be a finite number"),
    ({"tickets_from": 5}, "tickets_from must be the path"),
    ({"strategy": ["snes"]}, "strategy must be a name"),
    ({"task_options": ["episodes"]}, "task_options must be a table"),
    ({"popsize": 1_000_000_000_000}, "GiB"),
    ({"keep": 1e-9, "iterations": 3}, "prunes all"),
    ({"keep": float("nan")}, "keep must be"),
])
def test_wrongly_typed_or_impossible_values_are_config_errors(bad, words):
    with pytest.raises(ConfigError, match=words):
        config.resolve({**TINY, **bad}, prepare=False)


def test_gd_option_and_popsize_from_the_command_line(tmp_path):
    one_line_error(invoke("run", *FLAGS, "--trainer", "gd", "--prune", "magnitude", "--gd-option", "lr=abc",
                          "--out", tmp_path / "a.h5"), "lr must be a finite number")
    one_line_error(invoke("run", *FLAGS, "--popsize", "1000000000000", "--out", tmp_path / "b.h5"), "GiB")
    one_line_error(invoke("run", *FLAGS, "--out", ""), "--out is empty")
    assert not list(tmp_path.iterdir())


def test_unwritable_output_directory_is_one_line(tmp_path, monkeypatch):
    real_open = os.open

    def refuse_locks(path, *a, **k):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", refuse_locks)
    one_line_error(invoke("run", *FLAGS, "--out", tmp_path / "x.h5"), "cannot write in")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    one_line_error(invoke("run", *FLAGS, "--out", tmp_path / "y.h5"), "cannot write in")
    assert not list(tmp_path.glob("*.h5"))


def test_resume_of_a_finished_run_says_so_without_taking_the_lock(finished, monkeypatch):
    path, _ = finished
    monkeypatch.setattr(RunFile, "lock", lambda self: (_ for _ in ()).throw(AssertionError("locked")))
    result = invoke("resume", path)
    assert result.exit_code == 0 and "already finished" in result.stderr


@pytest.mark.parametrize("fail_at", [2, 7])  # a checkpoint inside iteration 0; iteration 0's final commit
def test_disk_full_during_a_commit_is_one_line_and_the_run_resumes_to_the_same_numbers(finished, tmp_path,
                                                                                     monkeypatch, fail_at):
    _, rows = finished
    path = tmp_path / "full.h5"
    toml = tmp_path / "tiny.toml"
    toml.write_text("eval_every = 2\ncheckpoint_every = 1\n[task_options]\nepisodes = 1\n")
    real_replace = _disk_full_at(monkeypatch, fail_at)
    one_line_error(invoke("run", toml, *FLAGS, "--out", path), "no space left")
    monkeypatch.setattr(os, "replace", real_replace)
    assert not list(tmp_path.glob("*.tmp"))
    assert invoke("resume", path, "--quiet").exit_code == 0
    assert comparable(RunFile.open(path).summary()) == comparable(rows)


def test_output_paths_of_report_and_bench_are_checked_before_the_work(finished, tmp_path, monkeypatch):
    from esprune import report_grid
    from esprune.bench import rollouts

    path, _ = finished
    monkeypatch.setattr(report_grid, "report", lambda *a, **k: pytest.fail("report drew before checking -o"))
    one_line_error(invoke("report", path, "-o", tmp_path / "f.xyz"), "format")
    one_line_error(invoke("report", path, "-o", tmp_path / "nodir" / "f.png"), "does not exist")
    monkeypatch.setattr(rollouts, "task_rollouts", lambda *a, **k: pytest.fail("bench ran before checking --out"))
    one_line_error(invoke("bench", "tasks", "--out", tmp_path / "nodir" / "b.json"), "does not exist")


def test_click_usage_errors_are_one_line():
    one_line_error(invoke("run", "--bogus"), "No such option")
    one_line_error(invoke("nosuchcommand"), "No such command")
    one_line_error(invoke("run", "--popsize", "many"), "popsize")
    assert invoke("data").exit_code in (0, 2) and "Usage" in invoke("data").output  # a bare group shows help


# ---------------------------------------------------------------------------------------------- silently wrong
def test_absurd_sigma_init_is_refused():
    for value in (float("nan"), float("inf"), -1.0, 1e300):
        with pytest.raises(ConfigError, match="sigma_init"):
            config.resolve({**TINY, "strategy_options": {"sigma_init": value}}, prepare=False)


def test_flatness_of_a_run_without_finished_iterations_is_refused(tmp_path):
    path = tmp_path / "new.h5"
    Experiment.start(config.resolve(TINY), path).run.unlock()
    one_line_error(invoke("flatness", path, "--out", tmp_path / "fl"), "no finished iteration")
    assert not list(tmp_path.glob("fl*"))


def test_a_file_held_open_by_another_writer_is_named_as_such(finished):
    path, _ = finished
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'a'); "
                               "print('open', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        one_line_error(invoke("show", path), "another process")
    finally:
        holder.kill()
        holder.wait()


def test_data_check_refuses_a_missing_directory_and_bad_files(tmp_path):
    one_line_error(invoke("data", "check", tmp_path / "nope"), "not a directory")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    result = invoke("data", "check", tmp_path)
    one_line_error(result, "esprune data fetch mnist")
    assert "bad      mnist/train-labels-idx1-ubyte.gz" in result.stdout and "unreadable" in result.stdout


@pytest.mark.data
def test_a_data_dir_that_is_not_there_is_refused_even_when_the_data_is_found_elsewhere(data_dir, tmp_path,
                                                                                       monkeypatch):
    """A typo in task_options.data_dir must not fall through to $ESPRUNE_DATA silently (another copy of the
    data, perhaps another version, would train without a word)."""
    monkeypatch.setenv("ESPRUNE_DATA", str(data_dir))
    result = invoke("run", "--task", "fashion_mnist", "--task-option", f"data_dir={tmp_path / 'typo'}",
                    "--iterations", "0", "--generations", "1", "--out", tmp_path / "r.h5", "--quiet")
    one_line_error(result, "not a directory")
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.parametrize("task, option", [("CartPole-v1", "episodes=0"), ("blobs", "batch_size=0")])
def test_a_bad_task_option_value_names_the_task(tmp_path, task, option):
    line = one_line_error(invoke("run", "--task", task, "--task-option", option, "--iterations", "0",
                                 "--generations", "1", "--out", tmp_path / "r.h5", "--quiet"))
    assert line.startswith(f"Error: task {task}: ") and option.split("=")[0] in line


@pytest.mark.data
def test_data_fetch_replaces_a_corrupt_file(data_dir, tmp_path):
    (tmp_path / "mnist").mkdir()
    corrupt = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    corrupt.write_bytes(b"corrupt")
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (tmp_path / "mnist" / name).symlink_to(data_dir / "mnist" / name)
    result = invoke("data", "fetch", "mnist", "--dir", tmp_path, "--url", (data_dir / "mnist").as_uri())
    assert result.exit_code == 0, result.output
    assert digest(corrupt) == digest(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")


def test_run_files_stay_near_their_data_and_checkpoints_do_not_rewrite_them(tmp_path, monkeypatch):
    """checkpoint_every = 1: the run file is committed once at creation and once per iteration; in-iteration
    checkpoints go to the small side file, and the file holds little beyond its datasets."""
    commits = []
    real_commit = RunFile.commit
    monkeypatch.setattr(RunFile, "commit", lambda self, *a, **k: (commits.append(1), real_commit(self, *a, **k)))
    path = tmp_path / "grow.h5"
    cfg = {**TINY, "iterations": 2, "generations": 30, "eval_every": 10}
    Experiment.start(config.resolve(cfg), path).execute()
    assert len(commits) == 1 + 3
    with h5py.File(path, "r") as f:
        data = []
        f.visititems(lambda name, obj: data.append(obj.nbytes) if isinstance(obj, h5py.Dataset) else None)
    assert path.stat().st_size < 2 * sum(data) + 64 * 1024, (path.stat().st_size, sum(data))
    assert not (tmp_path / "grow.h5.checkpoint").exists()  # stale once the iteration ends


# ---------------------------------------------------------------------------------------------- the config's shape
def test_run_config_is_frozen_typed_and_stores_the_resolved_backend(tmp_path):
    cfg = config.resolve({**TINY, "backend": "auto"}, prepare=False)
    assert cfg.backend in ("numba", "cupy") and cfg["backend"] == cfg.backend
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(TypeError):
        cfg.task_options["episodes"] = 3
    path = tmp_path / "auto.h5"
    Experiment.start(cfg, path).run.unlock()
    assert RunFile.open(path).config["backend"] == cfg.backend
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()


def test_resume_keeps_the_runs_backend_or_refuses_with_the_reason(tmp_path):
    from esprune import backend

    path = tmp_path / "b.h5"
    Experiment.start(config.resolve({**TINY, "backend": "numpy"}), path).run.unlock()
    assert Experiment.resume(path).cfg.backend == "numpy"
    if backend.probe()["cupy"][0]:
        return
    with h5py.File(path, "r+") as f:
        f.attrs["config"] = json.dumps({**json.loads(f.attrs["config"]), "backend": "cupy"})
    with pytest.raises(BackendUnavailable, match="continues on its own backend"):
        Experiment.resume(path)
    assert isinstance(BackendUnavailable("x"), UserError)


def _disk_full_at(monkeypatch, fail_at: int):
    """``os.replace`` fails with ENOSPC on its ``fail_at``-th call (a full disk at that commit); returns the real
    ``os.replace``."""
    calls, real_replace = [], os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return real_replace


def test_data_check_with_nothing_anywhere_names_where_it_looked_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.delenv("ESPRUNE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("esprune.datasets.DEBIAN", {})
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("data", "check", empty)
    one_line_error(result, "no dataset file found anywhere")
    assert f"12 of 12 file(s) missing; looked in {empty}" in result.stdout and "ESPRUNE_DATA" in result.stdout


def test_ctrl_c_keeps_the_checkpoint_and_leaves_no_lock_file(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    real = Experiment.execute

    def interrupted(self, progress=None, iteration_done=None, warn=None):
        def stop(k, g, best, sparsity):
            if (k, g) == (1, 2):
                raise KeyboardInterrupt
            if progress:
                progress(k, g, best, sparsity)
        return real(self, stop, iteration_done, warn)
    monkeypatch.setattr(Experiment, "execute", interrupted)
    result = invoke("run", *FLAGS, "--out", path, "--quiet")
    assert result.exit_code == 130 and "continue with: esprune resume" in result.output
    assert path.exists() and not path.with_name("run.h5.lock").exists()
    monkeypatch.setattr(Experiment, "execute", real)
    assert invoke("resume", path, "--quiet").exit_code == 0
    assert len(RunFile.open(path).summary()) == 2


def test_mujoco_warp_where_it_cannot_run_is_refused_before_the_run_file_is_touched(finished, tmp_path):
    """physics = "warp" for Humanoid-v5 (PGS solver; or without the gpu-physics extra) used to fail only at the
    first rollout: after --overwrite had already replaced the old run with an empty one."""
    pytest.importorskip("mujoco", reason="needs the mujoco extra: pip install 'esprune[mujoco]'")
    path, _ = finished
    before = digest(path)
    humanoid = tmp_path / "humanoid.toml"
    humanoid.write_text('task = "Humanoid-v5"\n[task_options]\nphysics = "warp"\nepisodes = 1\nmax_steps = 2\n')
    tiny = ["--popsize", "4", "--generations", "1", "--iterations", "0", "--quiet"]
    one_line_error(invoke("run", humanoid, *tiny, "--out", path, "--overwrite"), "cannot run on MuJoCo Warp")
    assert digest(path) == before
    fresh = tmp_path / "fresh.h5"
    one_line_error(invoke("run", humanoid, *tiny, "--out", fresh), "cannot run on MuJoCo Warp")
    assert not fresh.exists()


@pytest.mark.parametrize("value", ["false", "yes", 0, 1])
def test_a_boolean_task_option_takes_true_or_false_only(value):
    """obs_norm = "false" (text) used to be accepted and to switch normalization on."""
    pytest.importorskip("mujoco", reason="needs the mujoco extra: pip install 'esprune[mujoco]'")
    with pytest.raises(ConfigError, match="obs_norm must be true or false"):
        config.resolve({"task": "Hopper-v5", "task_options": {"obs_norm": value}}, prepare=False)


# ---------------------------------------------------------------------------------------------- absurd sizes
@pytest.mark.parametrize("command, option", [("run", "episodes=1099511627776"),
                                             ("transfer", "test_episodes=1099511627776"),
                                             ("transfer", "episodes=99999999999999999999")])
def test_overwrite_with_an_absurd_task_size_keeps_the_old_run(finished, tmp_path, command, option):
    """The size used to be checked by nothing: the old file was replaced by the new run's first commit, then
    training failed in an allocation (a traceback, exit 1, an empty run and its lock file left)."""
    path, _ = finished
    victim = tmp_path / "victim.h5"
    victim.write_bytes(path.read_bytes())
    before = digest(victim)
    args = FLAGS if command == "run" else [path]
    line = one_line_error(invoke(command, *args, "--out", victim, "--overwrite", "--task-option", option))
    assert line.startswith("Error: task CartPole-v1: " + option.split("=")[0] + " must lie in [1, 100000]")
    assert digest(victim) == before and not list(tmp_path.glob("*.lock"))


@pytest.mark.parametrize("task, table, options, words", [
    ("CartPole-v1", "task_options", {"episodes": 100_001}, "episodes must lie in [1, 100000]"),
    ("Acrobot-v1", "task_options", {"test_episodes": 2**40}, "test_episodes must lie in [1, 100000]"),
    ("Hopper-v5", "task_options", {"episodes": 2**40}, "episodes must lie"),
    ("Hopper-v5", "task_options", {"max_steps": 2**40}, "max_steps must lie in [1, 1000000]"),
    ("gym:CartPole-v1", "task_options", {"test_episodes": 2**40}, "test_episodes must lie"),
    ("gym:CartPole-v1", "task_options", {"max_steps": 0}, "max_steps must lie"),
    ("blobs", "task_options", {"n_train": 2**40}, "n_train must lie in [1, 1000000]"),
    ("blobs", "task_options", {"n_test": 0}, "n_test must lie"),
    ("blobs", "task_options", {"size": 2**40}, "size must lie in [4, 1024]"),
    ("blobs", "task_options", {"n_train": 500_000, "size": 28}, "more than the 134217728 allowed"),
    ("blobs", "task_options", {"seed": -1}, "seed must lie in [0, 4294967295]"),
    ("blobs", "task_options", {"batch_size": 2**40}, "batch_size must lie in [1, 1000000]"),
    ("mnist", "task_options", {"test_chunk": 2**40}, "test_chunk must lie"),
    ("CartPole-v1", "gd_options", {"n_envs": 2**40}, "PPO n_envs must lie in [1, 100000]"),
    ("CartPole-v1", "gd_options", {"timesteps": 2**40}, "PPO timesteps must lie"),
    ("CartPole-v1", "gd_options", {"n_envs": 10_000, "n_steps": 10_000}, "transitions per update"),
    ("CartPole-v1", "gd_options", {"epochs": 2**40}, "PPO epochs must lie"),
    ("CartPole-v1", "gd_options", {"eval_episodes": 2**40}, "PPO eval_episodes must lie"),
    ("CartPole-v1", "gd_options", {"critic_hidden": [2**40]}, "critic_hidden sizes must lie"),
    ("blobs", "gd_options", {"batch_size": 2**40}, "batch_size must lie in [1, 1000000]"),
    ("blobs", "gd_options", {"epochs": 2**40}, "epochs must lie"),
])
def test_size_options_of_every_task_and_trainer_are_bounded_up_front(task, table, options, words):
    """Each used to pass the config check and fail later: a MemoryError, numpy's ValueError, a hang (PPO with
    2**40 environments), or, for blobs' seed -1, numpy's "expected non-negative integer"."""
    if task.startswith("Hopper"):
        pytest.importorskip("mujoco", reason="needs the mujoco extra: pip install 'esprune[mujoco]'")
    gd = {"trainer": "gd", "prune": "magnitude"} if table == "gd_options" else {}
    with pytest.raises(ConfigError, match=re.escape(words)):
        config.resolve({**TINY, "task_options": {}, "task": task, **gd, table: options}, prepare=False)


def test_the_size_bounds_themselves_are_allowed():
    from esprune import gd, tasks

    task = tasks.make("CartPole-v1", episodes=100_000, test_episodes=100_000)
    assert (task.episodes, task.test_episodes) == (100_000, 100_000)
    blobs = tasks.make("blobs", n_train=1_000_000, n_test=1_000_000, size=8, seed=2**32 - 1, batch_size=1_000_000)
    assert blobs.batch_size == 1_000_000
    assert gd.make_trainer(task, n_envs=1000, n_steps=10_000, critic_hidden=[4096]).n_envs == 1000


@pytest.mark.parametrize("fault", [lambda: np.empty(2**60, dtype=np.int8),        # numpy's _ArrayMemoryError
                                   lambda: np.arange(99999999999999999999)])       # "Maximum allowed size exceeded"
def test_running_out_of_memory_is_one_line_and_leaves_no_lock_file(tmp_path, monkeypatch, fault):
    """The safety net under the bounds: a size they let through that this machine cannot hold."""
    from esprune.tasks.control import ControlTask

    monkeypatch.setattr(ControlTask, "evaluate", lambda *a, **k: fault())
    line = one_line_error(invoke("run", *FLAGS, "--out", tmp_path / "r.h5"), "out of memory")
    assert "--popsize" in line and "episodes" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_other_value_errors_are_not_taken_for_memory(tmp_path, monkeypatch):
    from esprune.tasks.control import ControlTask

    monkeypatch.setattr(ControlTask, "evaluate", lambda *a, **k: np.zeros(2).reshape(3))
    result = invoke("run", *FLAGS, "--out", tmp_path / "r.h5")
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


# ---------------------------------------------------------------------------------------------- wording
def test_a_transfer_to_another_network_names_the_network_the_options_make(finished, tmp_path):
    path, _ = finished
    line = one_line_error(invoke("transfer", path, "--task-option", "hidden=[64]", "--out", tmp_path / "z.h5"))
    assert "default" not in line and "hidden=[64]" in line and "MLP(4→64→2" in line
    assert "weights 4×64, 64×64, 64×2" in line and not (tmp_path / "z.h5").exists()


def test_an_output_path_under_a_regular_file_says_so(finished, tmp_path):
    path, _ = finished
    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt" / "x.h5", tmp_path / "notes.txt" / "sub" / "x.h5"):
        line = one_line_error(invoke("run", *FLAGS, "--out", out))
        assert "notes.txt is a file, not a directory" in line and "permission" not in line
    line = one_line_error(invoke("report", path, "-o", tmp_path / "notes.txt" / "f.png"))
    assert "notes.txt is a file, not a directory" in line
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------- reproduce.sh
@pytest.mark.parametrize("stages", ["", "  "])
def test_reproduce_with_an_empty_stages_is_refused_not_all_stages(tmp_path, stages):
    """STAGES= used to run every stage (hours). ES=false: any stage that starts fails with exit 1, not 2."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "reproduce.sh")
    env = {**os.environ, "ES": "false", "STAGES": stages}
    done = subprocess.run(["bash", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout)
    assert done.stderr.count("\n") == 1 and "STAGES is empty" in done.stderr
    del env["STAGES"]  # unset: every stage, the first of which starts (and fails at once on ES=false)
    done = subprocess.run(["bash", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "Pendulum-v1" in done.stdout


def test_a_network_too_large_for_any_population_names_the_network_not_popsize(tmp_path):
    line = one_line_error(invoke("run", *FLAGS, "--task-option", "hidden=[1099511627776]", "--out", tmp_path / "r.h5"))
    assert "use a smaller network" in line and "popsize" not in line and not list(tmp_path.iterdir())
