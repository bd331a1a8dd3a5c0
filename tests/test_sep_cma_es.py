"""Sep-CMA-ES beyond one update (issue 19, items 3–5): evosax 0.1.4's clamp of a negative C on small problems
(transcribed from its ``sep_cma_es.py``), the warning when its constants leave their valid range, pycma's
diagonal learning rates (checked against pycma itself), the evaluation table in the README, and the variant a
run file records."""
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from esprune import config, strategies
from esprune.strategies.sep_cma_es import constants


def sphere(x):
    return -np.sum(np.asarray(x, dtype=np.float64) ** 2, axis=1)


def evosax_014(d, popsize, elite_ratio=0.5):
    """evosax 0.1.4's ``Sep_CMA_ES``: constants and ``tell_strategy`` (float64, loss = −fitness)."""
    mu = max(1, int(popsize * elite_ratio))
    w = np.array([math.log(mu + 1) - math.log(i + 1) for i in range(mu)])
    w /= w.sum()
    w_trunc = np.zeros(popsize)
    w_trunc[:mu] = w
    mu_eff = 1 / np.sum(w**2)
    dsq = min(d, 40000)
    c1 = 2 / ((dsq + 1.3) ** 2 + mu_eff)
    cmu = (d + 2) / 3 * (2 / mu_eff / (dsq + math.sqrt(2)) ** 2
                         + (1 - 1 / mu_eff) * min(1, (2 * mu_eff - 1) / ((dsq + 2) ** 2 + mu_eff)))
    cs = (mu_eff + 2) / (d + mu_eff + 3)
    ds = 1 + 2 * max(0, math.sqrt((mu_eff - 1) / (d + 1)) - 1) + cs
    cc = 4 / (d + 4)
    chi = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * dsq**2))

    def tell(st, x, loss):
        y = (x[np.argsort(loss, kind="stable")] - st["mean"]) / st["sigma"]
        y_w = w_trunc @ y
        D = np.sqrt(np.where(st["C"] < 0, 1e-20, st["C"]))  # diag_eigen_decomp
        ps = (1 - cs) * st["p_sigma"] + math.sqrt(cs * (2 - cs) * mu_eff) * (y_w / D)
        norm = np.linalg.norm(ps)
        hs = float(norm / math.sqrt(1 - (1 - cs) ** (2 * (st["gen"] + 1))) < (1.4 + 2 / (d + 1)) * chi)
        pc = (1 - cc) * st["p_c"] + hs * math.sqrt(cc * (2 - cc) * mu_eff) * y_w
        rank_mu = sum(w[k] * y[k] ** 2 for k in range(mu))
        C = (1 + c1 * (1 - hs) * cc * (2 - cc) - c1 - cmu * w.sum()) * st["C"] + c1 * pc**2 + cmu * rank_mu
        return {"mean": st["mean"] + st["sigma"] * y_w, "sigma": st["sigma"] * math.exp(cs / ds * (norm / chi - 1)),
                "C": C, "p_sigma": ps, "p_c": pc, "gen": st["gen"] + 1}

    return tell


def test_small_d_large_popsize_follows_evosax_014_through_a_negative_C():
    """d = 2, P = 100: c_1 + c_μ ≈ 1.3 > 1, C turns negative within a few generations; evosax 0.1.4 samples
    with √max(C, 1e-20) there and keeps running. esprune does the same, and its population stays finite."""
    s = strategies.make("sep_cma_es", 2, 100, seed=0, sigma_init=1.0, ties="index")
    s.mean = np.full(2, 3.0)
    tell = evosax_014(2, 100)
    negative = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for g in range(12):  # each update from esprune's state (x − m is float32 rounding once C < 0: chaotic)
            x = np.asarray(s.ask(), dtype=np.float64)
            assert np.all(np.isfinite(x))
            state = {"mean": s.mean.copy(), "sigma": s.sigma, "C": s.C.copy(), "p_sigma": s.p_sigma.copy(),
                     "p_c": s.p_c.copy(), "gen": g}
            negative += int(np.any(state["C"] < 0))
            ref = tell(state, x, -sphere(x))
            s.tell(sphere(x), population=x)
            for key in ("mean", "C", "p_sigma", "p_c"):
                np.testing.assert_allclose(getattr(s, key), ref[key], rtol=1e-10, atol=1e-300, err_msg=key)
            assert s.sigma == pytest.approx(ref["sigma"], rel=1e-10)
    assert negative > 0  # the clamp was exercised
    assert len([w for w in caught if "c_1 + c_mu" in str(w.message)]) == 1  # warned once


def test_the_issue_case_never_samples_nan():
    s = strategies.make("sep_cma_es", 2, 100, seed=0, sigma_init=1.0)
    s.mean = np.full(2, 3.0)
    with pytest.warns(RuntimeWarning, match="learning_rates='pycma'"):
        for _ in range(30):
            x = s.ask()
            assert np.all(np.isfinite(x)) and np.all(np.isfinite(s.std))
            s.tell(sphere(x))


@pytest.mark.parametrize("d, popsize, learning_rates", [(100, 17, "evosax"), (2, 100, "pycma"), (1, 1000, "pycma")])
def test_no_warning_when_the_constants_are_valid(d, popsize, learning_rates):
    s = strategies.make("sep_cma_es", d, popsize, learning_rates=learning_rates)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.tell(sphere(s.ask()))
    k = s.k
    assert k["valid"] and 0 < k["c_1"] and 0 < k["c_mu"] and k["c_1"] + k["c_mu"] <= 1 + 1e-12


