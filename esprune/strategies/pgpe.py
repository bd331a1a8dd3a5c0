"""PGPE (Sehnke et al. 2010): diagonal Gaussian, symmetric pairs, Adam on the mean, clipped σ ascent."""
from __future__ import annotations

from ..errors import ConfigError
from .base import ADAM_DEFAULTS, GaussianStrategy, optimizer_step


class PGPE(GaussianStrategy):
    """PGPE: diagonal Gaussian, symmetric pairs, Adam on the mean, clipped σ ascent."""

    name = "pgpe"
    defaults = {**ADAM_DEFAULTS, "elite_ratio": 1.0, "sigma_lrate": 0.1, "sigma_max_change": 0.2}
    antithetic = True  # interleaved pairs: x_{2j} = m + σ⊙z_j, x_{2j+1} = m − σ⊙z_j
    state_keys = ["sigma", "lrate", "adam_m", "adam_v"]

    def _init_state(self):
        self.sigma = self.xp.full(self.dim, float(self.hp["sigma_init"]))
        self.lrate = float(self.hp["lrate_init"])
        self.adam_m, self.adam_v = self.xp.zeros(self.dim), self.xp.zeros(self.dim)
        if not 0.0 < self.hp["elite_ratio"] <= 1.0:
            raise ConfigError(f"pgpe: elite_ratio must lie in (0, 1], got {self.hp['elite_ratio']}")

    def _mirror_index(self):
        return self.xp.arange(0, self.popsize, 2), self.xp.arange(1, self.popsize, 2)

    def _update(self, pop, loss, order):
        xp, hp = self.xp, self.hp
        loss_plus, loss_minus = loss[0::2], loss[1::2]
        pairs = loss_plus.shape[0]
        n_elite = max(1, int(pairs * hp["elite_ratio"]))
        kept = xp.ones(pairs)
        if n_elite < pairs:  # keep the pairs whose better member is best (tied pairs at the cut share)
            kept = self._best(xp.minimum(loss_plus, loss_minus), n_elite)
        # σ ascends the fitness (= −loss): reward_j = ½(f⁺_j + f⁻_j) − b, b = mean fitness of all members.
        reward = -0.5 * (loss_plus + loss_minus) + loss.mean()
        # Over the kept pairs, with σ⊙z_j the + member's step: mean gradient = σ ⊙ mean_j ½(f⁺ − f⁻) z_j (loss
        # sign), σ gradient = mean_j r_j ((σ z_j)² − σ²)/σ = σ ⊙ (mean_j r_j z_j²) − σ · mean_j r_j.
        w1, w2 = xp.zeros(self.popsize), xp.zeros(self.popsize)
        w1[0::2] = kept * 0.5 * (loss_plus - loss_minus) / n_elite
        w2[0::2] = kept * reward / n_elite
        s1, s2 = self._moments(w1, w2)
        step, self.adam_m, self.adam_v = optimizer_step(hp, self.sigma * s1, self.adam_m, self.adam_v,
                                                        self.updates + 1, self.lrate)
        sigma_grad = self.sigma * s2 - self.sigma * float((kept * reward).sum() / n_elite)
        change = hp["sigma_max_change"] * xp.abs(self.sigma)
        sigma = xp.clip(self.sigma + hp["sigma_lrate"] * sigma_grad, self.sigma - change, self.sigma + change)
        self._mean = self.mean + step
        self.sigma = xp.maximum(sigma * hp["sigma_decay"], hp["sigma_limit"])
        self.lrate = max(self.lrate * hp["lrate_decay"], hp["lrate_limit"])
