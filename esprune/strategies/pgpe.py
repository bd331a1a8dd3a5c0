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

    def _mirror(self, z):
        out = self.xp.empty((2 * z.shape[0], z.shape[1]))
        out[0::2], out[1::2] = z, -z
        return out

    def _update(self, eps, pop, loss, order):
        xp, hp = self.xp, self.hp
        noise = (pop[0::2] - self.mean)  # σ⊙z_j of each pair
        loss_plus, loss_minus = loss[0::2], loss[1::2]
        pairs = noise.shape[0]
        n_elite = max(1, int(pairs * hp["elite_ratio"]))
        if n_elite < pairs:  # keep the pairs whose better member is best
            keep = xp.argsort(xp.minimum(loss_plus, loss_minus), kind="stable")[:n_elite]
            noise, loss_plus, loss_minus = noise[keep], loss_plus[keep], loss_minus[keep]
        grad = (0.5 * (loss_plus - loss_minus))[:, None] * noise  # mean_j ½(f⁺ − f⁻) σ⊙z_j, loss sign
        step, self.adam_m, self.adam_v = optimizer_step(hp, grad.mean(axis=0), self.adam_m, self.adam_v,
                                                        self.generation + 1, self.lrate)
        # σ ascends the fitness (= −loss): reward_j = ½(f⁺_j + f⁻_j) − b, b = mean fitness of all members.
        reward = -0.5 * (loss_plus + loss_minus) + loss.mean()
        sigma_grad = (reward[:, None] * (noise * noise - self.sigma**2) / self.sigma).mean(axis=0)
        change = hp["sigma_max_change"] * xp.abs(self.sigma)
        sigma = xp.clip(self.sigma + hp["sigma_lrate"] * sigma_grad, self.sigma - change, self.sigma + change)
        self._mean = self.mean + step
        self.sigma = xp.maximum(sigma * hp["sigma_decay"], hp["sigma_limit"])
        self.lrate = max(self.lrate * hp["lrate_decay"], hp["lrate_limit"])