@pytest.mark.parametrize("d, popsize", [(2, 7), (10, 11), (100, 17), (1000, 25), (3, 101)])
def test_pycma_learning_rates_are_pycmas(d, popsize):
    """Odd popsizes: there pycma's default weights ln((λ+1)/2) − ln k equal esprune's ln(μ+1) − ln k."""
    cma = pytest.importorskip("cma")
    es = cma.CMAEvolutionStrategy(d * [1.0], 1.0, {"CMA_diagonal": True, "popsize": popsize, "verbose": -9,
                                                   "seed": 1})
    k = constants(d, popsize, 0.5, "pycma")
    assert k["mu"] == es.sp.weights.mu
    assert k["mu_eff"] == pytest.approx(es.sp.weights.mueff, rel=1e-12)
    assert k["c_1"] == pytest.approx(es.sp.c1_sep, rel=1e-12)
    assert k["c_mu"] == pytest.approx(es.sp.cmu_sep, rel=1e-12)
    assert k["c_c"] == pytest.approx(es.sp.cc_sep, rel=1e-12)
    if d == 100:  # σ control stays Ros & Hansen's; pycma's agrees here (it caps c_σ at 1/2; TPA for d ≥ 300)
        assert k["c_sigma"] == pytest.approx(es.adapt_sigma.cs, rel=1e-12)
        assert k["d_sigma"] == pytest.approx(es.adapt_sigma.damps, rel=1e-12)


def test_a_run_file_records_the_variant_and_tie_rule_it_used(tmp_path):
    from esprune.imp import Experiment
    from esprune.store import RunFile

    cfg = config.resolve({"task": "CartPole-v1", "strategy": "sep_cma_es", "iterations": 0}, prepare=False)
    Experiment.start(cfg, tmp_path / "run.h5")
    stored = RunFile.open(tmp_path / "run.h5").config["strategy_options"]
    assert stored["learning_rates"] == "evosax" and stored["ties"] == "average"
    cfg = config.resolve({"strategy": "snes", "strategy_options": {"ties": "index"}}, prepare=False)
    assert cfg["strategy_options"] == {"ties": "index"}
    with pytest.raises(config.ConfigError, match="learning_rates must be one of evosax, pycma"):
        config.resolve({"strategy_options": {"learning_rates": "cma"}}, prepare=False)


# ------------------------------------------------------------------------------ the 100-d separable ellipsoid
D, P, SEEDS = 100, 17, (0, 1, 2)
SCALES = 1e6 ** (np.arange(D) / (D - 1))


def ellipsoid(x):
    return np.sum(SCALES * np.asarray(x, dtype=np.float64) ** 2, axis=-1)


def esprune_evaluations(learning_rates, seed):
    """Evaluations until f(mean) < 1e-8 from 3·1 with σ0 = 1 (numpy backend)."""
    s = strategies.make("sep_cma_es", D, P, seed=seed, sigma_init=1.0, learning_rates=learning_rates)
    s.mean = np.full(D, 3.0)
    for g in range(1, 6001):
        s.tell(-ellipsoid(s.ask()))
        if ellipsoid(s.mean) < 1e-8:
            return g * P
    raise AssertionError(f"{learning_rates}, seed {seed}: f = {ellipsoid(s.mean):.3g} after {g * P} evaluations")


def pycma_evaluations(seed):
    """pycma's ``CMA_diagonal`` on the same problem and criterion (f of its mean < 1e-8)."""
    import cma

    es = cma.CMAEvolutionStrategy(3 * np.ones(D), 1.0, {"CMA_diagonal": True, "popsize": P, "seed": seed + 1,
                                                        "verbose": -9, "tolfun": 0, "tolx": 0, "tolfunhist": 0,
                                                        "tolstagnation": 10**9, "maxfevals": 10**6})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycma's notes on large z² values of its diagonal update
        while ellipsoid(es.mean) >= 1e-8:
            X = es.ask()
            es.tell(X, list(ellipsoid(np.asarray(X))))
    return es.countevals


def readme_table():
    """The README's evaluation table: {row label: [evaluations per seed]}."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^ *\| (esprune [^|]+|pycma [^|]+) \|([^\n]+)\|$", text, flags=re.M)
    return {label.strip(): [int(v.replace(",", "")) for v in re.findall(r"[\d,]{5,}", cells)][:3]
            for label, cells in rows}


@pytest.mark.slow
def test_separable_ellipsoid_evaluations_match_the_readme_and_pycma():
    pytest.importorskip("cma")
    measured = {"esprune learning_rates=evosax (default)": [esprune_evaluations("evosax", s) for s in SEEDS],
                "esprune learning_rates=pycma": [esprune_evaluations("pycma", s) for s in SEEDS],
                "pycma CMA_diagonal": [pycma_evaluations(s) for s in SEEDS]}
    table = readme_table()
    for label, evaluations in measured.items():
        assert label in table, f"README lacks the row {label!r}"
        np.testing.assert_allclose(evaluations, table[label], rtol=0.03, err_msg=label)
    pycma = np.mean(measured["pycma CMA_diagonal"])
    assert np.mean(measured["esprune learning_rates=pycma"]) <= 1.1 * pycma
    assert np.mean(measured["esprune learning_rates=evosax (default)"]) > 1.5 * pycma  # what the README says
