"""What a newcomer reads first: the task options `esprune tasks` lists, what `esprune presets` says each preset
costs, and the README's Python example, run as written."""
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from esprune import tasks
from esprune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_tasks_lists_every_option_a_task_accepts_with_its_default():
    listed = json.loads(_invoke("tasks", "--json"))
    assert listed["CartPole-v1"]["options"] == {"hidden": [64, 64], "episodes": 8, "test_episodes": 32}
    assert listed["blobs"]["options"]["n_train"] == 6000
    for name in ("CartPole-v1", "blobs", "gym:<env id>"):
        probe = "gym:CartPole-v1" if name.startswith("gym:") else name
        with pytest.raises(ConfigError) as err:          # make's own list of known options is the same
            tasks.make(probe, not_an_option=1)
        assert err.value.args[0].endswith("known: " + ", ".join(listed[name]["options"]))
    task = tasks.make("Pendulum-v1", **{k: v for k, v in listed["Pendulum-v1"]["options"].items()})
    assert (task.episodes, task.test_episodes) == (8, 32)
    text = _invoke("tasks")
    assert "    options: hidden=[64, 64], episodes=8, test_episodes=32" in text


def test_presets_say_what_each_costs(monkeypatch):
    from esprune import config, costs, presets

    listed = json.loads(_invoke("presets", "--json"))
    for name, (_, cfg) in presets.PRESETS.items():
        c = listed[name]["cost"]
        full = config.resolve(cfg, prepare=False)
        assert c["tickets"] == full.iterations + 1
        if full.trainer == "es":
            assert c["generations"] == full.generations * (full.iterations + 1)
            assert c["how"] in ("measured", "estimated") and c["seconds"] > 0
    # the estimate, by hand: Pendulum episodes always run their 200 steps
    small = {"task": "Pendulum-v1", "popsize": 10, "generations": 20, "eval_every": 10, "iterations": 1, "keep": 0.5,
             "task_options": {"episodes": 2, "test_episodes": 4}}
    unit = costs._unit
    expect = sum(20 * 10 * 2 * 200 * unit("control", 0.5**k) + 3 * 4 * 200 * unit("control", 0.5**k) for k in (0, 1))
    assert costs.cost(small) == {"tickets": 2, "generations": 40, "seconds": pytest.approx(expect), "how": "estimated"}
    # a measurement counts only for the exact config it was made with
    monkeypatch.setitem(costs.MEASURED, costs.fingerprint(config.resolve(small, prepare=False).to_dict()), 12.5)
    assert costs.cost(small)["how"] == "measured" and costs.cost(small)["seconds"] == 12.5
    assert costs.cost({**small, "seed": 1})["seconds"] == 12.5          # the seed does not change the cost...
    assert costs.cost({**small, "generations": 21})["how"] == "estimated"  # ...the budget does
    text = _invoke("presets")
    assert re.search(r"cost: 2000 generations × 21 tickets = 42,000; estimated [\d.]+ (h|min) on 2 cores", text)


def test_backend_cupy_without_cupy_leaves_nothing_that_blocks_the_next_try(tmp_path):
    from esprune import backend

    if backend.probe()["cupy"][0]:
        pytest.skip("a GPU is usable here, so --backend cupy is not a mistake")
    flags = ["run", "--task", "CartPole-v1", "--iterations", "0", "--generations", "1", "--popsize", "4",
             "--out", tmp_path / "r.h5", "--quiet"]
    failed = CliRunner().invoke(cli, [str(a) for a in flags + ["--backend", "cupy"]])
    assert failed.exit_code == 2 and "backend 'cupy' is not usable here" in failed.output
    assert list(tmp_path.iterdir()) == []                                   # no run file, lock or temporary
    _invoke(*flags, "--backend", "numba")                                  # the next try, no --overwrite


def test_the_readme_python_example_runs_as_written(capsys):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## A Python example\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md: A Python example", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("test return: ")
    assert printed[1] == "Mask(kept=3584/4480, sparsity=0.2000)"       # what the comments in the block say
    assert printed[2] == "parameters searched: 3714"


def test_the_readme_points_only_at_files_in_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "../shared" not in text.replace("../shared/data", "") and "PAPER.md" not in text
    assert "DESIGN.md" not in text
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)", text):
        assert (ROOT / target).is_file(), target
