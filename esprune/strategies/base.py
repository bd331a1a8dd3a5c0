"""The ask/tell bookkeeping every strategy shares: noise, fitness shaping, NaN handling, decay, state.

A strategy writes only ``_init_state`` (its evolving numbers), ``std`` (its per-parameter search std: members
are mean + std ⊙ ε) and ``_update`` (the paper's update rule). Updates read the noise only through ``_moments`` — weighted sums
Σ w_i ε_i and Σ w_i ε_i² over the members — which regenerates ε by its counter (``noise.moments``: a numba or
CUDA kernel), so no ``(P, d)`` noise matrix is kept between ``ask`` and ``tell`` (the numba backend keeps the
last sample's normals when they fit in 32 MB and reads them instead: the same values, bit for bit). Evolving
state is float64 on the backend's array module; the population handed to the task is float32. Fitness is higher-is-better at
the interface; like the paper's code (evosax 0.1.4) the shaper first negates it, so the rules see a loss
("minimization sign") with best = lowest.

Ties (``ties``): "average" (default) gives tied members the mean of their ranks — the mean of the per-rank
weights — so equal fitness values pull the search equally (scipy's ``rankdata(method="average")``);
"index" breaks them by member index, as evosax 0.1.4's stable argsort does (the paper presets use it).
A generation with nothing to rank (every fitness non-finite; or, with average ties, all equal) changes
nothing: no update, no decay. It still advances ``generation`` (fresh noise next time) and is counted in
``uninformative``; ``updates`` counts the updates applied (Adam's step count and CMA's path age use it).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend as _backend
from .. import noise
from ..errors import ConfigError
from ..optim import adam_step

# Fitness shaping and decay options every strategy accepts (PAPER.md, "The five strategies").
SHAPING_DEFAULTS = {"centered_rank": False, "z_score": False, "norm_range": False, "w_decay": 0.0,
                    "mean_decay": 0.0, "ties": "average"}
# The rule-choosing hyperparameters (a run records their resolved value), with a line on each choice.
TIES = {"average": "tied fitness values share their mean rank; a generation with nothing to rank changes nothing",
        "index": "ties broken by member index, as evosax 0.1.4 (the paper's code) does; the paper presets use it"}
# What a state saved before a hyperparameter existed did: restoring it must continue the same way.
LEGACY_HPARAMS = {"ties": "index"}


class Strategy:
    name = "base"
    defaults: dict = {}
    antithetic = False  # sample ε for P/2 members and mirror them

    def __init__(self, dim: int, popsize: int, seed: int = 0, backend="numpy", **hparams):
        self.dim, self.popsize, self.seed = int(dim), int(popsize), int(seed)
        if self.dim < 1:
            raise ConfigError(f"{self.name}: dim must be >= 1, got {dim}")
        if self.popsize < 2 or (self.antithetic and self.popsize % 2):
            need = "an even number >= 2" if self.antithetic else ">= 2"
            raise ConfigError(f"{self.name}: popsize must be {need}, got {popsize}")
        allowed = {**SHAPING_DEFAULTS, **self.defaults}
        unknown = sorted(set(hparams) - set(allowed))
        if unknown:
            raise ConfigError(f"{self.name}: unknown hyperparameter(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(allowed))}")
        self.hp = {**allowed, **hparams}
        self._check_hparams()
        self.be = _backend.get(backend)
        self.xp = self.be.xp
        self.generation = 0       # tells so far: keys the noise
        self.updates = 0          # tells that changed the state
        self.uninformative = 0    # tells with nothing to rank (all fitness non-finite, or all tied)
        self._pending = None
        self._mean = self.xp.zeros(self.dim)
        self._init_state()

    # ------------------------------------------------------------------------------------------ the interface
    @property
    def mean(self):
        return self._mean

    @mean.setter
    def mean(self, value):
        value = self.xp.asarray(value, dtype=self.xp.float64).reshape(-1)
        if value.shape != (self.dim,):
            raise ConfigError(f"{self.name}: mean must have {self.dim} entries, got {value.shape[0]}")
        self._mean = value.copy()

    @property
    def std(self):
        """Per-parameter search standard deviation ``(d,)``: what SNR pruning reads."""
        raise NotImplementedError

    def ask(self):
        """This generation's population ``(P, d)``, float32, on the strategy's backend: member i is
        mean + std ⊙ ε_i, drawn in one fused pass from the counter-based noise (antithetic strategies mirror
        base rows: ε₋ = −z)."""
        rows, signs = self._member_rows
        pop = noise.sample(self.seed, self.generation, rows, signs, self.mean, self.std, backend=self.be)
        self._pending = (None, pop)  # ε is regenerated from its counter in tell
        return pop

    def ask_members(self, start: int, stop: int):
        """Members ``start..stop-1`` of this generation's population ``(stop - start, d)``: exactly those rows
        of ``ask()``, drawn alone from their noise counters (a process that evaluates part of the population
        needs no others). ``tell`` then takes all P fitness values as usual. With ``w_decay`` the shaping
        reads every member, so the whole population is drawn."""
        if self.hp["w_decay"]:
            return self.ask()[start:stop]
        rows, signs = self._member_rows
        pop = noise.sample(self.seed, self.generation, rows[start:stop], signs[start:stop], self.mean, self.std,
                           backend=self.be)
        self._pending = (None, None)  # tell regenerates ε by counter and needs no population
        return pop

    @functools.cached_property
    def _member_rows(self):
        """Each member's noise row and sign (host arrays, fixed for the run): row i, + unless antithetic."""
        rows, signs = np.arange(self.popsize), np.ones(self.popsize)
        if self.antithetic:
            plus, minus = (self.be.to_numpy(i) for i in self._mirror_index())
            rows[plus], rows[minus] = np.arange(plus.shape[0]), np.arange(minus.shape[0])
            signs[minus] = -1.0
        return rows, self.be.asarray(signs)

    def tell(self, fitness, population=None) -> None:
        """Update from ``fitness`` ``(P,)`` (higher is better; NaN and ±inf count as the worst).

        ``population`` overrides the last ``ask`` (to check the rules against external samples).
        """
        if population is not None:
            pop = self.xp.asarray(population, dtype=self.xp.float64)
            if pop.shape != (self.popsize, self.dim):
                raise ConfigError(f"{self.name}: population must be ({self.popsize}, {self.dim}), got {pop.shape}")
            eps = (pop - self.mean) / self.std
        elif self._pending is None:
            raise ConfigError(f"{self.name}: tell() before ask(): nothing to update from")
        else:
            eps, pop = self._pending
        loss, order, informative = self._rank(fitness, pop)
        self._pending = None
        if not informative:
            self.uninformative += 1
        if informative or (self.hp["ties"] == "index" and self._finite_any):  # evosax updates on all-tied ones
            self._eps = eps
            self._update(pop, loss, order)
            self._eps = None
            if self.hp["mean_decay"]:
                self._mean = self._mean * (1.0 - self.hp["mean_decay"])
            self.updates += 1
        self.generation += 1

    def shape_fitness(self, fitness, pop):
        """Fitness → loss in the paper code's order: negate, L2 penalty, centered ranks, z-score, range."""
        return self._rank(fitness, pop)[0]

    def _rank(self, fitness, pop):
        """``(loss, order, informative)``: the shaped loss ``(P,)``, the member order best first, and whether
        the generation has anything to rank. Non-finite fitness ranks strictly last and takes the worst finite
        value wherever values (not ranks) are used. Ranking runs on the host (the fitness is there already);
        it also sets ``self._groups``, the tie group of each sorted position (device array), which
        ``_ranked`` averages over (each position its own group with ``ties="index"``)."""
        xp = self.xp
        f = np.asarray(self.be.to_numpy(fitness), dtype=np.float64).reshape(-1)
        if f.shape != (self.popsize,):
            raise ConfigError(f"{self.name}: fitness must have {self.popsize} entries, got {f.shape[0]}")
        finite = np.isfinite(f)
        worst = f[finite].min() if finite.any() else 0.0
        key = -np.where(finite, f, worst)
        if self.hp["w_decay"]:
            pop = pop.astype(xp.float64)
            key = key + self.be.to_numpy(self.hp["w_decay"] * (pop * pop).mean(axis=1))
        order = np.lexsort((key, ~finite))  # primary key: non-finite last; stable among ties
        starts = np.ones(self.popsize, dtype=bool)  # where a new tie group begins, in sorted order
        starts[1:] = (key[order][1:] != key[order][:-1]) | (~finite[order][1:] != ~finite[order][:-1])
        self._finite_any = bool(finite.any())
        informative = self._finite_any and bool(starts[1:].any())
        self._tied = self.hp["ties"] == "average" and not starts.all()
        self._groups = self.be.asarray(np.cumsum(starts) - 1) if self._tied else None
        loss, order = self.be.asarray(key), self.be.asarray(order)
        if self.hp["centered_rank"]:
            loss = xp.empty(self.popsize)
            loss[order] = self._tie_average(xp.arange(self.popsize, dtype=xp.float64) / (self.popsize - 1) - 0.5)
        if self.hp["z_score"]:
            loss = (loss - loss.mean()) / (loss.std() + 1e-10)
        if self.hp["norm_range"]:
            loss = 2.0 * (loss - loss.min()) / (loss.max() - loss.min() + 1e-10) - 1.0
        return loss, order, informative

    def _tie_average(self, per_position):
        """Per-position values (``(P,)``, best first) averaged over each tie group of this generation."""
        if not self._tied:
            return per_position
        return _group_mean(self.xp, per_position, self._groups)

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to continue bitwise identically (host numpy arrays and Python scalars)."""
        state = {"strategy": self.name, "dim": self.dim, "popsize": self.popsize, "seed": self.seed,
                 "generation": self.generation, "updates": self.updates, "uninformative": self.uninformative,
                 "hparams": dict(self.hp)}
        for key in self._state_keys():
            value = getattr(self, key)
            state[key] = self.be.to_numpy(value).copy() if hasattr(value, "shape") else value
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly as the saved strategy would: its hyperparameters replace this one's, and what is
        derived from them (recombination weights, elite count, learning rates) is rebuilt from them. A state
        saved before a hyperparameter existed gets the behaviour of that time (``LEGACY_HPARAMS``). Raises
        ConfigError when the state is for another strategy, dimension or population size, or names a
        hyperparameter this version does not know."""
        for key in ("strategy", "dim", "popsize"):
            mine = self.name if key == "strategy" else getattr(self, key)
            if state[key] != mine:
                raise ConfigError(f"state is for {key}={state[key]!r}, this strategy has {mine!r}")
        allowed = {**SHAPING_DEFAULTS, **self.defaults}
        saved = {**{k: v for k, v in LEGACY_HPARAMS.items() if k in allowed}, **state["hparams"]}
        unknown = sorted(set(saved) - set(allowed))
        if unknown:
            raise ConfigError(f"{self.name}: the saved state has hyperparameter(s) {', '.join(unknown)} that this "
                              "version does not know; continue it with the esprune version that wrote it")
        self.hp = {**allowed, **saved}
        self._check_hparams()
        self._init_state()  # derived quantities from the saved hyperparameters; the evolving ones follow
        self.seed, self.generation = int(state["seed"]), int(state["generation"])
        self.updates = int(state.get("updates", self.generation))
        self.uninformative = int(state.get("uninformative", 0))
        for key in self._state_keys():
            value = state[key]
            setattr(self, key, self.xp.asarray(value).copy() if hasattr(value, "shape") else value)
        self._pending = None

    def _state_keys(self) -> list[str]:
        return ["_mean"] + self.state_keys

    state_keys: list = []

    # ------------------------------------------------------------------------------------------ helpers
    def _moments(self, w1, w2=None):
        """``(Σ_i w1_i ε_i, Σ_i w2_i ε_i²)`` over the members, float64 ``(d,)`` (``w2`` defaults to ``w1``).

        After ``ask`` the noise is regenerated by counter; antithetic members fold onto their base rows
        (ε₊ = z, ε₋ = −z: Σ w ε = Σ (w₊ − w₋) z and Σ w ε² = Σ (w₊ + w₋) z²). After
        ``tell(population=...)`` the ε recovered from that population are summed directly."""
        xp = self.xp
        w1 = xp.asarray(w1, dtype=xp.float64)
        w2 = w1 if w2 is None else xp.asarray(w2, dtype=xp.float64)
        if self._eps is not None:
            return w1 @ self._eps, w2 @ (self._eps * self._eps)
        if self.antithetic:
            plus, minus = self._mirror_index()
            w1, w2 = w1[plus] - w1[minus], w2[plus] + w2[minus]
        rows = w1.shape[0]
        return noise.moments(self.seed, self.generation, rows, w1, w2, self.dim, backend=self.be)

    def _mirror_index(self):
        """Members holding +z_j and −z_j of base row j: j and j + P/2."""
        half = self.popsize // 2
        return self.xp.arange(half), self.xp.arange(half, self.popsize)

    def _ranked(self, order, weights):
        """Per-member weights from per-rank ``weights`` (rank 0 = best; missing ranks weigh 0):
        w[order[k]] = weights[k], averaged over each tie group."""
        xp = self.xp
        per_rank = xp.zeros(self.popsize)
        per_rank[: weights.shape[0]] = weights
        w = xp.zeros(self.popsize)
        w[order] = self._tie_average(per_rank)
        return w

    def _best(self, key, n: int):
        """Weights ``(m,)``: 1 for the ``n`` lowest of ``key`` ``(m,)``, 0 for the others; with average ties a
        tie group across the cut shares its places (the weights still sum to ``n``)."""
        xp = self.xp
        m = key.shape[0]
        order = xp.argsort(key, kind="stable")
        keep = (xp.arange(m) < n).astype(xp.float64)
        if self.hp["ties"] == "average":
            ranked = key[order]
            starts = xp.ones(m, dtype=xp.int64)
            starts[1:] = ranked[1:] != ranked[:-1]
            keep = _group_mean(xp, keep, xp.cumsum(starts) - 1)
        kept = xp.empty(m)
        kept[order] = keep
        return kept

    def _check_hparams(self):
        """The choice-valued hyperparameters, checked before any work."""
        if self.hp["ties"] not in TIES:
            raise ConfigError(f"{self.name}: ties must be one of {', '.join(TIES)}, got {self.hp['ties']!r}")
        if self.hp.get("opt", "adam") not in ("adam", "sgd"):
            raise ConfigError(f"unknown optimizer opt={self.hp['opt']!r}; choose adam or sgd")

    _eps = None

    def _init_state(self):
        raise NotImplementedError

    def _update(self, pop, loss, order):
        raise NotImplementedError


