"""The IMP loop end to end: exact sparsities, rewinding, plain-h5py run files, bitwise resume after SIGKILL,
clear errors for foreign, truncated and incompatible files, and config validation."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from esprune import config
from esprune.errors import ConfigError, UserError
from esprune.imp import Experiment
from esprune.store import RunFile, RunFileError, from_vector

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"task": "CartPole-v1", "task_options": {"episodes": 2}, "strategy": "sep_cma_es", "prune": "snr",
         "iterations": 2, "keep": 0.5, "generations": 10, "popsize": 8, "eval_every": 4, "checkpoint_every": 3,
         "seed": 3}
FLAGS = ["--task", "CartPole-v1", "--strategy", "sep_cma_es", "--prune", "snr", "--iterations", "2", "--keep", "0.5",
         "--generations", "10", "--popsize", "8", "--seed", "3"]


def small_toml(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text("eval_every = 4\ncheckpoint_every = 3\n[task_options]\nepisodes = 2\n")
    return path


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from cli import main; main()", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)


def comparable(rows, drop=("seconds",)):
    """Rows with NaN as None (NaN != NaN) and without the wall-clock column."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k not in drop}
            for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "whole.h5"
    rows = Experiment.start(config.resolve(SMALL), path).execute()
    return path, rows


def test_run_has_exact_sparsities_rewound_tickets_and_a_plain_h5py_layout(uninterrupted):
    path, rows = uninterrupted
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    run = RunFile.open(path)
    n = run.spec.prunable_size
    for k, row in enumerate(rows):
        assert abs((1 - row["sparsity"]) * n - round(n * 0.5**k)) < 1e-6
    init0 = run.iteration(0)["init"]
    for k in (1, 2):
        it = run.iteration(k)
        np.testing.assert_array_equal(it["init"], init0)  # snr rewinds
        assert not (it["mask"] & ~run.iteration(k - 1)["mask"]).any()
        assert (it["final_mean"][~it["mask"]] == 0).all()  # the ES never touched a pruned weight
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "esprune-run" and json.loads(f.attrs["config"])["keep"] == 0.5
        assert f["summary"].shape == (3,) and set(f["summary"].dtype.names) >= {"sparsity", "test", "threshold"}
        g = f["iterations/001"]
        # tested after generation 1 (as the paper's masked_es does), every eval_every, and at the end
        assert g["train"].shape == (10, 2) and g["evals"][:, 0].tolist() == [1, 4, 8, 10]
        assert f["checkpoint"].attrs["finished"]


