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
