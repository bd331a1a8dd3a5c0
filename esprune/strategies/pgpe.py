"""PGPE (Sehnke et al. 2010): diagonal Gaussian, symmetric pairs, Adam on the mean, clipped σ ascent.

``sigma_rule`` picks the σ update. ``"corrected"`` (the default) is Sehnke et al.'s rule: each pair's own
reward, climbing the fitness. ``"evosax-0.1.4"`` reproduces the paper's code exactly (PAPER.md, "Details a
faithful reproduction must get right"): the pairs' average scores *sorted by elite rank* meet the noise rows
*in sampling order*, and the step climbs the minimised loss; the K-MNIST preset uses it. Other evosax 0.1.4
quirks that esprune deliberately does not copy: its SGD steps with the previous generation's momentum (a
one-step lag), its ``norm_range`` maps scores to [1, 3] instead of [−1, 1], and it refuses to combine fitness
shapers (esprune applies them in sequence).
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import ADAM_DEFAULTS, GaussianStrategy, optimizer_step

SIGMA_RULES = {
    "corrected": "Sehnke et al.'s σ update: each pair's own reward, climbing the fitness (default)",
    "evosax-0.1.4": "the paper's code: sorted elite scores meet unsorted noise and σ climbs the loss "
                    "(the K-MNIST preset uses it)",
}


class PGPE(GaussianStrategy):
    """PGPE: diagonal Gaussian, symmetric pairs, Adam mean, clipped σ (sigma_rule evosax-0.1.4: the paper's; kmnist)."""

    name = "pgpe"
    defaults = {**ADAM_DEFAULTS, "elite_ratio": 1.0, "sigma_lrate": 0.1, "sigma_max_change": 0.2,
                "sigma_rule": "corrected"}
    antithetic = True  # interleaved pairs: x_{2j} = m + σ⊙z_j, x_{2j+1} = m − σ⊙z_j
    state_keys = ["sigma", "lrate", "adam_m", "adam_v"]

    def _init_state(self):
        self.sigma = self.xp.full(self.dim, float(self.hp["sigma_init"]))
        self.lrate = float(self.hp["lrate_init"])
        self.adam_m, self.adam_v = self.xp.zeros(self.dim), self.xp.zeros(self.dim)
        if not 0.0 < self.hp["elite_ratio"] <= 1.0:
            raise ConfigError(f"pgpe: elite_ratio must lie in (0, 1], got {self.hp['elite_ratio']}")
        if self.hp["sigma_rule"] not in SIGMA_RULES:
            raise ConfigError(f"pgpe: sigma_rule must be one of {', '.join(SIGMA_RULES)}, "
                              f"got {self.hp['sigma_rule']!r}")
        if self.hp["sigma_rule"] == "evosax-0.1.4" and 1 < max(1, int(self.popsize // 2 * self.hp["elite_ratio"])) \
                < self.popsize // 2:
            # 0.1.4 broadcasts n_elite sorted scores against all P/2 noise rows: a shape error there
            raise ConfigError("pgpe: sigma_rule evosax-0.1.4 is defined for elite_ratio = 1 (or one elite pair) "
                              "only; evosax 0.1.4 fails on other elite ratios")

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
        if hp["sigma_rule"] == "evosax-0.1.4":
            # r_j = ½(ℓ⁺ + ℓ⁻) of the j-th *ranked* pair − mean elite loss, against the noise of pair j in
            # sampling order; added to σ, so σ climbs the loss (evosax 0.1.4 pgpe.py, tell_strategy). Its
            # ranking is a stable argsort: ties by pair index, whatever ``ties`` says.
            elite = xp.argsort(xp.minimum(loss_plus, loss_minus), kind="stable")[:n_elite]
            avg = 0.5 * (loss_plus[elite] + loss_minus[elite])
            baseline = 0.5 * float((loss_plus[elite] + loss_minus[elite]).sum()) / n_elite
            reward = xp.zeros(pairs)
            reward[:] = avg - baseline  # n_elite == pairs here, or 1 (broadcast to every row)
            sigma_weights = reward / pairs
        else:
            # σ ascends the fitness (= −loss): reward_j = ½(f⁺_j + f⁻_j) − b, b = mean fitness of all members.
            reward = -0.5 * (loss_plus + loss_minus) + loss.mean()
            sigma_weights = kept * reward / n_elite
        # Over the kept pairs, with σ⊙z_j the + member's step: mean gradient = σ ⊙ mean_j ½(f⁺ − f⁻) z_j (loss
        # sign), σ gradient = mean_j r_j ((σ z_j)² − σ²)/σ = σ ⊙ (mean_j r_j z_j²) − σ · mean_j r_j.
        w1, w2 = xp.zeros(self.popsize), xp.zeros(self.popsize)
        w1[0::2] = kept * 0.5 * (loss_plus - loss_minus) / n_elite
        w2[0::2] = sigma_weights
        s1, s2 = self._moments(w1, w2)
        step, self.adam_m, self.adam_v = optimizer_step(hp, self.sigma * s1, self.adam_m, self.adam_v,
                                                        self.updates + 1, self.lrate)
        sigma_grad = self.sigma * s2 - self.sigma * float(sigma_weights.sum())
        change = hp["sigma_max_change"] * xp.abs(self.sigma)
        sigma = xp.clip(self.sigma + hp["sigma_lrate"] * sigma_grad, self.sigma - change, self.sigma + change)
        self._mean = self.mean + step
        self.sigma = xp.maximum(sigma * hp["sigma_decay"], hp["sigma_limit"])
        self.lrate = max(self.lrate * hp["lrate_decay"], hp["lrate_limit"])
