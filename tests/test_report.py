"""`esprune report`: curves over seeds as mean ± standard error (the paper's bands) or min–max, said in the legend."""
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from esprune import config
from esprune.imp import Experiment
from esprune import report_grid
from esprune.report import band

TINY = {"task": "CartPole-v1", "task_options": {"episodes": 2, "test_episodes": 3}, "strategy": "sep_cma_es",
        "prune": "magnitude", "iterations": 2, "keep": 0.5, "generations": 3, "popsize": 8, "eval_every": 3}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    paths = []
    for seed in (0, 1, 2):
        paths.append(d / f"s{seed}.h5")
        Experiment.start(config.resolve({**TINY, "seed": seed}), paths[-1]).execute()
    return paths


def test_band_is_mean_plus_minus_standard_error_or_min_max():
    values = np.array([[1.0, 10.0], [2.0, 30.0], [6.0, 20.0]])
    mean, low, high = band(values)
    se = np.array([np.std([1, 2, 6], ddof=1), np.std([10, 30, 20], ddof=1)]) / np.sqrt(3)  # std/√n
    np.testing.assert_allclose(mean, [3.0, 20.0])
    np.testing.assert_allclose(low, mean - se)
    np.testing.assert_allclose(high, mean + se)
    np.testing.assert_array_equal(band(values, "minmax")[1:], ([1.0, 10.0], [6.0, 30.0]))
    np.testing.assert_array_equal(band(values[:1])[1], values[0])  # one seed: no band


def test_report_draws_standard_error_bands_by_default_and_says_so(seeds, tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    from esprune.store import RunFile

    tests = np.array([[row["test"] for row in RunFile.open(p).summary()] for p in seeds])
    legends = []
    real = plt.Figure.savefig

    def keep_legend(fig, *args, **kwargs):
        legends.extend(t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep_legend)
    (c,) = report_grid.report(seeds, tmp_path / "se.png")["curves"]
    mean, low, high = map(np.asarray, (c["mean"], c["low"], c["high"]))
    se = tests.std(0, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(mean, tests.mean(0))
    np.testing.assert_allclose(high - mean, se)
    np.testing.assert_allclose(mean - low, se)
    marks = {"dotted: vs effective weights remaining", "×: ticket disconnected (≥ 1 seed)"}  # effective sparsity's
    assert legends[0] == "magnitude, 3 seeds (mean ± SE (std/√n))" and set(legends[1:]) <= marks
    del legends[:]
    (c,) = report_grid.report(seeds, tmp_path / "mm.png", band_kind="minmax")["curves"]
    low, high = np.asarray(c["low"]), np.asarray(c["high"])
    np.testing.assert_array_equal(low, tests.min(0))
    np.testing.assert_array_equal(high, tests.max(0))
    assert legends[0] == "magnitude, 3 seeds (mean, min–max)" and set(legends[1:]) <= marks
    result = CliRunner().invoke(cli, ["report", *map(str, seeds), "-o", str(tmp_path / "c.png"), "--band", "minmax"])
    assert result.exit_code == 0, result.output
    assert "--band" in CliRunner().invoke(cli, ["report", "--help"]).output
