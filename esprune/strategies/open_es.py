"""OpenAI-ES (Salimans et al. 2017): isotropic Gaussian, antithetic sampling, Adam on the score gradient."""
from __future__ import annotations

from .base import ADAM_DEFAULTS, GaussianStrategy, optimizer_step


class OpenES(GaussianStrategy):
    """OpenAI-ES: isotropic Gaussian, antithetic pairs, Adam on the centered-rank score gradient."""

    name = "open_es"
    defaults = dict(ADAM_DEFAULTS)
    antithetic = True  # members j and j + P/2 use ε and −ε
    state_keys = ["sigma", "lrate", "adam_m", "adam_v"]

    def _init_state(self):
        self.sigma, self.lrate = float(self.hp["sigma_init"]), float(self.hp["lrate_init"])
        self.adam_m, self.adam_v = self.xp.zeros(self.dim), self.xp.zeros(self.dim)

    def _update(self, pop, loss, order):
        hp = self.hp
        grad = self._moments(loss)[0] / (self.popsize * self.sigma)  # g = Σ f̃_i z_i / (Pσ), loss sign
        step, self.adam_m, self.adam_v = optimizer_step(hp, grad, self.adam_m, self.adam_v, self.updates + 1,
                                                        self.lrate)
        self._mean = self.mean + step
        self.lrate = max(self.lrate * hp["lrate_decay"], hp["lrate_limit"])
        self.sigma = max(self.sigma * hp["sigma_decay"], hp["sigma_limit"])
