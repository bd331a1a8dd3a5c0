"""One convention across the outputs: `iterations = N` is the dense iteration 0 plus N prunings (N + 1 trained
tickets), every table's row k describes ticket k, "weights" counts prunable weights only (biases are never
pruned), and a threshold exists only where a score threshold made the mask."""
import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config, presets, prune
from esprune.imp import Experiment
from esprune.nets import MLP
from esprune.params import Mask
from esprune.store import RunFile

TINY = {"task": "CartPole-v1", "task_options": {"episodes": 1, "test_episodes": 2}, "strategy": "snes",
        "iterations": 2, "keep": 0.5, "generations": 2, "popsize": 4, "eval_every": 2, "checkpoint_every": 2}


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "random.h5"
    Experiment.start(config.resolve({**TINY, "prune": "random-reinit"}), path).execute()
    return path


def test_iterations_n_trains_n_plus_one_tickets_and_every_output_says_so(random_run):
    rows = RunFile.open(random_run).summary()
    assert [r["iteration"] for r in rows] == [0, 1, 2]                     # iterations = 2: three tickets
    assert "N trains N + 1 tickets" in " ".join(_invoke("run", "--help").output.split())
    for name, (about, cfg) in presets.PRESETS.items():                     # no preset text miscounts them
        k = cfg.get("iterations", 20)
        assert f"{k + 1} iterations" not in about and (f"{k} iterations" not in about or name == "demo")


def test_weights_count_prunable_weights_only(random_run):
    spec = MLP(4, (64, 64), 2).spec
    rows = RunFile.open(random_run).summary()
    assert [r["weights"] for r in rows] == [prune.kept_after(spec.prunable_size, 0.5, k) for k in range(3)]
    assert rows[0]["weights"] == 4 * 64 + 64 * 64 + 64 * 2                 # the 130 biases are not counted
    shown = _invoke("show", random_run).output.splitlines()
    assert shown[1].split()[:3] == ["iter", "sparsity", "weights"]


def test_a_random_mask_has_no_threshold(random_run):
    rows = RunFile.open(random_run).summary()
    assert all(np.isnan(r["threshold"]) for r in rows)
    lines = _invoke("show", random_run).output.splitlines()
    column = lines[1].split().index("threshold")
    assert [line.split()[column] for line in lines[2:5]] == ["—"] * 3
    assert [r["threshold"] for r in json.loads(_invoke("show", random_run, "--json").output)] == [None] * 3


def test_a_moved_mask_has_no_threshold_a_magnitude_mask_has_one():
    net = MLP(3, (5,), 2)
    init = net.init(0)
    mean = {n: v + 0.1 for n, v in init.items()}
    kw = dict(init=init, mean=mean, std=None, mask=Mask.dense(net.spec), iteration=1, keep=0.5, seed=0)
    assert np.isnan(prune.next_ticket("permute-permute", net, **kw).threshold)
    assert np.isnan(prune.next_ticket("random-reinit", net, **kw).threshold)
    assert np.isfinite(prune.next_ticket("magnitude", net, **kw).threshold)


def test_a_run_file_that_counted_biases_is_read_as_weights(random_run, tmp_path):
    """Run files written before the ``weights`` field stored ``active`` = weights + biases."""
    old = tmp_path / "old.h5"
    old.write_bytes(random_run.read_bytes())
    with h5py.File(old, "r+") as f:
        rows = f["summary"][()]
        dtype = np.dtype([("active" if n == "weights" else n, rows.dtype[n]) for n in rows.dtype.names])
        legacy = np.array([tuple(r[n] + (130 if n == "weights" else 0) for n in rows.dtype.names) for r in rows],
                          dtype=dtype)
        del f["summary"]
        f.create_dataset("summary", data=legacy, maxshape=(None,))
    assert repr(RunFile.open(old).summary()) == repr(RunFile.open(random_run).summary())  # NaN thresholds too
