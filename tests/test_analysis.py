"""Analyses: curvature against known spectra, barriers against constructed paths, the SNR study against a
brute-force recount, and the three commands on real run files."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config, prune
from esprune.analysis import connectivity, flatness, snr
from esprune.analysis.solutions import load
from esprune.errors import UserError
from esprune.gd.objective import Objective
from esprune.imp import Experiment
from esprune.store import RunFile, from_vector

ES = {"task": "CartPole-v1", "task_options": {"episodes": 2}, "strategy": "snes", "prune": "snr", "iterations": 2,
      "keep": 0.5, "generations": 6, "popsize": 8, "eval_every": 3, "checkpoint_every": 3}
GD = {"task": "blobs", "task_options": {"n_train": 512, "n_test": 200, "size": 12, "batch_size": 64},
      "trainer": "gd", "prune": "magnitude", "iterations": 2, "keep": 0.15,
      "gd_options": {"epochs": 2, "batch_size": 64, "lr": 0.003}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, cfg in (("es0", {**ES, "seed": 0}), ("es1", {**ES, "seed": 1}), ("gd", GD)):
        paths[name] = d / f"{name}.h5"
        Experiment.start(config.resolve(cfg), paths[name]).execute()
    return paths


def _spd(rng, eigenvalues):
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return q @ np.diag(eigenvalues) @ q.T


def test_lanczos_recovers_the_top_eigenvalues_of_a_known_spectrum(rng):
    spectrum = np.concatenate([[50.0, 20.0, 7.5], rng.uniform(-1, 1, 197)])
    a = _spd(rng, spectrum)
    top = flatness.top_eigenvalues(lambda v: a @ v, 200, k=3)
    np.testing.assert_allclose(top, [50.0, 20.0, 7.5], rtol=1e-4)


def test_hutchinson_trace_is_within_its_stated_error(rng):
    a = _spd(rng, rng.uniform(0, 10, 300))
    estimate, stderr = flatness.hutchinson_trace(lambda v: a @ v, 300, probes=50, seed=3)
    assert abs(estimate - np.trace(a)) <= 3 * stderr and stderr < 0.05 * np.trace(a)


def test_sharpness_of_a_quadratic_is_half_r_squared_trace(rng):
    a = _spd(rng, rng.uniform(0, 4, 40))
    profile = flatness.sharpness(lambda pop: 0.5 * np.einsum("pi,ij,pj->p", pop, a, pop), np.zeros(40),
                                 radii=(0.1, 1.0), samples=4000)
    for row in profile:  # E[½ δᵀAδ] = ½ r² tr(A); the sample mean's error is ~ r² · ‖A‖_F / √(2·samples)
        expect = 0.5 * row["radius"] ** 2 * np.trace(a)
        assert row["mean_increase"] == pytest.approx(expect, rel=0.05)


def test_sharpness_cancels_a_large_gradient(rng):
    """L = gᵀθ + ½θᵀAθ away from its minimum (|∇L| ≈ 300): each antithetic pair's rise is exactly ½δᵀAδ, so the
    profile equals that closed form over the perturbations drawn, and ½r²·tr(A) within its sampling error. A
    one-sided L(θ + δ) − L(θ) adds gᵀδ-type noise of std r·|∇L|/√samples, ~20× the signal at r = 0.01."""
    d = 40
    a = _spd(rng, rng.uniform(0, 4, d))
    g = 50.0 * np.ones(d)
    theta = rng.standard_normal(d)
    seen = []

    def loss(pop):
        seen.append(pop - theta)
        return pop @ g + 0.5 * np.einsum("pi,ij,pj->p", pop, a, pop)
    profile = flatness.sharpness(loss, theta, radii=(0.001, 0.01, 0.1), samples=2000)
    for row, delta in zip(profile, seen[1:]):  # seen[0]: the unperturbed θ
        closed = 0.5 * np.einsum("pi,ij,pj->p", delta, a, delta).mean()  # ±δ rise alike: the mean over pairs
        assert row["mean_increase"] == pytest.approx(closed, rel=1e-6)
        assert row["mean_increase"] == pytest.approx(0.5 * row["radius"] ** 2 * np.trace(a), rel=0.05)


def test_barrier_of_a_double_well_is_its_height():
    for height in (1.0, 3.5):
        def well(pop):
            return height * ((pop**2).sum(axis=1) - 1.0) ** 2
        alphas, values = connectivity.curve(well, [-1.0, 0.0], [1.0, 0.0], points=25)
        assert values[0] == values[-1] == 0.0
        assert connectivity.barrier(alphas, values, higher_is_better=False) == pytest.approx(height)
        assert connectivity.barrier(alphas, -values, higher_is_better=True) == pytest.approx(height)


def test_barrier_between_identical_solutions_is_zero(runs):
    sol = load(runs["es0"], 1)
    result = connectivity.connect(sol, load(runs["es0"], 1), points=5)
    assert result["score_barrier"] == 0.0 and result["loss_barrier"] == 0.0
    assert np.all(result["score"] == result["score"][0])


def test_lanczos_on_a_network_matches_the_assembled_hessian(runs):
    sol = load(runs["gd"], 2)
    xtr, ytr, _, _ = sol.task.prepare()
    idx = sol.task.batch(0, 0)[:32]
    obj = Objective(sol.net, sol.layout, xtr[idx], ytr[idx])
    theta = sol.theta
    hess = np.stack([obj.hvp(theta, e) for e in np.eye(sol.layout.dim)])
    exact = np.sort(np.linalg.eigvalsh(0.5 * (hess + hess.T)))[::-1][:2]
    top = flatness.top_eigenvalues(lambda v: obj.hvp(theta, v), sol.layout.dim, k=2, tol=1e-8)
    np.testing.assert_allclose(top, exact, rtol=1e-4)


def test_snr_study_matches_a_brute_force_recount(runs):
    rows = snr.study(runs["es0"])
    assert [r["iteration"] for r in rows] == [1, 2, 3]       # keyed by the ticket each pruning makes
    assert [r["trained_in"] for r in rows] == [0, 1, 2]
    row = rows[1]
    sol = load(runs["es0"], 1)
    spec = sol.net.spec
    mean, std = from_vector(spec, sol.full), from_vector(spec, sol.std_full)
    active = np.concatenate([sol.mask[n].reshape(-1) for n in spec.prunable_names])
    mu = np.abs(np.concatenate([mean[n].reshape(-1) for n in spec.prunable_names]))[active]
    sd = np.concatenate([std[n].reshape(-1) for n in spec.prunable_names])[active]
    n_next = prune.kept_after(spec.prunable_size, 0.5, 2)
    keep_m = set(np.argsort(-mu, kind="stable")[:n_next])
    keep_s = set(np.argsort(-(mu / sd), kind="stable")[:n_next])
    assert row["jaccard"] == pytest.approx(len(keep_m & keep_s) / len(keep_m | keep_s))
    assert row["magnitude_threshold"] == pytest.approx(np.sort(mu)[::-1][n_next - 1])
    assert row["pearson_mean_std"] == pytest.approx(np.corrcoef(mu, sd)[0, 1])
    assert row["log10_snr_kept"].sum() == n_next and row["log10_snr_pruned"].sum() == active.sum() - n_next
    assert sum(v["snr"] for v in row["kept_per_layer"].values()) == n_next


def test_snr_rows_and_counts_are_shows(runs):
    """Row k of `snr` and row k of `show` describe the same ticket: an SNR-pruned run's threshold and its count of
    prunable weights (biases, never pruned, not counted) agree; the row past the end is the next ticket."""
    shown = RunFile.open(runs["es0"]).summary()
    study = {r["iteration"]: r for r in snr.study(runs["es0"])}
    spec = load(runs["es0"], 0).net.spec
    for row in shown[1:]:
        k = row["iteration"]
        assert study[k]["snr_threshold"] == row["threshold"]
        assert study[k]["weights"] == row["weights"] == RunFile.open(runs["es0"]).ticket(k).mask.kept
        assert study[k]["sparsity"] == pytest.approx(row["sparsity"])
    assert shown[0]["weights"] == spec.prunable_size                     # the dense ticket: biases not counted
    assert study[3]["weights"] == prune.kept_after(spec.prunable_size, 0.5, 3)


def test_snr_study_refuses_a_gd_run(runs):
    with pytest.raises(UserError, match="search std"):
        snr.study(runs["gd"])


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_flatness_measures_every_solution_on_one_batch_whatever_its_runs_seed_and_batch(runs):
    """ES and GD runs (and seeds) train on batches of different sizes and images: comparing their curvature on
    each run's own batch confounded the solution with the data (a smaller batch alone raises the top eigenvalue of
    its empirical Hessian). The loss, Hessian and sharpness are of one fixed batch of ``batch`` images."""
    sol = load(runs["gd"], 2)
    xtr, ytr, _, _ = sol.task.prepare()
    idx = sol.task.batch(flatness.BATCH_SEED, 0, size=100)
    assert len(idx) == 100 > sol.task.batch_size  # the task's own batch is 64
    expected = Objective(sol.net, sol.layout, xtr[idx], ytr[idx]).value(sol.theta)
    kw = dict(top_k=1, probes=2, batch=100, radii=(0.01,), samples=2)
    first = flatness.analyze(sol, **kw)
    assert first["hessian_batch"] == 100 and first["loss"] == pytest.approx(expected, rel=1e-5)
    sol.config["seed"], sol.task.batch_size = 7, 16  # another seed's run, another batch size: the same data
    again = flatness.analyze(sol, **kw)
    assert again["loss"] == first["loss"] and again["hessian_batch"] == 100


def test_commands_print_tables_and_write_numbers_and_figures(runs, tmp_path):
    pytest.importorskip("matplotlib")
    jobs = {"connect": ("connect", runs["es0"], runs["es1"], "--points", 5),
            "consecutive": ("connect", runs["gd"], "--consecutive", "--points", 5),
            "flatness": ("flatness", runs["gd"], runs["es0"], "--iteration", 2, "--batch", 64, "--probes", 4,
                         "--top-k", 2, "--samples", 4),
            "snr": ("snr", runs["es1"])}
    for name, args in jobs.items():
        prefix = tmp_path / name
        result = _invoke(*args, "--out", prefix)
        assert result.exit_code == 0, result.output
        assert "iter" in result.output and "wrote" in result.output
        numbers = json.loads((tmp_path / f"{name}.json").read_text())
        assert numbers and (tmp_path / f"{name}.png").stat().st_size > 0
    flat = json.loads((tmp_path / "flatness.json").read_text())["solutions"]
    assert len(flat[0]["eigenvalues"]) == 2 and flat[1]["eigenvalues"] is None  # GD blobs vs ES CartPole
    pairs = json.loads((tmp_path / "connect.json").read_text())["pairs"]
    assert [p["iteration_a"] for p in pairs] == [0, 1, 2] and all(p["score_barrier"] >= 0 for p in pairs)


def test_connect_names_a_missing_file_and_a_missing_partner(runs):
    result = CliRunner().invoke(cli, ["connect", "nope.h5", "--consecutive"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["connect", str(runs["es0"])])
    assert result.exit_code == 2 and "second run file" in result.output


@pytest.mark.parametrize("name", ["connect", "flatness"])
def test_a_stopped_analysis_continues_where_it_stopped_to_the_uninterrupted_output(runs, tmp_path, monkeypatch,
                                                                                  name):
    """Killed after its first item, the same command computes only the items left (the first is read back from
    PREFIX.partial.json) and writes exactly the uninterrupted output; other settings start over."""
    module, function = {"connect": (connectivity, "connect"), "flatness": (flatness, "analyze")}[name]
    args = {"connect": ("connect", runs["gd"], "--consecutive", "--points", 5),
            "flatness": ("flatness", runs["gd"], "--batch", 64, "--probes", 2, "--top-k", 1, "--samples", 2)}[name]
    whole = _invoke(*args, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    real, calls = getattr(module, function), []

    def dies_on_the_second(*a, **kw):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(module, function, dies_on_the_second)
    for prefix in ("cut", "other"):
        calls.clear()
        stopped = _invoke(*args, "--out", tmp_path / prefix)  # Ctrl-C: click's "Aborted!", status 1
        assert stopped.exit_code == 1 and not (tmp_path / f"{prefix}.json").exists()
        assert (tmp_path / f"{prefix}.partial.json").exists()
    calls.clear()
    monkeypatch.setattr(module, function, lambda *a, **kw: (calls.append(a), real(*a, **kw))[1])
    again = _invoke(*args, "--out", tmp_path / "cut")
    assert again.exit_code == 0, again.output
    items = {"connect": 2, "flatness": 3}[name]  # the GD run's 3 iterations: 2 consecutive pairs, 3 solutions
    assert f"continuing: 1 of {items} items were finished by an earlier run" in again.output
    assert len(calls) == items - 1
    assert (tmp_path / "cut.json").read_text() == (tmp_path / "whole.json").read_text()
    assert not (tmp_path / "cut.partial.json").exists()
    calls.clear()  # other settings (the last option's value): the kept items are neither reused nor overwritten
    kept = (tmp_path / "other.partial.json").read_text()
    other = _invoke(*args[:-1], "3", "--out", tmp_path / "other")
    assert other.exit_code == 2 and "1 finished items of this analysis with other settings" in other.output
    assert f"({args[-2].lstrip('-')} {args[-1]})" in other.output and "remove the file" in other.output
    assert not calls and (tmp_path / "other.partial.json").read_text() == kept
    damaged = json.loads(kept)  # an item edited by hand (or cut short): set aside with a warning, started over
    key = next(iter(damaged["items"]))
    damaged["items"][key]["loss"] = 0
    (tmp_path / "other.partial.json").write_text(json.dumps(damaged))
    again = _invoke(*args, "--out", tmp_path / "other")
    assert again.exit_code == 0 and "is damaged" in again.output and len(calls) == items
    assert (tmp_path / "other.json").read_text() == (tmp_path / "whole.json").read_text()
    (tmp_path / "torn.partial.json").write_text('{"settings": ')
    calls.clear()
    torn = _invoke(*args, "--out", tmp_path / "torn")
    assert torn.exit_code == 0 and "is damaged" in torn.output and len(calls) == items
    (tmp_path / "dir.partial.json").mkdir()  # checked before the work, like PREFIX.json and PREFIX.png
    blocked = CliRunner().invoke(cli, [str(a) for a in (*args, "--out", tmp_path / "dir")])
    assert blocked.exit_code == 2 and "dir.partial.json is a directory" in blocked.output
