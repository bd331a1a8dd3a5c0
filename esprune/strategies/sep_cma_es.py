"""Sep-CMA-ES (Ros & Hansen 2008): CMA-ES restricted to a diagonal covariance, linear time and space in d.

Two sets of learning rates (``learning_rates``): "evosax" (default), those of evosax 0.1.4, which the paper
used; "pycma", pycma 4.5's diagonal ones (``c1_sep``, ``cmu_sep``, ``cc_sep``), which need about 40% fewer
evaluations on the separable ellipsoid (README) and keep c_1 + c_μ ≤ 1 for every d and P.
"""
from __future__ import annotations

import math
import warnings

from ..errors import ConfigError
from .base import Strategy

_D_CAP = 40_000  # the paper code caps d inside the squares of the learning rates (PAPER.md)

LEARNING_RATES = {
    "evosax": "evosax 0.1.4's (the paper's): c_1 = 2/((d+1.3)² + μ_eff), c_μ = (d+2)/3 · c_cov, c_c = 4/(d+4); "
              "c_1 + c_μ > 1 for small d and large P (warned; C is then clamped as evosax does)",
    "pycma": "pycma 4.5's CMA_diagonal rates (c1_sep, cmu_sep, cc_sep) in Ros & Hansen's update with positive "
             "weights (pycma itself adds negative ones): c_1 = 1/(d + 2√d + μ_eff/d), "
             "c_μ = min(1 − c_1, (μ_eff + 1/μ_eff − 1.75)/(d + 4√d + μ_eff/2)), "
             "c_c = (1 + 1/d + μ_eff/d)/(√d + 1/d + 2μ_eff/d)",
}


def constants(dim: int, popsize: int, elite_ratio: float, learning_rates: str = "evosax") -> dict:
    """Recombination weights, learning rates and damping (Python floats; ``weights`` a list of μ floats).

    "evosax": evosax 0.1.4's ``Sep_CMA_ES.params_strategy`` (Ros & Hansen 2008, Sec. 2, with d capped at
    40,000 inside the squares and c_1 left unscaled); "pycma": ``CMAParameters.set`` of pycma 4.5
    (``c1_sep``, ``cmu_sep``, ``cc_sep``). c_σ, d_σ and χ_n are the same in both. ``valid`` is False when
    c_1 + c_μ·Σw > 1, where the update can turn C negative."""
    mu = max(1, int(popsize * elite_ratio))
    w = [math.log(mu + 1) - math.log(k) for k in range(1, mu + 1)]
    w = [v / sum(w) for v in w]
    mu_eff = 1.0 / sum(v * v for v in w)
    if learning_rates == "pycma":
        c_1 = 1.0 / (dim + 2 * math.sqrt(dim) + mu_eff / dim)
        c_mu = min(1 - c_1, (0.25 + mu_eff + 1 / mu_eff - 2) / (dim + 4 * math.sqrt(dim) + mu_eff / 2))
        c_c = (1 + 1 / dim + mu_eff / dim) / (math.sqrt(dim) + 1 / dim + 2 * mu_eff / dim)
    else:
        dc = min(dim, _D_CAP)
        c_1 = 2.0 / ((dc + 1.3) ** 2 + mu_eff)
        c_mu = (dim + 2) / 3 * (2 / mu_eff / (dc + math.sqrt(2)) ** 2
                                + (1 - 1 / mu_eff) * min(1.0, (2 * mu_eff - 1) / ((dc + 2) ** 2 + mu_eff)))
        c_c = 4 / (dim + 4)
    c_sigma = (mu_eff + 2) / (dim + mu_eff + 3)
    d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (dim + 1)) - 1) + c_sigma
    chi_n = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * min(dim, _D_CAP) ** 2))  # E‖N(0, I)‖
    return dict(mu=mu, weights=w, mu_eff=mu_eff, c_1=c_1, c_mu=c_mu, c_sigma=c_sigma, d_sigma=d_sigma,
                c_c=c_c, chi_n=chi_n, valid=c_1 + c_mu * sum(w) <= 1.0 + 1e-12)  # pycma's c_μ = 1 − c_1 rounds


