"""PGPE's sigma_rule "evosax-0.1.4" against a hand transcription of evosax 0.1.4's PGPE.tell_strategy (the
paper's code), and the quirks esprune documents but does not copy, against their 0.1.4 formulas."""
import numpy as np
import pytest

from esprune import strategies
from esprune.errors import ConfigError


def _evosax_014_pgpe_tell(x, loss, mean, sigma, m, v, t, lrate, hp):
    """evosax 0.1.4 strategies/pgpe.py tell_strategy + utils/optimizer.py Adam, transcribed to numpy.
    ``loss``: the shaped fitness in the minimisation sign; ``t``: the Adam step count before this one."""
    scaled_noise = x - mean
    noise_1, fit_1, fit_2 = scaled_noise[::2], loss[::2], loss[1::2]
    n_elite = max(1, int(x.shape[0] / 2 * hp["elite_ratio"]))
    elite_idx = np.argsort(np.minimum(fit_1, fit_2), kind="stable")[:n_elite]
    fitness_elite = np.concatenate([fit_1[elite_idx], fit_2[elite_idx]])
    fit_diff = fit_1[elite_idx] - fit_2[elite_idx]
    theta_grad = (0.5 * noise_1[elite_idx] * fit_diff[:, None]).mean(axis=0)
    m = (1 - hp["beta1"]) * theta_grad + hp["beta1"] * m
    v = (1 - hp["beta2"]) * theta_grad**2 + hp["beta2"] * v
    mhat, vhat = m / (1 - hp["beta1"] ** (t + 1)), v / (1 - hp["beta2"] ** (t + 1))
    new_mean = mean - lrate * mhat / (np.sqrt(vhat) + hp["eps"])
    baseline = np.mean(fitness_elite)
    all_avg_scores = np.stack([fit_1[elite_idx], fit_2[elite_idx]]).sum(axis=0) / 2
    delta_sigma = ((all_avg_scores[:, None] - baseline) * (noise_1**2 - sigma[None] ** 2) / sigma).mean(axis=0)
    allowed = np.abs(sigma) * hp["sigma_max_change"]
    new_sigma = np.clip(sigma + hp["sigma_lrate"] * delta_sigma, sigma - allowed, sigma + allowed)
    new_sigma = np.maximum(new_sigma * hp["sigma_decay"], hp["sigma_limit"])
    return new_mean, new_sigma


def _one_step(rule, rng, P=12, d=7):
    es = strategies.make("pgpe", d, P, seed=4, sigma_rule=rule, sigma_limit=0.0, sigma_decay=0.999)
    es.mean = rng.standard_normal(d)
    es.sigma = 0.05 + 0.1 * rng.random(d)
    mean, sigma = np.array(es.mean), np.array(es.sigma)
    z = rng.standard_normal((P // 2, d))
    x = mean + sigma * np.stack([z, -z], axis=1).reshape(P, d)  # interleaved pairs, as 0.1.4 samples
    fitness = rng.standard_normal(P)
    loss = np.asarray(es.shape_fitness(fitness, x))
    es.tell(fitness, population=x)
    want = _evosax_014_pgpe_tell(x, loss, mean, sigma, np.zeros(d), np.zeros(d), 0, es.hp["lrate_init"], es.hp)
    return es, want


def test_evosax_014_sigma_rule_equals_the_transcription(rng):
    for _ in range(3):
        es, (mean, sigma) = _one_step("evosax-0.1.4", rng)
        np.testing.assert_allclose(es.mean, mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(es.sigma, sigma, rtol=1e-12, atol=1e-14)


def test_corrected_rule_differs_from_014_in_sigma_only(rng):
    es, (mean, sigma) = _one_step("corrected", rng)
    np.testing.assert_allclose(es.mean, mean, rtol=1e-12, atol=1e-14)  # the mean update is the same
    assert np.abs(np.asarray(es.sigma) - sigma).max() > 1e-6


def test_the_kmnist_preset_uses_the_014_rule_and_strategies_says_so():
    from click.testing import CliRunner

    from cli import cli
    from esprune import presets

    assert presets.get("kmnist")["strategy_options"]["sigma_rule"] == "evosax-0.1.4"
    assert "sigma_rule=corrected" in CliRunner().invoke(cli, ["strategies"]).output


def test_014_rule_refuses_the_elite_ratios_014_cannot_run():
    with pytest.raises(ConfigError, match="evosax-0.1.4"):
        strategies.make("pgpe", 3, 20, sigma_rule="evosax-0.1.4", elite_ratio=0.5)
    with pytest.raises(ConfigError, match="sigma_rule"):
        strategies.make("pgpe", 3, 20, sigma_rule="evosax")


def test_quirks_not_copied_differ_from_their_014_formulas(rng):
    """SGD momentum lag, norm_range → [1, 3]: evosax 0.1.4's formulas give other numbers than esprune's."""
    from esprune.strategies.base import optimizer_step

    grad, m_old = rng.standard_normal(5), rng.standard_normal(5)
    hp = {"opt": "sgd", "momentum": 0.9}
    step, m_new, _ = optimizer_step(hp, grad, m_old, None, 1, 0.1)
    np.testing.assert_allclose(m_new, grad + 0.9 * m_old)
    np.testing.assert_allclose(step, -0.1 * m_new)            # esprune: this generation's momentum
    assert not np.allclose(step, -0.1 * m_old)                # 0.1.4: mean - lrate * state.m (the old one)
    es = strategies.make("snes", 3, 6, norm_range=True)
    shaped = np.asarray(es.shape_fitness(rng.standard_normal(6), np.zeros((6, 3))))
    assert shaped.min() == pytest.approx(-1) and shaped.max() == pytest.approx(1, abs=1e-9)  # 0.1.4: [1, 3]
