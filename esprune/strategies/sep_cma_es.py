"""Sep-CMA-ES (Ros & Hansen 2008): CMA-ES restricted to a diagonal covariance, linear time and space in d."""
from __future__ import annotations

import math

from .base import Strategy

_D_CAP = 40_000  # the paper code caps d inside the squares of the learning rates (PAPER.md)


def constants(dim: int, popsize: int, elite_ratio: float) -> dict:
    """Recombination weights and learning rates (Ros & Hansen 2008, Sec. 2; Hansen's tutorial, Table 1)."""
    mu = max(1, int(popsize * elite_ratio))
    w = [math.log(mu + 1) - math.log(k) for k in range(1, mu + 1)]
    w = [v / sum(w) for v in w]
    mu_eff = 1.0 / sum(v * v for v in w)
    dc = min(dim, _D_CAP)
    c_1 = 2.0 / ((dc + 1.3) ** 2 + mu_eff)
    c_mu = (dim + 2) / 3 * (2 / mu_eff / (dc + math.sqrt(2)) ** 2
                            + (1 - 1 / mu_eff) * min(1.0, (2 * mu_eff - 1) / ((dc + 2) ** 2 + mu_eff)))
    c_sigma = (mu_eff + 2) / (dim + mu_eff + 3)
    d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (dim + 1)) - 1) + c_sigma
    c_c = 4 / (dim + 4)
    chi_n = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * dim**2))  # E‖N(0, I)‖
    return dict(mu=mu, weights=w, mu_eff=mu_eff, c_1=c_1, c_mu=c_mu, c_sigma=c_sigma, d_sigma=d_sigma,
                c_c=c_c, chi_n=chi_n)


class SepCMAES(Strategy):
    """Sep-CMA-ES: CMA-ES with a diagonal covariance; std = σ√C."""

    name = "sep_cma_es"
    defaults = {"sigma_init": 0.1, "elite_ratio": 0.5}
    state_keys = ["sigma", "C", "p_sigma", "p_c"]

    def _init_state(self):
        xp = self.xp
        self.k = constants(self.dim, self.popsize, self.hp["elite_ratio"])
        self.weights = xp.asarray(self.k["weights"])
        self.sigma = float(self.hp["sigma_init"])
        self.C, self.p_sigma, self.p_c = xp.ones(self.dim), xp.zeros(self.dim), xp.zeros(self.dim)

    @property
    def std(self):
        """The true per-parameter search std σ√C (the paper code's SNR used C itself; see PAPER.md)."""
        return self.sigma * self.C**0.5

    def _update(self, pop, loss, order):
        xp, k, d = self.xp, self.k, self.dim
        # elite steps y_k = (x_k − m)/σ = √C ⊙ ε_k, best first: y_w = √C ⊙ Σ w ε, Σ w y² = C ⊙ Σ w ε²
        s1, s2 = self._moments(self._ranked(order, self.weights))
        y_w = self.C**0.5 * s1
        self._mean = self.mean + self.sigma * y_w
        self.p_sigma = ((1 - k["c_sigma"]) * self.p_sigma
                        + math.sqrt(k["c_sigma"] * (2 - k["c_sigma"]) * k["mu_eff"]) * y_w / self.C**0.5)
        norm = float(xp.linalg.norm(self.p_sigma))
        bias = math.sqrt(1 - (1 - k["c_sigma"]) ** (2 * (self.generation + 1)))
        h_sigma = float(norm / bias < (1.4 + 2 / (d + 1)) * k["chi_n"])
        self.p_c = (1 - k["c_c"]) * self.p_c + h_sigma * math.sqrt(k["c_c"] * (2 - k["c_c"]) * k["mu_eff"]) * y_w
        decay = 1 + k["c_1"] * (1 - h_sigma) * k["c_c"] * (2 - k["c_c"]) - k["c_1"] - k["c_mu"] * float(self.weights.sum())
        self.C = decay * self.C + k["c_1"] * self.p_c**2 + k["c_mu"] * self.C * s2
        self.sigma = self.sigma * math.exp(k["c_sigma"] / k["d_sigma"] * (norm / k["chi_n"] - 1))
