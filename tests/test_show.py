"""`esprune show RUN.h5 --config` and `--curves` (text, --json, --csv): what a run file holds, read back through
the CLI and compared with the file itself read by plain h5py and with Python's own TOML and CSV readers."""
import csv
import json
import math
import tomllib

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config
from esprune.imp import Experiment
from esprune.report import config_toml, curve_rows
from esprune.store import RunFile

TINY = {"task": "CartPole-v1", "task_options": {"episodes": 1}, "strategy": "snes", "prune": "magnitude",
        "strategy_options": {"sigma_init": 0.07}, "iterations": 1, "keep": 0.5, "generations": 5, "popsize": 4,
        "eval_every": 2, "seed": 3}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("show") / "run.h5"
    Experiment.start(config.resolve(TINY), path).execute()
    return path


def test_config_prints_toml_that_reads_back_to_the_stored_config(finished):
    result = invoke("show", finished, "--config")
    assert result.exit_code == 0, result.output
    stored = RunFile.open(finished).config
    parsed = tomllib.loads(result.stdout)                                  # Python's TOML reader is the reference
    assert parsed == {k: v for k, v in stored.items() if v is not None}
    assert config.resolve(parsed, prepare=False).to_dict() == stored      # `esprune run THIS.toml` repeats it
    assert parsed["strategy_options"]["sigma_init"] == 0.07 and parsed["task_options"] == {"episodes": 1}
    assert json.loads(invoke("show", finished, "--config", "--json").stdout) == stored


def test_the_printed_config_repeats_the_run(finished, tmp_path):
    toml, again = tmp_path / "this.toml", tmp_path / "again.h5"
    toml.write_text(invoke("show", finished, "--config").stdout)
    assert invoke("run", toml, "--out", again, "--quiet").exit_code == 0

    def numbers(path):
        return [{k: (None if v != v else v) for k, v in r.items() if k != "seconds"}   # NaN threshold as None
                for r in RunFile.open(path).summary()]
    assert numbers(again) == numbers(finished)


def test_toml_of_awkward_values_reads_back_exactly():
    values = {"text": 'a "quoted" \\ back\nslash\ttab \x01 \x7f é 😀', "tiny": 1e-300, "big": -1.5e300,
              "third": 1 / 3, "inf": math.inf, "ninf": -math.inf, "whole": 2.0, "n": -7, "yes": True,
              "none": None, "list": [1, 2.5, "x", [True]], "key with space": 1,
              "task_options": {"hidden": [16, 16], "path": "C:\\data", "gone": None, "inner": {"a": 1}},
              "empty_options": {}}
    back = tomllib.loads(config_toml(values))
    expected = {k: v for k, v in values.items() if v is not None}
    expected["task_options"] = {k: v for k, v in values["task_options"].items() if v is not None}
    assert back == expected
    assert isinstance(back["whole"], float) and isinstance(back["n"], int)
    assert math.isnan(tomllib.loads(config_toml({"x": math.nan}))["x"])


def test_curves_match_the_run_file_in_text_json_and_csv(finished, tmp_path):
    with h5py.File(finished, "r") as f:                                    # the reference: the file itself
        stored = {int(k): (g["train"][()], g["evals"][()]) for k, g in f["iterations"].items() if "train" in g}
    summary = RunFile.open(finished).summary()
    assert sorted(stored) == [0, 1]

    csv_path = tmp_path / "curves.csv"
    result = invoke("show", finished, "--curves", "--json", "--csv", csv_path)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 * TINY["generations"]
    for k, (train, evals) in stored.items():
        mine = [r for r in rows if r["iteration"] == k]
        assert [r["generation"] for r in mine] == list(range(1, TINY["generations"] + 1))
        np.testing.assert_array_equal([[r["train_mean"], r["train_max"]] for r in mine], train)
        measured = [(r["generation"], r["test"]) for r in mine if r["test"] is not None]
        assert measured == [(int(g), s) for g, s in evals] == [(1, measured[0][1]), (2, measured[1][1]),
                                                               (4, measured[2][1]), (5, measured[3][1])]
        assert measured[-1][1] == summary[k]["test"]                        # the summary's test: the last eval

    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["iteration", "generation", "train_mean", "train_max", "test"]
    assert [(int(r["iteration"]), int(r["generation"]), float(r["train_mean"]), float(r["train_max"]),
             None if r["test"] == "" else float(r["test"])) for r in table] == [tuple(r.values()) for r in rows]

    text = invoke("show", finished, "--curves").stdout.splitlines()
    assert text[0].split() == ["iter", "gen", "train", "mean", "train", "max", "test"]
    shown = [line.split() for line in text[1:]]
    assert [(int(k), int(g)) for k, g, *_ in shown] == [(r["iteration"], r["generation"]) for r in rows
                                                         if r["test"] is not None]
    assert [float(c[-1]) for c in shown] == pytest.approx([r["test"] for r in rows if r["test"] is not None],
                                                           rel=1e-4)


def test_curve_rows_mark_unmeasured_and_non_finite_generations():
    train = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]])
    rows = curve_rows([(2, train, np.array([[1, 0.5], [3, 0.75]]))])
    assert [(r["iteration"], r["generation"], r["test"]) for r in rows] == [(2, 1, 0.5), (2, 2, None), (2, 3, 0.75)]
    assert math.isnan(rows[1]["train_mean"])


def test_curves_of_an_unfinished_run_and_misused_flags_are_clear(finished, tmp_path):
    fresh = tmp_path / "fresh.h5"
    Experiment.start(config.resolve(TINY), fresh).run.unlock()
    result = invoke("show", fresh, "--curves", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == [] and "no finished iteration" in result.stderr
    for args, words in ((["--csv", tmp_path / "a.csv"], "--curves"), (["--config", "--curves"], "one of"),
                        (["--curves", "--csv", tmp_path / "nodir" / "a.csv"], "does not exist")):
        result = invoke("show", finished, *args)
        assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.csv").exists()


def test_curves_of_a_gradient_descent_run_count_optimizer_steps(tmp_path):
    """GD: one row per optimizer step (−batch loss as train_mean and train_max), the test score at each epoch end."""
    path = tmp_path / "gd.h5"
    gd = {"task": "blobs", "task_options": {"n_train": 256, "n_test": 100, "size": 12, "batch_size": 128},
          "trainer": "gd", "prune": "magnitude", "iterations": 0, "gd_options": {"epochs": 2, "batch_size": 64}}
    Experiment.start(config.resolve(gd), path).execute()
    rows = json.loads(invoke("show", path, "--curves", "--json").stdout)
    assert [r["generation"] for r in rows] == list(range(1, 9))           # 2 epochs × 256 / 64 steps
    assert all(r["train_mean"] == r["train_max"] < 0 for r in rows)
    assert [r["generation"] for r in rows if r["test"] is not None] == [4, 8]
    assert rows[-1]["test"] == RunFile.open(path).summary()[0]["test"]
