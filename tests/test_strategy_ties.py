"""Ties and generations without information (issue 19, item 1): tied fitness values share their average rank
(scipy's ``rankdata(method="average")``), a generation with nothing to rank changes nothing and is counted,
and ``ties="index"`` keeps evosax 0.1.4's tie-break by member index."""
import numpy as np
import pytest
from scipy.stats import rankdata

from esprune import presets, strategies
from esprune.errors import ConfigError

NAMES = list(strategies.REGISTRY)
D, P = 6, 8


def evolving_state(s):
    """Every evolving number of a strategy (host copies), keyed by name."""
    state = s.state_dict()
    return {k: np.array(v, dtype=np.float64) for k, v in state.items() if k not in ("hparams", "strategy")}


def walked(name, gens=3, **hp):
    """A strategy a few generations into the sphere, so its paths, moments and schedules are non-trivial."""
    s = strategies.make(name, 20, P, seed=2, **hp)
    s.mean = np.full(20, 1.0)
    for _ in range(gens):
        x = s.ask()
        s.tell(-np.sum(np.asarray(x, np.float64) ** 2, axis=1))
    return s


def test_centered_ranks_of_tied_values_are_their_average_rank(rng):
    s = strategies.make("open_es", D, P)  # centered ranks on by default
    f = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 0.0, 2.0])
    x = rng.standard_normal((P, D))
    expected = (rankdata(-f, method="average") - 1) / (P - 1) - 0.5  # the loss is −f, lowest = best
    np.testing.assert_allclose(s.shape_fitness(f, x), expected, rtol=1e-15, atol=1e-15)
    index = strategies.make("open_es", D, P, ties="index").shape_fitness(f, x)
    np.testing.assert_allclose(index, (rankdata(-f, method="ordinal") - 1) / (P - 1) - 0.5)


