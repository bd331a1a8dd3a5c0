"""The five strategies: one update against an independent transcription of PAPER.md, convergence on the
sphere and the ellipsoid, exact resume, NaN handling, determinism and backend agreement."""
import math

import numpy as np
import pytest

from esprune import strategies
from esprune.errors import UserError

D, P = 6, 8


def setup(name, rng, **hp):
    s = strategies.make(name, D, P, seed=3, **hp)
    s.mean = rng.standard_normal(D)
    s.ask()  # advance nothing; the test passes its own population
    x = s.mean + 0.3 * rng.standard_normal((P, D))
    fitness = rng.standard_normal(P)
    return s, x, fitness


def ranks_centered(v):
    r = np.empty(len(v))
    for rank, i in enumerate(sorted(range(len(v)), key=lambda i: (v[i], i))):
        r[i] = rank / (len(v) - 1) - 0.5
    return r


def test_open_es_one_update(rng):
    s, x, f = setup("open_es", rng)
    m0, sigma, lr = s.mean.copy(), s.sigma, s.lrate
    s.tell(f, population=x)
    shaped = ranks_centered(-f)  # negated, then centered ranks
    g = sum(shaped[i] * (x[i] - m0) / sigma for i in range(P)) / (P * sigma)
    m1 = (1 - 0.99) * g
    v1 = (1 - 0.999) * g**2
    expected = m0 - lr * (m1 / (1 - 0.99)) / (np.sqrt(v1 / (1 - 0.999)) + 1e-8)
    np.testing.assert_allclose(s.mean, expected, rtol=1e-12)
    assert s.sigma == pytest.approx(max(sigma * 0.999, 0.01)) and s.lrate == pytest.approx(lr * 0.999)
    np.testing.assert_allclose(s.std, np.full(D, s.sigma))


