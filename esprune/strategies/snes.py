"""SNES (Schaul et al. 2011): separable natural ES, diagonal Gaussian, rank-based or temperature weights."""
from __future__ import annotations

import math

from .base import GaussianStrategy


class SNES(GaussianStrategy):
    """SNES: separable natural ES, temperature weights (temperature 0: rank utilities); lrate_sigma None =
    (3 + ln d)/(5√d)."""

    name = "snes"
    defaults = {"sigma_init": 0.1, "temperature": 12.0, "lrate_mean": 1.0, "lrate_sigma": None}
    state_keys = ["sigma"]

    def _init_state(self):
        xp, P = self.xp, self.popsize
        self.sigma = xp.full(self.dim, float(self.hp["sigma_init"]))
        if self.hp["lrate_sigma"] is None:  # η_σ = (3 + ln d) / (5 √d)
            self.hp["lrate_sigma"] = (3 + math.log(self.dim)) / (5 * math.sqrt(self.dim))
        if self.hp["temperature"] > 0:  # softmax(−τ (k/(P−1) − 0.5)), k = 0 for the best
            logits = -self.hp["temperature"] * (xp.arange(P) / (P - 1) - 0.5)
            w = xp.exp(logits - logits.max())
            self.weights = w / w.sum()
        else:  # u_k = max(0, ln(P/2 + 1) − ln k), normalized, minus 1/P (k = 1 for the best)
            u = xp.maximum(0.0, math.log(P / 2 + 1) - xp.log(xp.arange(1, P + 1)))
            self.weights = u / u.sum() - 1.0 / P

    def _update(self, pop, loss, order):
        u = self.weights
        s1, s2 = self._moments(self._ranked(order, u))  # u @ z and u @ z² with z sorted best first
        self._mean = self.mean + self.hp["lrate_mean"] * self.sigma * s1
        self.sigma = self.sigma * self.xp.exp(0.5 * self.hp["lrate_sigma"] * (s2 - u.sum()))
