"""Reports over many runs: seed groups, mean ± SE against a hand computation, duplicates, the tables, and the
paper's normalised aggregate over tasks. The run files are written with known summary rows (no training)."""
import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config, report_grid, tasks
from esprune.params import Mask
from esprune.prune import Ticket
from esprune.store import RunFile

SCORES = {  # (task, prune) -> per seed, the test score at iterations 0, 1, 2
    ("CartPole-v1", "snr"): [[500, 450, 300], [480, 470, 200], [490, 400, 250]],
    ("CartPole-v1", "magnitude"): [[500, 300, 100], [460, 320, 120]],
    ("Pendulum-v1", "snr"): [[-200, -300, -900], [-250, -350, -800]],
    ("Pendulum-v1", "magnitude"): [[-210, -600, -1200], [-190, -700, -1300]],
}


def fake_run(path, task, prune, seed, scores, iterations=None, finished=True):
    """A run file with the test ``scores`` of its iterations; ``finished=False``: stopped after the last one."""
    iterations = len(scores) - 1 if iterations is None else iterations
    cfg = config.resolve({"task": task, "prune": prune, "seed": seed, "iterations": iterations},
                         prepare=False)
    net = tasks.make(task).default_net()
    ticket = Ticket(net.init(seed), Mask.dense(net.spec))
    run = RunFile.create(path, cfg.to_dict(), net.spec, ticket)
    for k, s in enumerate(scores):
        row = {"iteration": k, "sparsity": 1 - 0.8**k, "weights": 10, "final": s, "best": s, "test": s,
               "threshold": np.nan, "seconds": 1.0}
        run.finish_iteration(k, {}, {}, row, next_ticket=ticket if k + 1 < len(scores) or not finished else None)
    run.unlock()
    return path


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "sweep"
    for (task, prune), seeds in SCORES.items():
        for seed, scores in enumerate(seeds):
            fake_run(folder / f"{task}-{prune}-{seed}.h5", task, prune, seed, scores)
    return folder


def test_groups_are_configs_but_seed_with_mean_and_standard_error(runs):
    curves = report_grid.curves(report_grid.collect([runs]))
    assert len(curves) == 4
    for c in curves:
        prune = c["method"]
        values = np.array(SCORES[(c["task"], prune)], dtype=float)
        assert c["seeds"] == values.shape[0]
        np.testing.assert_allclose(c["mean"], values.mean(0))
        np.testing.assert_allclose(c["se"], values.std(0, ddof=1) / np.sqrt(values.shape[0]))  # s/√n, ddof 1
        np.testing.assert_allclose(c["weights_remaining"], [100, 80, 64])
        assert c["label"] == f"prune={prune}"  # only the keys that differ within the task's panel


def test_labels_name_what_differs_and_leave_out_keys_only_some_runs_have():
    es = {"task": "T", "prune": "snr", "trainer": "snes", "strategy_options.sigma_init": 0.025, "popsize": 128}
    gd = {"task": "T", "prune": "magnitude", "trainer": "gd", "gd_options.epochs": 2, "popsize": 100}
    assert report_grid._labels([es, gd]) == ["prune=snr · popsize=128 · trainer=snes",
                                             "prune=magnitude · popsize=100 · trainer=gd"]
    plain, tuned = {"task": "T", "prune": "snr"}, {"task": "T", "prune": "snr", "strategy_options.sigma_init": 0.2}
    assert report_grid._labels([plain, tuned]) == ["strategy_options.sigma_init=null",
                                                   "strategy_options.sigma_init=0.2"]  # clash: the loose keys
    other = {"task": "U", "prune": "snr", "popsize": 7}
    assert report_grid._labels([es, gd, other])[2] == "snr"  # alone in its panel


