"""The ask/tell bookkeeping every strategy shares: noise, fitness shaping, NaN handling, decay, state.

A strategy writes only ``_init_state`` (its evolving numbers), ``std`` (its per-parameter search std: members
are mean + std ⊙ ε) and ``_update`` (the paper's update rule). Updates read the noise only through ``_moments`` — weighted sums
Σ w_i ε_i and Σ w_i ε_i² over the members — which regenerates ε by its counter (``noise.moments``: a numba or
CUDA kernel), so no ``(P, d)`` noise matrix is kept between ``ask`` and ``tell``. Evolving state is float64
on the backend's array module; the population handed to the task is float32. Fitness is higher-is-better at
the interface; like the paper's code (evosax 0.1.4) the shaper first negates it, so the rules see a loss
("minimization sign") with best = lowest.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend as _backend
from .. import noise
from ..errors import ConfigError

# Fitness shaping and decay options every strategy accepts (PAPER.md, "The five strategies").
SHAPING_DEFAULTS = {"centered_rank": False, "z_score": False, "norm_range": False, "w_decay": 0.0,
                    "mean_decay": 0.0}


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
        self.be = _backend.get(backend)
        self.xp = self.be.xp
        self.generation = 0
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
        loss, order = self._shape_and_rank(fitness, pop)
        self._eps = eps
        self._update(pop, loss, order)
        self._eps = None
        if self.hp["mean_decay"]:
            self._mean = self._mean * (1.0 - self.hp["mean_decay"])
        self._pending = None
        self.generation += 1

    def shape_fitness(self, fitness, pop):
        """Fitness → loss in the paper code's order: negate, L2 penalty, centered ranks, z-score, range."""
        return self._shape_and_rank(fitness, pop)[0]

    def _shape_and_rank(self, fitness, pop):
        """The shaped loss and the member order, best first; non-finite fitness ranks strictly last and
        takes the worst finite value wherever values (not ranks) are used."""
        xp = self.xp
        f = np.asarray(self.be.to_numpy(fitness), dtype=np.float64).reshape(-1)
        if f.shape != (self.popsize,):
            raise ConfigError(f"{self.name}: fitness must have {self.popsize} entries, got {f.shape[0]}")
        finite = np.isfinite(f)
        worst = f[finite].min() if finite.any() else 0.0
        loss = xp.asarray(-np.where(finite, f, worst))
        bad = xp.asarray((~finite).astype(np.float64))
        if self.hp["w_decay"]:
            pop = pop.astype(xp.float64)
            loss = loss + self.hp["w_decay"] * (pop * pop).mean(axis=1)
        order = xp.lexsort(xp.stack([loss, bad]))  # primary key: non-finite last; stable among ties
        if self.hp["centered_rank"]:
            loss = xp.empty(self.popsize)
            loss[order] = xp.arange(self.popsize, dtype=xp.float64) / (self.popsize - 1) - 0.5
        if self.hp["z_score"]:
            loss = (loss - loss.mean()) / (loss.std() + 1e-10)
        if self.hp["norm_range"]:
            loss = 2.0 * (loss - loss.min()) / (loss.max() - loss.min() + 1e-10) - 1.0
        return loss, order

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to continue bitwise identically (host numpy arrays and Python scalars)."""
        state = {"strategy": self.name, "dim": self.dim, "popsize": self.popsize, "seed": self.seed,
                 "generation": self.generation, "hparams": dict(self.hp)}
        for key in self._state_keys():
            value = getattr(self, key)
            state[key] = self.be.to_numpy(value).copy() if hasattr(value, "shape") else value
        return state

    def load_state_dict(self, state: dict) -> None:
        for key in ("strategy", "dim", "popsize"):
            mine = self.name if key == "strategy" else getattr(self, key)
            if state[key] != mine:
                raise ConfigError(f"state is for {key}={state[key]!r}, this strategy has {mine!r}")
        self.seed, self.generation, self.hp = int(state["seed"]), int(state["generation"]), dict(state["hparams"])
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
        """Per-member weights from per-rank ``weights`` (rank 0 = best): w[order[k]] = weights[k]."""
        w = self.xp.zeros(self.popsize)
        w[order[: weights.shape[0]]] = weights
        return w

    _eps = None

    def _init_state(self):
        raise NotImplementedError

    def _update(self, pop, loss, order):
        raise NotImplementedError


class GaussianStrategy(Strategy):
    """Sampling shared by the strategies whose search distribution is N(m, diag(σ²)), σ scalar or ``(d,)``."""

    @property
    def std(self):
        return self.sigma * self.xp.ones(self.dim)


def adam_step(grad, m, v, t: int, lrate: float, beta1: float, beta2: float, eps: float):
    """One bias-corrected Adam descent step along ``grad`` (t counts from 1). Returns (step, m, v)."""
    m = (1 - beta1) * grad + beta1 * m
    v = (1 - beta2) * grad * grad + beta2 * v
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return -lrate * m_hat / (v_hat**0.5 + eps), m, v


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