@pytest.mark.parametrize("elite_ratio", [1.0, 0.5])
def test_pgpe_one_update(rng, elite_ratio):
    s, x, f = setup("pgpe", rng, elite_ratio=elite_ratio)
    m0, sigma0, lr = s.mean.copy(), s.sigma.copy(), s.lrate
    s.tell(f, population=x)
    loss = ranks_centered(-f)
    pairs = [(x[2 * j] - m0, loss[2 * j], loss[2 * j + 1]) for j in range(P // 2)]
    pairs.sort(key=lambda t: min(t[1], t[2]))  # elite pairs by their better member (stable)
    kept = pairs[: max(1, int(len(pairs) * elite_ratio))]
    grad = np.mean([0.5 * (lp - lm) * n for n, lp, lm in kept], axis=0)
    step = -lr * ((1 - 0.99) * grad / (1 - 0.99)) / (np.sqrt((1 - 0.999) * grad**2 / (1 - 0.999)) + 1e-8)
    np.testing.assert_allclose(s.mean, m0 + step, rtol=1e-12)
    baseline = np.mean(-loss)
    sgrad = np.mean([((-lp - lm) / 2 - baseline) * (n**2 - sigma0**2) / sigma0 for n, lp, lm in kept], axis=0)
    sigma = np.clip(sigma0 + 0.1 * sgrad, 0.8 * sigma0, 1.2 * sigma0)
    np.testing.assert_allclose(s.std, np.maximum(sigma * 0.999, 0.01), rtol=1e-12)


@pytest.mark.parametrize("temperature", [12.0, 0.0])
def test_snes_one_update(rng, temperature):
    s, x, f = setup("snes", rng, temperature=temperature)
    m0, sigma0 = s.mean.copy(), s.sigma.copy()
    s.tell(f, population=x)
    order = sorted(range(P), key=lambda i: -f[i])  # best first
    if temperature > 0:
        logits = np.array([-temperature * (k / (P - 1) - 0.5) for k in range(P)])
        u = np.exp(logits) / np.exp(logits).sum()
    else:
        raw = np.array([max(0.0, math.log(P / 2 + 1) - math.log(k)) for k in range(1, P + 1)])
        u = raw / raw.sum() - 1 / P
    z = [(x[i] - m0) / sigma0 for i in order]
    eta_sigma = (3 + math.log(D)) / (5 * math.sqrt(D))
    np.testing.assert_allclose(s.mean, m0 + sigma0 * sum(u[k] * z[k] for k in range(P)), rtol=1e-12)
    np.testing.assert_allclose(s.std, sigma0 * np.exp(eta_sigma / 2 * sum(u[k] * (z[k] ** 2 - 1) for k in range(P))),
                               rtol=1e-12)


def test_sep_cma_es_one_update(rng):
    s, x, f = setup("sep_cma_es", rng)
    s.C = 0.5 + rng.random(D)  # a non-trivial state
    s.p_sigma, s.p_c = 0.1 * rng.standard_normal(D), 0.1 * rng.standard_normal(D)
    m0, sigma0, C0, ps0, pc0 = s.mean.copy(), s.sigma, s.C.copy(), s.p_sigma.copy(), s.p_c.copy()
    s.tell(f, population=x)
    d, mu = D, P // 2
    w = np.array([math.log(mu + 1) - math.log(k) for k in range(1, mu + 1)])
    w /= w.sum()
    mu_eff = 1 / np.sum(w**2)
    c1 = 2 / ((d + 1.3) ** 2 + mu_eff)
    cmu = (d + 2) / 3 * (2 / mu_eff / (d + math.sqrt(2)) ** 2
                         + (1 - 1 / mu_eff) * min(1, (2 * mu_eff - 1) / ((d + 2) ** 2 + mu_eff)))
    cs = (mu_eff + 2) / (d + mu_eff + 3)
    ds = 1 + 2 * max(0, math.sqrt((mu_eff - 1) / (d + 1)) - 1) + cs
    cc = 4 / (d + 4)
    chi = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))
    y = [(x[i] - m0) / sigma0 for i in sorted(range(P), key=lambda i: -f[i])][:mu]
    yw = sum(w[k] * y[k] for k in range(mu))
    ps = (1 - cs) * ps0 + math.sqrt(cs * (2 - cs) * mu_eff) * yw / np.sqrt(C0)
    hs = float(np.linalg.norm(ps) / math.sqrt(1 - (1 - cs) ** 2) < (1.4 + 2 / (d + 1)) * chi)
    pc = (1 - cc) * pc0 + hs * math.sqrt(cc * (2 - cc) * mu_eff) * yw
    C = (1 + c1 * (1 - hs) * cc * (2 - cc) - c1 - cmu * w.sum()) * C0 + c1 * pc**2 \
        + cmu * sum(w[k] * y[k] ** 2 for k in range(mu))
    sigma = sigma0 * math.exp(cs / ds * (np.linalg.norm(ps) / chi - 1))
    np.testing.assert_allclose(s.mean, m0 + sigma0 * yw, rtol=1e-12)
    for got, want in ((s.p_sigma, ps), (s.p_c, pc), (s.C, C), (s.std, sigma * np.sqrt(C))):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert s.sigma == pytest.approx(sigma, rel=1e-12)


def test_des_one_update(rng):
    s, x, f = setup("des", rng)
    m0, sigma0 = s.mean.copy(), s.sigma.copy()
    s.tell(f, population=x)
    logits = np.array([-20 / (1 + math.exp(-12.5 * (k / (P - 1) - 0.5))) for k in range(P)])
    w = np.exp(logits) / np.exp(logits).sum()
    xs = [x[i] for i in sorted(range(P), key=lambda i: -f[i])]
    np.testing.assert_allclose(s.mean, sum(w[k] * xs[k] for k in range(P)), rtol=1e-12)
    wstd = np.sqrt(sum(w[k] * (xs[k] - m0) ** 2 for k in range(P)) + 1e-6)
    np.testing.assert_allclose(s.std, sigma0 + 0.1 * (wstd - sigma0), rtol=1e-12)


def test_fitness_shaping_order_and_mean_decay(rng):
    s, x, f = setup("open_es", rng, centered_rank=False, w_decay=0.1, z_score=True, mean_decay=0.01)
    loss = -f + 0.1 * (x**2).mean(axis=1)
    np.testing.assert_allclose(s.shape_fitness(f, x), (loss - loss.mean()) / (loss.std() + 1e-10))
    s2 = strategies.make("open_es", D, P, seed=3, centered_rank=False, w_decay=0.1, z_score=True)
    s2.mean = s.mean
    s.tell(f, population=x), s2.tell(f, population=x)
    np.testing.assert_allclose(s.mean, 0.99 * s2.mean, rtol=1e-12)
    r = strategies.make("pgpe", D, P, norm_range=True, centered_rank=False).shape_fitness(f, x)
    assert r.min() == pytest.approx(-1) and r.max() == pytest.approx(1, abs=1e-8)