def test_a_gd_curve_is_not_named_by_the_es_loops_unused_keys():
    """ES vs GD curves were labelled "... generations=2000 · popsize=100 · trainer=gd": keys a GD run never uses."""
    base = {"task": "T", "seed": 0, "iterations": 20, "keep": 0.8, "eval_every": 10, "checkpoint_every": 25}
    es = {**base, "prune": "snr", "trainer": "es", "strategy": "snes", "generations": 100, "popsize": 128,
          "strategy_options": {"sigma_init": 0.025}}
    gd = {**base, "prune": "magnitude", "trainer": "gd", "strategy": "sep_cma_es", "generations": 2000,
          "popsize": 100, "eval_every": 50, "checkpoint_every": 50, "gd_options": {"epochs": 2}}
    flat = [report_grid._flatten(es), report_grid._flatten(gd)]
    assert report_grid._labels(flat) == ["prune=snr · trainer=snes", "prune=magnitude · trainer=gd"]
    # ES → GD transfers inherit the ES source's task batch (its fitness batch, unused by GD, which has
    # gd_options.batch_size); and a transfer's source path names no other curve ("tickets_from=null")
    tasked = {**base, "task_options": {"batch_size": 1024}}
    transfer = {**gd, "task_options": {"batch_size": 256}, "tickets_from": "snr tickets of snes → gd"}
    rr = {**gd, **tasked, "prune": "random-reinit"}
    flat = [report_grid._flatten(c) for c in ({**gd, **tasked}, rr)] + [report_grid._flatten(transfer)]
    flat[2]["tickets_from"] = "snr tickets of snes → gd"  # _flatten names a real transfer from its source file
    assert report_grid._labels(flat) == ["prune=magnitude", "prune=random-reinit", "snr tickets of snes → gd"]
    # beside the ES curves too: the transfer shares GD-IMP's prune and trainer, which must not make every name
    # fall back to all the keys that differ anywhere
    flat = [report_grid._flatten(es)] + flat
    assert report_grid._labels(flat) == ["prune=snr · trainer=snes", "prune=magnitude · trainer=gd",
                                         "prune=random-reinit · trainer=gd", "snr tickets of snes → gd"]


def test_duplicates_are_warned_and_counted_once(runs, tmp_path):
    copy = tmp_path / "copy.h5"
    copy.write_bytes((runs / "CartPole-v1-snr-0.h5").read_bytes())
    lines = []
    found = report_grid.collect([runs, runs / "CartPole-v1-snr-1.h5", copy], warn=lines.append)
    assert len(found) == 9 and len(lines) == 2
    assert "given twice" in lines[0] and "same config" in lines[1] and "seed 0 twice" in lines[1]


def test_aggregate_normalises_per_task_then_averages_over_tasks(runs):
    agg = report_grid.aggregate(report_grid.curves(report_grid.collect([runs])))
    means = {key: np.mean(v, axis=0) for key, v in SCORES.items()}
    expect = {}
    for task in ("CartPole-v1", "Pendulum-v1"):
        lo = min(m.min() for (t, _), m in means.items() if t == task)
        hi = max(m.max() for (t, _), m in means.items() if t == task)
        for (t, prune), m in means.items():
            if t == task:
                expect.setdefault(prune, []).append((m - lo) / (hi - lo))
    assert set(agg) == {"snr", "magnitude"}
    for prune, parts in expect.items():
        np.testing.assert_allclose(agg[prune]["normalised"], np.mean(parts, axis=0))
    assert report_grid.aggregate([c for c in report_grid.curves(report_grid.collect([runs]))
                                  if c["task"] == "Pendulum-v1"]) == {}  # one task: no aggregate