@pytest.mark.parametrize("name", NAMES)
def test_relabeling_members_does_not_change_an_update_with_ties(name, rng):
    """With average ranks the update is a function of the (member, fitness) set: permuting the members leaves
    it unchanged however many ties there are (with the index tie-break it does not)."""
    s = walked(name)
    x = s.mean + 0.3 * rng.standard_normal((P, 20))
    f = rng.integers(0, 3, P).astype(np.float64)  # three values among eight members
    f[1] = np.nan  # and a non-finite one
    perm = rng.permutation(P // 2)
    perm = np.stack([2 * perm, 2 * perm + 1], axis=1).ravel()  # whole pairs (PGPE's structure)
    results = []
    for order in (np.arange(P), perm):
        t = strategies.make(name, 20, P, seed=2)
        t.load_state_dict(s.state_dict())
        t.tell(f[order], population=x[order])
        results.append(evolving_state(t))
    for key in results[0]:
        np.testing.assert_allclose(results[1][key], results[0][key], rtol=1e-12, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("name", ["snes", "des", "sep_cma_es"])
def test_tied_members_share_the_mean_of_their_rank_weights(name, rng):
    """SNES/DES/Sep-CMA-ES weight members by rank; tied members get the mean of their ranks' weights."""
    s = strategies.make(name, D, P, seed=3)
    s.mean = rng.standard_normal(D)
    x = s.mean + 0.3 * rng.standard_normal((P, D))
    f = np.array([2.0, 5.0, 2.0, 1.0, 5.0, 5.0, 0.0, 2.0])
    m0, std0 = s.mean.copy(), s.std.copy()
    s.tell(f, population=x)
    per_rank = np.zeros(P)
    per_rank[: len(s.weights)] = s.weights
    ranks = rankdata(-f, method="ordinal") - 1  # any order within ties; averaged below
    w = np.array([per_rank[ranks[f == f[i]]].mean() for i in range(P)])
    eps = (x - m0) / std0
    np.testing.assert_allclose(s.mean, m0 + std0 * (w @ eps), rtol=1e-12)  # m ← m + std ⊙ Σ w ε in all three


def test_pgpe_elite_pairs_tied_at_the_cut_share_their_places(rng):
    s = strategies.make("pgpe", D, P, seed=3, elite_ratio=0.5, centered_rank=False)  # 2 of 4 pairs
    s.mean = rng.standard_normal(D)
    x = np.empty((P, D))
    z = 0.1 * rng.standard_normal((P // 2, D))
    x[0::2], x[1::2] = s.mean + z, s.mean - z
    f = np.array([4.0, 0.0, 3.0, 1.0, 3.0, 2.0, 0.0, 1.0])  # pair bests 4, 3, 3, 1: pairs 1 and 2 tie at the cut
    m0, sigma0, lr = s.mean.copy(), s.sigma.copy(), s.lrate
    s.tell(f, population=x)
    kept = np.array([1.0, 0.5, 0.5, 0.0])
    loss = -f
    grad = sum(kept[j] * 0.5 * (loss[2 * j] - loss[2 * j + 1]) * z[j] for j in range(4)) / 2
    step = -lr * grad / (np.sqrt(grad**2) + 1e-8)  # first Adam step: m̂ = g, v̂ = g²
    np.testing.assert_allclose(s.mean, m0 + step, rtol=1e-10)
    assert np.all(s.sigma != sigma0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["all tied", "all nan"])
def test_a_generation_with_nothing_to_rank_changes_nothing_and_is_counted(name, case):
    """All 20 members at 500 (CartPole's ceiling) or all NaN: no update, no decay; counted and saved."""
    s = walked(name)
    before = evolving_state(s)
    s.ask()
    s.tell(np.full(P, 500.0) if case == "all tied" else np.full(P, np.nan))
    after = evolving_state(s)
    assert after.pop("generation") == before.pop("generation") + 1  # fresh noise next time
    assert after.pop("uninformative") == before.pop("uninformative") + 1 == 1
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert s.state_dict()["uninformative"] == 1


@pytest.mark.parametrize("name", ["open_es", "pgpe"])
def test_two_hundred_tied_generations_do_not_drift_the_mean(name):
    s = strategies.make(name, 50, 20, seed=0)
    for _ in range(200):
        s.ask()
        s.tell(np.full(20, 500.0))
    np.testing.assert_array_equal(s.mean, np.zeros(50))
    assert s.uninformative == 200 and s.updates == 0


def test_index_ties_keep_evosax_behaviour_and_the_paper_presets_use_them(rng):
    """``ties="index"``: an all-tied generation still updates, ranked by member index (evosax 0.1.4)."""
    s = strategies.make("open_es", D, P, ties="index")
    x = 0.1 * rng.standard_normal((P, D))
    s.tell(np.full(P, 500.0), population=x)
    ranks = np.arange(P) / (P - 1) - 0.5  # loss ranks by index
    g = ranks @ x / 0.1 / (P * 0.1)
    np.testing.assert_allclose(s.mean, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-10)
    assert s.uninformative == 1 and s.updates == 1
    for name, (_, cfg) in presets.PRESETS.items():
        if name in ("cartpole", "pendulum", "mnist", "fashion-mnist", "kmnist"):
            assert cfg["strategy_options"]["ties"] == "index", name


def test_an_unknown_tie_rule_is_refused():
    with pytest.raises(ConfigError, match="ties must be one of average, index"):
        strategies.make("snes", 4, 4, ties="random")


@pytest.mark.parametrize("name", ["snes", "pgpe"])
def test_ties_on_the_cupy_path_agree_with_numpy(cupy_backend, name, rng):
    f = rng.integers(0, 3, 16).astype(np.float64)
    means = []
    for backend in ("numpy", cupy_backend):
        s = strategies.make(name, 12, 16, seed=7, backend=backend, **({"elite_ratio": 0.5} if name == "pgpe" else {}))
        s.mean = np.full(12, 1.0)
        for _ in range(3):
            s.ask()
            s.tell(f)
        means.append(s.be.to_numpy(s.mean))
    np.testing.assert_allclose(means[1], means[0], rtol=1e-6, atol=1e-7)


def test_esprune_strategies_states_the_tie_rules_and_the_learning_rate_variants():
    import json

    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["strategies"])
    assert result.exit_code == 0
    assert "ties=average" in result.output and "index: ties broken by member index" in result.output
    assert "learning_rates=evosax" in result.output and "pycma: pycma 4.5's CMA_diagonal" in result.output
    table = json.loads(CliRunner().invoke(cli, ["strategies", "--json"]).output)
    assert set(table["sep_cma_es"]["choices"]["learning_rates"]) == {"evosax", "pycma"}
    assert set(table["pgpe"]["choices"]["ties"]) == {"average", "index"}