def sphere(x):
    return -np.sum(np.asarray(x, dtype=np.float64) ** 2, axis=1)


# Budgets stated here and quoted in the README: (popsize, generations, target on f = ‖mean‖²).
SPHERE = {"snes": (20, 1000, 1e-8), "sep_cma_es": (20, 1000, 1e-8), "des": (200, 1500, 1e-6),
          "open_es": (40, 3000, 1e-2), "pgpe": (40, 3000, 1e-2)}


@pytest.mark.parametrize("name", SPHERE)
def test_sphere_20d(name):
    popsize, generations, target = SPHERE[name]
    s = strategies.make(name, 20, popsize, seed=0)
    s.mean = np.full(20, 3.0)
    best = np.inf
    for _ in range(generations):
        s.tell(sphere(s.ask()))
        best = min(best, float(np.sum(s.mean**2)))
        if best < target:
            break
    assert best < target, f"{name}: f = {best:.3g} after {generations} generations of {popsize}"


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_resume_from_state_dict_is_bitwise_identical(name):
    def run(s, gens):
        out = []
        for _ in range(gens):
            x = s.ask()
            s.tell(sphere(x))
            out.append(x)
        return out

    a = strategies.make(name, 10, 12, seed=5)
    a.mean = np.ones(10)
    run(a, 7)
    state = a.state_dict()
    tail_a = run(a, 5)
    b = strategies.make(name, 10, 12, seed=99)
    b.load_state_dict(state)
    tail_b = run(b, 5)
    for xa, xb in zip(tail_a, tail_b):
        np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(a.mean, b.mean)


# Hyperparameters whose derived quantities (weights, elite count, learning rates) a restore must rebuild.
OTHER_HPARAMS = {"sep_cma_es": ({"elite_ratio": 0.5}, {"elite_ratio": 0.1}),
                 "snes": ({"temperature": 12.0}, {"temperature": 0.0}),
                 "des": ({"temperature": 12.5}, {"temperature": 3.0}),
                 "pgpe": ({"elite_ratio": 1.0}, {"elite_ratio": 0.5}),
                 "open_es": ({"lrate_decay": 0.999}, {"lrate_decay": 0.9})}


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_a_state_restored_into_another_configuration_continues_like_the_saved_one(name):
    saved_hp, other_hp = OTHER_HPARAMS[name]
    a = strategies.make(name, 10, 20, seed=5, **saved_hp)
    a.mean = np.ones(10)
    for _ in range(3):
        a.tell(sphere(a.ask()))
    b = strategies.make(name, 10, 20, seed=5, **other_hp)
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(xa, xb)
        a.tell(sphere(xa)), b.tell(sphere(xb))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    assert b.hp == a.hp


def test_a_restore_refuses_unknown_hyperparameters_and_keeps_old_states_working():
    s = strategies.make("snes", 4, 6)
    state = s.state_dict()
    state["hparams"] = {**state["hparams"], "future_option": 1}
    with pytest.raises(UserError, match="future_option"):
        strategies.make("snes", 4, 6).load_state_dict(state)
    old = s.state_dict()  # as written before ties and the counters existed: the behaviour of that time
    del old["hparams"]["ties"], old["updates"], old["uninformative"]
    old["generation"] = 4
    t = strategies.make("snes", 4, 6)
    t.load_state_dict(old)
    assert t.hp["ties"] == "index" and t.updates == 4 and t.uninformative == 0


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_nan_and_inf_fitness_count_as_worst(name):
    s = strategies.make(name, 8, 10, seed=1)
    s.mean = np.ones(8)
    for g in range(30):
        f = sphere(s.ask())
        f[g % 10] = np.nan
        f[(g + 3) % 10] = np.inf
        s.tell(f)
        assert np.all(np.isfinite(s.mean)) and np.all(np.isfinite(s.std)) and np.all(s.std > 0)
    clean = strategies.make(name, 8, 10, seed=1)
    clean.mean = np.ones(8)
    x = clean.ask()
    f = sphere(x)
    worst_copy = strategies.make(name, 8, 10, seed=1)
    worst_copy.mean = np.ones(8)
    worst_copy.ask()
    f_nan = f.copy()
    f_nan[np.argmin(f)] = np.nan  # the worst member reported as NaN changes nothing
    clean.tell(f), worst_copy.tell(f_nan)
    np.testing.assert_allclose(clean.mean, worst_copy.mean)


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_same_seed_same_trajectory_and_backends_agree(name):
    means = {}
    for backend in ("numpy", "numpy", "numba"):
        s = strategies.make(name, 20, 16, seed=7, backend=backend)
        s.mean = np.full(20, 3.0)
        for _ in range(50):
            s.tell(sphere(s.ask()))
        means.setdefault(backend, []).append(s.mean.copy())
    np.testing.assert_array_equal(means["numpy"][0], means["numpy"][1])
    np.testing.assert_allclose(means["numba"][0], means["numpy"][0], rtol=1e-6, atol=1e-6)