def test_cli_writes_figure_json_and_csv(runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep.png"
    result = CliRunner().invoke(cli, ["report", str(runs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    data = json.loads(out.with_suffix(".json").read_text())
    assert len(data["curves"]) == 4 and set(data["aggregate"]) == {"snr", "magnitude"}
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert len(rows) == 4 * 3 + 2 * 3
    first = next(r for r in rows if r["task"] == "CartPole-v1" and r["method"] == "snr" and r["iteration"] == "2")
    assert float(first["mean"]) == pytest.approx(250.0) and float(first["se"]) == pytest.approx(50 / np.sqrt(3))
    single = fake_run(tmp_path / "one.h5", "CartPole-v1", "snr", 0, [1, 2])
    alone = CliRunner().invoke(cli, ["report", str(single), "-o", str(tmp_path / "one.png")])
    assert alone.exit_code == 0 and json.loads((tmp_path / "one.json").read_text())["curves"][0]["se"] == [None, None]
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = CliRunner().invoke(cli, ["report", str(empty)])
    assert bad.exit_code == 2 and "no run files" in bad.output


def test_an_unfinished_seed_is_left_out_of_a_curve_whose_other_seeds_finished(runs, tmp_path):
    """A sweep in progress: one seed at iteration 2 must not cut the finished seeds' curve to 2 iterations."""
    partial = fake_run(runs / "partial.h5", "CartPole-v1", "snr", 7, [400, 100], iterations=2, finished=False)
    lines = []
    curves = report_grid.curves(report_grid.collect([runs], warn=lines.append), warn=lines.append)
    snr = next(c for c in curves if c["task"] == "CartPole-v1" and c["method"] == "snr")
    assert snr["seeds"] == 3 and snr["iteration"] == [0, 1, 2] and str(partial) not in snr["files"]
    assert lines == [f"warning: {partial} is unfinished (2 of 3 iterations); left out of its curve, whose other "
                     "seeds have finished"]
    # no finished seed: the seeds are kept and cut to their common length, with a warning
    alone = tmp_path / "alone"
    fake_run(alone / "a.h5", "CartPole-v1", "snr", 0, [400, 100], iterations=2, finished=False)
    fake_run(alone / "b.h5", "CartPole-v1", "snr", 1, [500], iterations=2, finished=False)
    lines = []
    curve = report_grid.curves(report_grid.collect([alone], warn=lines.append), warn=lines.append)[0]
    assert curve["seeds"] == 2 and curve["iteration"] == [0]
    np.testing.assert_allclose(curve["mean"], [450])
    assert lines == ["warning: snr: the seeds reached 1..2 iterations; the curve stops at 1 (unfinished runs?)"]


def test_text_table_prints_mean_and_se_at_the_nearest_iteration(runs):
    curves = report_grid.curves(report_grid.collect([runs]))
    text = report_grid.text_table(curves, at=(100, 79, 1))  # 79 % → iteration 1 (80 %), 1 % → the last (64 %)
    block = text.split("\n\n")[0]  # CartPole-v1 first (tasks sorted)
    lines = block.splitlines()
    assert lines[0].split()[0] == "CartPole-v1" and len(lines) == 5  # header + iterations 0, 1, 2 + the note
    snr = np.array(SCORES[("CartPole-v1", "snr")], dtype=float)
    se = snr.std(0, ddof=1) / np.sqrt(3)
    assert f"{snr.mean(0)[1]:.4g} ± {se[1]:.2g} [eff 100%]" in lines[2] and lines[2].split()[:3] == ["iteration", "1", "80"]
    assert lines[3].split()[:2] == ["iteration", "2"] and "1% → iteration 2 (64%)" in lines[4]  # far: said
    assert "100% →" not in text and "79% →" not in text  # near enough: not
    everything = report_grid.text_table(curves)
    assert len(everything.split("\n\n")[1].splitlines()) == 4  # Pendulum-v1: every iteration


def test_report_at_paper_and_bad_at(runs, tmp_path):
    ok = CliRunner().invoke(cli, ["report", str(runs), "-o", str(tmp_path / "r.png"), "--at", "paper"])
    assert ok.exit_code == 0, ok.output
    assert "iteration 0" in ok.output and "iteration 2" in ok.output  # 1.44 % is nearest the last (64 %)
    bad = CliRunner().invoke(cli, ["report", str(runs), "-o", str(tmp_path / "r.png"), "--at", "0,50"])
    assert bad.exit_code == 2 and "(0, 100]" in bad.output


def test_a_transfer_curve_is_named_as_a_transfer(tmp_path):
    source = fake_run(tmp_path / "src.h5", "CartPole-v1", "snr", 0, [500, 400])
    cfg = config.resolve({"task": "CartPole-v1", "prune": "snr", "seed": 0, "iterations": 1, "strategy": "snes",
                          "tickets_from": str(source)}, prepare=False)
    net = tasks.make("CartPole-v1").default_net()
    ticket = Ticket(net.init(0), Mask.dense(net.spec))
    run = RunFile.create(tmp_path / "tr.h5", cfg.to_dict(), net.spec, ticket)
    for k, score in enumerate([490, 450]):
        row = {"iteration": k, "sparsity": 1 - 0.8**k, "weights": 10, "final": score, "best": score, "test": score,
               "threshold": np.nan, "seconds": 1.0}
        run.finish_iteration(k, {}, {}, row, next_ticket=ticket if k == 0 else None)
    run.unlock()
    labels = sorted(c["label"] for c in report_grid.curves(report_grid.collect([source, tmp_path / "tr.h5"])))
    assert labels == ["snr tickets of sep_cma_es → snes", "trainer=sep_cma_es"]
