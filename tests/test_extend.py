"""`esprune resume RUN.h5 --iterations N` extends a run to deeper sparsity: the result equals, bit for bit, a run
started with N (every ticket, mean, std, curve and score; only times and the file's identity differ)."""
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config
from esprune.imp import Experiment
from esprune.store import RunFile

TINY = {"task": "CartPole-v1", "task_options": {"episodes": 1, "test_episodes": 2}, "strategy": "sep_cma_es",
        "prune": "snr", "keep": 0.6, "generations": 4, "popsize": 6, "eval_every": 2, "checkpoint_every": 2,
        "seed": 3}
TIMES = {"seconds", "timing"}


def _contents(path) -> dict:
    """Every dataset and attribute of a run file but times, creation stamp and run id."""
    out = {}
    with h5py.File(path, "r") as f:
        out["config"] = f.attrs["config"]
        for name, g in f["iterations"].items():
            for key, ds in g.items():
                out[f"{name}/{key}"] = ds[()]
            out.update({f"{name}@{a}": v for a, v in g.attrs.items() if a not in TIMES})
        rows = f["summary"][()]
        out["summary"] = {n: rows[n] for n in rows.dtype.names if n != "seconds"}
        out["checkpoint"] = dict(f["checkpoint"].attrs)
    return out


def _assert_same(a, b):
    ca, cb = _contents(a), _contents(b)
    assert sorted(ca) == sorted(cb)
    for key in ca:
        if isinstance(ca[key], dict):
            for sub in ca[key]:
                np.testing.assert_array_equal(ca[key][sub], cb[key][sub], err_msg=f"{key}/{sub}")
        else:
            np.testing.assert_array_equal(ca[key], cb[key], err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ext") / "k2.h5"
    Experiment.start(config.resolve({**TINY, "iterations": 2}), path).execute()
    return path


def test_a_finished_run_extended_equals_one_started_deeper(reference, tmp_path):
    path = tmp_path / "k1.h5"
    Experiment.start(config.resolve({**TINY, "iterations": 1}), path).execute()
    result = CliRunner().invoke(cli, ["resume", str(path), "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "iterations 0..2" in result.stderr
    _assert_same(path, reference)


def test_an_unfinished_run_extended_equals_one_started_deeper(reference, tmp_path):
    path = tmp_path / "k0.h5"
    exp = Experiment.start(config.resolve({**TINY, "iterations": 0}), path)

    def stop(k, g, best, sparsity):
        if g == 3:
            raise KeyboardInterrupt  # after the checkpoint at generation 2
    with pytest.raises(KeyboardInterrupt):
        exp.execute(stop)
    assert not RunFile.open(path).finished
    Experiment.resume(path, iterations=2).execute()
    _assert_same(path, reference)


def test_fewer_iterations_than_the_run_has_tickets_for_is_refused(reference, tmp_path):
    before = reference.read_bytes()
    result = CliRunner().invoke(cli, ["resume", str(reference), "--iterations", "1"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "tickets for iterations 0..2; --iterations must be at least 2" in result.output
    assert reference.read_bytes() == before
    again = CliRunner().invoke(cli, ["resume", str(reference), "--iterations", "2"])  # same N: nothing to do
    assert again.exit_code == 0 and "already finished" in again.stderr