def test_antithetic_members_mirror_and_regenerate_from_noise():
    from esprune import noise

    s = strategies.make("open_es", 5, 6, seed=4)
    x = s.ask()
    z = noise.gaussian(4, 0, 3, 5).astype(np.float64)
    np.testing.assert_allclose(x, np.concatenate([z, -z]) * s.sigma, rtol=1e-6)
    p = strategies.make("pgpe", 5, 6, seed=4).ask()
    np.testing.assert_allclose(p[0::2], -p[1::2])


def test_registry_and_errors():
    assert set(strategies.REGISTRY) == {"open_es", "pgpe", "snes", "sep_cma_es", "des"}
    for alias, name in strategies.ALIASES.items():
        assert strategies.make(alias, 4, 4).name == name
    with pytest.raises(UserError, match="unknown strategy"):
        strategies.make("cma", 4, 4)
    with pytest.raises(UserError, match="unknown hyperparameter"):
        strategies.make("snes", 4, 4, sigma=0.1)
    with pytest.raises(UserError, match="popsize"):
        strategies.make("pgpe", 4, 5)
    with pytest.raises(UserError, match="tell"):
        strategies.make("snes", 4, 4).tell(np.zeros(4))
    assert strategies.hyperparameters("Sep_CMA_ES")["elite_ratio"] == 0.5


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_cupy_trajectory_agrees_with_numpy(cupy_backend, name):
    means = []
    for backend in ("numpy", cupy_backend):
        s = strategies.make(name, 20, 16, seed=7, backend=backend)
        s.mean = np.full(20, 3.0)
        for _ in range(50):
            x = s.ask()
            s.tell(sphere(s.be.to_numpy(x)))
        means.append(s.be.to_numpy(s.mean))
    np.testing.assert_allclose(means[1], means[0], rtol=1e-6, atol=1e-6)


def test_sgd_with_momentum_instead_of_adam(rng):
    s, x, f = setup("open_es", rng, opt="sgd", momentum=0.9)
    m0, sigma, lr = s.mean.copy(), s.sigma, s.lrate
    s.tell(f, population=x)
    g = ranks_centered(-f) @ (x - m0) / sigma / (P * sigma)
    np.testing.assert_allclose(s.mean, m0 - lr * g, rtol=1e-12)
    m1, sigma1 = s.mean.copy(), s.sigma
    s.tell(f, population=x + (m1 - m0))  # second step: velocity 0.9 g + g' (same shaped ranks)
    g2 = ranks_centered(-f) @ (x - m0) / sigma1 / (P * sigma1)
    np.testing.assert_allclose(s.adam_m, 0.9 * g + g2, rtol=1e-10)
    with pytest.raises(UserError, match="optimizer"):
        strategies.make("pgpe", D, P, opt="rmsprop").tell(np.zeros(P), population=np.zeros((P, D)))


@pytest.mark.parametrize("name", ["open_es", "pgpe", "snes", "sep_cma_es", "des"])
def test_update_from_regenerated_noise_equals_update_from_the_population(name, rng):
    """tell() after ask() sums counter-regenerated ε (no stored matrix); tell(population=...) recovers ε from
    the members. Both must give the same step (to the float32 rounding of the members)."""
    d, P = 300, 16
    a = strategies.make(name, d, P, seed=4, backend="numba")
    b = strategies.make(name, d, P, seed=4, backend="numba")
    a.mean = b.mean = rng.standard_normal(d)
    pop = a.ask()
    fitness = rng.standard_normal(P)
    a.tell(fitness)
    b.tell(fitness, population=pop)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-5, atol=1e-7)