def test_sigkill_mid_iteration_then_resume_gives_the_same_numbers(uninterrupted, tmp_path):
    whole, rows = uninterrupted
    path = tmp_path / "killed.h5"
    killed = cli("run", str(small_toml(tmp_path)), *FLAGS, "--out", str(path), "--quiet",
                 env={"ESPRUNE_KILL_AT": "1:8"})  # two generations after the checkpoint at 6
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ck = RunFile.open(path).checkpoint()
    assert (ck["iteration"], ck["generation"], ck["finished"]) == (1, 6, False)
    assert len(RunFile.open(path).summary()) == 1
    resumed = cli("resume", str(path), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(RunFile.open(path).summary()) == comparable(rows)
    for k in range(3):
        a, b = RunFile.open(path).iteration(k), RunFile.open(whole).iteration(k)
        for key in ("init", "mask", "final_mean", "final_std", "best_mean", "train", "evals"):
            np.testing.assert_array_equal(a[key], b[key])


def test_existing_truncated_foreign_and_future_files_are_clear_errors(uninterrupted, tmp_path):
    whole, _ = uninterrupted
    with pytest.raises(RunFileError, match="already exists"):
        Experiment.start(config.resolve(SMALL), whole)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(RunFileError, match="truncated"):
        Experiment.resume(truncated)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(RunFileError, match="not an esprune run file"):
        RunFile.open(foreign)
    future = tmp_path / "future.h5"
    future.write_bytes(whole.read_bytes())
    with h5py.File(future, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(RunFileError, match="version 99"):
        RunFile.open(future)
    with pytest.raises(RunFileError, match="does not exist"):
        RunFile.open(tmp_path / "missing.h5")


@pytest.mark.parametrize("bad, message", [
    ({"kepp": 0.5}, "unknown config key"),
    ({"keep": 1.0}, "keep must be"),
    ({"generations": 0}, "generations must be"),
    ({"popsize": "many"}, "popsize must be an integer"),
    ({"strategy": "open_es", "popsize": 7}, "even"),
    ({"strategy": "cma"}, "unknown strategy"),
    ({"prune": "lamp"}, "unknown pruning method"),
    ({"prune": "snip"}, "needs a supervised loss"),
    ({"task": "Pong"}, "unknown task"),
    ({"task_options": {"epsiodes": 3}}, "unknown option"),
    ({"strategy_options": {"sigma": 0.1}}, "unknown hyperparameter"),
    ({"backend": "tpu"}, "unknown backend"),
    ({"prune_from": "middle"}, "prune_from"),
    ({"strategy": "snes", "snr_variance": True}, "Sep-CMA-ES rule"),
    ({"strategy": "pgpe", "popsize": 8, "snr_variance": True}, "Sep-CMA-ES rule"),
    ({"strategy": "des", "snr_variance": True}, "Sep-CMA-ES rule"),
    ({"strategy": "open_es", "snr_variance": True}, "Sep-CMA-ES rule"),
    ({"prune_options": {"rescore": 1}}, "true or false"),
    ({"prune_options": {"nest": True}}, "unknown prune option"),
    ({"prune": "magnitude", "prune_options": {"nested": True}}, "applies to prune = 'random-reinit' only"),
])
def test_config_validation_names_the_problem(bad, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(bad)


def test_snr_variance_is_the_sep_cma_es_rule_and_prune_options_default_to_the_papers():
    cfg = config.resolve({"strategy": "sep_cma_es", "snr_variance": True})
    assert cfg["snr_variance"] and cfg["prune_options"] == {"rescore": False, "nested": False}
    assert config.resolve({"prune": "random-reinit", "prune_options": {"nested": True}})["prune_options"]["nested"]
    from esprune import presets

    for name in presets.PRESETS:  # the paper presets run the published rules
        cfg = config.resolve(presets.get(name), prepare=False)
        assert cfg["prune_options"] == {"rescore": False, "nested": False}


def test_toml_layers_and_flags(tmp_path):
    cfg = config.resolve({"keep": 0.9}, config.load_toml(small_toml(tmp_path)), {"popsize": 12, "seed": None})
    assert (cfg["keep"], cfg["eval_every"], cfg["popsize"], cfg["seed"]) == (0.9, 4, 12, 0)
    assert cfg["task_options"] == {"episodes": 2}
    bad = tmp_path / "bad.toml"
    bad.write_text("keep = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_toml(tmp_path / "none.toml")


def test_cli_run_show_report_and_user_errors(uninterrupted, tmp_path):
    whole, rows = uninterrupted
    shown = cli("show", str(whole), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == comparable(rows, drop=())
    assert set(rows[0]) == {"iteration", "sparsity", "weights", "final", "best", "test", "threshold", "seconds",
                            "effective", "effective_weights", "empty_layers", "disconnected", "layers"}
    assert "sparsity" in cli("show", str(whole)).stdout
    bad = cli("run", "--keep", "2", "--out", str(tmp_path / "x.h5"))
    assert bad.returncode == 2 and "keep must be" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.h5").exists()  # nothing started
    again = cli("run", *FLAGS, "--out", str(whole))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "demo" in cli("presets").stdout
    pytest.importorskip("matplotlib")
    fig = tmp_path / "fig.png"
    out = cli("report", str(whole), str(whole), "-o", str(fig))
    assert out.returncode == 0 and fig.stat().st_size > 1000, out.stderr


def test_presets_are_valid_configs():
    from esprune import presets

    for name in presets.PRESETS:
        config.resolve(presets.get(name), prepare=False)  # the data of the MNIST presets may be absent here
    with pytest.raises(UserError, match="unknown preset"):
        presets.get("nope")


def test_a_second_writer_is_refused_while_a_run_is_live(tmp_path):
    path = tmp_path / "run.h5"
    first = Experiment.start(config.resolve(SMALL), path)
    with pytest.raises(RunFileError, match="another esprune process"):
        Experiment.start(config.resolve(SMALL), path, overwrite=True)
    first.run.unlock()
    Experiment.start(config.resolve(SMALL), path, overwrite=True)  # free again once the first lets go


def test_each_iteration_records_its_profile(tmp_path):
    """ask/evaluate/tell/commit seconds, the env steps taken (CartPole: the returns' sum) and GFLOP/s per
    iteration, in the run file and through ``show --timing``."""
    from click.testing import CliRunner

    from cli import cli
    from esprune import config, presets
    from esprune.imp import Experiment
    from esprune.store import RunFile

    cfg = config.resolve(presets.get("demo"), {"iterations": 1, "generations": 3, "popsize": 6,
                                               "checkpoint_every": 2})
    exp = Experiment.start(cfg, tmp_path / "r.h5")
    exp.execute()
    profile = RunFile.open(tmp_path / "r.h5").timing()
    assert [p["iteration"] for p in profile] == [0, 1]
    for p, k in zip(profile, range(2)):
        train = RunFile.open(tmp_path / "r.h5").iteration(k)["train"]
        assert p["generations"] == 3 and p["work_unit"] == "env steps"
        assert p["work"] == round(train[:, 0].sum() * 6 * exp.task.episodes)  # mean return × members × episodes
        assert all(p[f"{phase}_s"] > 0 for phase in ("ask", "evaluate", "tell", "commit")) and p["gflops"] > 0
    result = CliRunner().invoke(cli, ["show", str(tmp_path / "r.h5"), "--timing"])
    assert result.exit_code == 0 and "env steps" in result.output and "commit s" in result.output