class SepCMAES(Strategy):
    """Sep-CMA-ES: CMA-ES with a diagonal covariance; std = σ√C; learning_rates evosax (paper) or pycma."""

    name = "sep_cma_es"
    defaults = {"sigma_init": 0.1, "elite_ratio": 0.5, "learning_rates": "evosax"}
    state_keys = ["sigma", "C", "p_sigma", "p_c"]

    def _init_state(self):
        xp = self.xp
        if self.hp["learning_rates"] not in LEARNING_RATES:
            raise ConfigError(f"sep_cma_es: learning_rates must be one of {', '.join(LEARNING_RATES)}, "
                              f"got {self.hp['learning_rates']!r}")
        self.k = constants(self.dim, self.popsize, self.hp["elite_ratio"], self.hp["learning_rates"])
        self.weights = xp.asarray(self.k["weights"])
        self.sigma = float(self.hp["sigma_init"])
        self.C, self.p_sigma, self.p_c = xp.ones(self.dim), xp.zeros(self.dim), xp.zeros(self.dim)
        self._warned = False

    @property
    def std(self):
        """The per-parameter search std σ√C (the paper code's SNR used C itself; see PAPER.md). A negative
        C counts as 1e-20, as in evosax 0.1.4's ``diag_eigen_decomp``, so a finite state never samples NaN."""
        return self.sigma * self._clamped_C() ** 0.5

    def ask(self):
        """As ``Strategy.ask``; the first call warns (RuntimeWarning) when c_1 + c_μ > 1 (C can turn negative)."""
        if not self.k["valid"] and not self._warned:
            self._warned = True
            warnings.warn(f"sep_cma_es: with d={self.dim} and popsize {self.popsize} the {self.hp['learning_rates']} "
                          f"learning rates give c_1 + c_mu = {self.k['c_1'] + self.k['c_mu']:.3g} > 1, so C can turn "
                          "negative; it is clamped as evosax 0.1.4 does and the search degenerates. Use "
                          "learning_rates='pycma' or a smaller popsize.", RuntimeWarning, stacklevel=2)
        return super().ask()

    def _clamped_C(self):
        return self.xp.where(self.C < 0, 1e-20, self.C)

    def _update(self, pop, loss, order):
        xp, k, d = self.xp, self.k, self.dim
        # elite steps y_k = (x_k − m)/σ = D ⊙ ε_k with D = √C (clamped), best first:
        # y_w = D ⊙ Σ w ε, y_w / D = Σ w ε, Σ w y² = D² ⊙ Σ w ε²
        s1, s2 = self._moments(self._ranked(order, self.weights))
        D2 = self._clamped_C()
        y_w = D2**0.5 * s1
        self._mean = self.mean + self.sigma * y_w
        self.p_sigma = ((1 - k["c_sigma"]) * self.p_sigma
                        + math.sqrt(k["c_sigma"] * (2 - k["c_sigma"]) * k["mu_eff"]) * s1)  # s1 = y_w / D
        norm = float(xp.linalg.norm(self.p_sigma))
        bias = math.sqrt(1 - (1 - k["c_sigma"]) ** (2 * (self.updates + 1)))
        h_sigma = float(norm / bias < (1.4 + 2 / (d + 1)) * k["chi_n"])
        self.p_c = (1 - k["c_c"]) * self.p_c + h_sigma * math.sqrt(k["c_c"] * (2 - k["c_c"]) * k["mu_eff"]) * y_w
        decay = (1 + k["c_1"] * (1 - h_sigma) * k["c_c"] * (2 - k["c_c"]) - k["c_1"]
                 - k["c_mu"] * float(self.weights.sum()))
        self.C = decay * self.C + k["c_1"] * self.p_c**2 + k["c_mu"] * D2 * s2
        self.sigma = self.sigma * math.exp(k["c_sigma"] / k["d_sigma"] * (norm / k["chi_n"] - 1))
