"""DES, the discovered ES (Lange et al. 2023): sigmoid-shaped rank weights, mean and σ moved toward the elite."""
from __future__ import annotations

from .base import GaussianStrategy


class DES(GaussianStrategy):
    """DES: the discovered ES, sigmoid-shaped rank weights."""

    name = "des"
    defaults = {"sigma_init": 0.1, "temperature": 12.5, "lrate_mean": 1.0, "lrate_sigma": 0.1}
    state_keys = ["sigma"]

    def _init_state(self):
        xp, P = self.xp, self.popsize
        self.sigma = xp.full(self.dim, float(self.hp["sigma_init"]))
        ranks = xp.arange(P) / (P - 1) - 0.5  # k = 0 for the best
        logits = -20.0 / (1.0 + xp.exp(-self.hp["temperature"] * ranks))  # −20 · sigmoid(τ (k/(P−1) − 0.5))
        w = xp.exp(logits - logits.max())
        self.weights = w / w.sum()

    def _update(self, pop, loss, order):
        # x_k − m = σ ⊙ ε_k and Σ w = 1, so w @ x − m = σ ⊙ Σ w ε and w @ (x − m)² = σ² ⊙ Σ w ε²
        s1, s2 = self._moments(self._ranked(order, self.weights))
        self._mean = self.mean + self.hp["lrate_mean"] * self.sigma * s1
        weighted_std = (self.sigma**2 * s2 + 1e-6) ** 0.5
        self.sigma = self.sigma + self.hp["lrate_sigma"] * (weighted_std - self.sigma)