def _group_mean(xp, values, groups):
    """``values`` ``(n,)`` replaced by the mean over their group (``groups``: ids 0.. in non-decreasing order)."""
    return (xp.bincount(groups, weights=values) / xp.bincount(groups))[groups]


class GaussianStrategy(Strategy):
    """Sampling shared by the strategies whose search distribution is N(m, diag(σ²)), σ scalar or ``(d,)``."""

    @property
    def std(self):
        return self.sigma * self.xp.ones(self.dim)


def optimizer_step(hp: dict, grad, m, v, t: int, lrate: float):
    """The descent step of the configured optimizer: ``opt`` "adam" (default) or "sgd" (with ``momentum``;
    ``m`` holds the velocity). Returns (step, m, v)."""
    if hp["opt"] == "adam":
        return adam_step(grad, m, v, t, lrate, hp["beta1"], hp["beta2"], hp["eps"])
    if hp["opt"] == "sgd":
        m = hp["momentum"] * m + grad
        return -lrate * m, m, v
    raise ConfigError(f"unknown optimizer opt={hp['opt']!r}; choose adam or sgd")


# The paper code's optimizer and the σ / learning-rate schedules of the gradient-based strategies.
ADAM_DEFAULTS = {"opt": "adam", "momentum": 0.0, "lrate_init": 0.01, "lrate_decay": 0.999, "lrate_limit": 0.001, "beta1": 0.99, "beta2": 0.999,
                 "eps": 1e-8, "sigma_init": 0.1, "sigma_decay": 0.999, "sigma_limit": 0.01, "centered_rank": True}
