"""Running observation normalization, as the paper's code (evojax ``obs_norm.py``) does it.

State: ``steps`` (observations seen), ``mean``, ``var`` (the running sum of squared deviations, Welford-style).
An observation is normalized as ``clip((obs − mean) / sqrt(clip(var / (steps + 1), 1e-6, 1e6)), −5, 5)``;
before any update (all zeros) that maps every observation to ±5 or 0, exactly as evojax's first generation.
After a generation's training rollouts, every observation that fed a policy on a step that did not end its
episode (evojax's ``valid_mask`` after the step) updates the statistics in one batch:

    total = steps + n;  mean' = mean + Σ(o − mean) / total;  var' = var + Σ (o − mean') ⊙ (o − mean)

evojax keeps the buffer and the statistics in float32; esprune accumulates Σ(o − mean) and Σ(o − mean)² in
float64 as the episodes run (Σ (o − mean')(o − mean) = Σ(o − mean)² − (mean' − mean) ⊙ Σ(o − mean)), so no
buffer of every observation is kept. Test episodes only read the statistics.
"""
from __future__ import annotations

import numpy as np

CLIP, VAR_MIN, VAR_MAX = 5.0, 1e-6, 1e6


class ObsNormalizer:
    """Statistics of one observation vector of ``dim`` float64 entries; ``enabled=False`` passes obs through."""

    def __init__(self, dim: int, enabled: bool = True):
        self.dim, self.enabled = int(dim), bool(enabled)
        self.reset()

    def reset(self) -> None:
        """Back to evojax's initial parameters: zero steps, zero mean, zero variance sum."""
        self.steps = 0.0
        self.mean = np.zeros(self.dim)
        self.var = np.zeros(self.dim)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` ``(..., dim)`` float64 → normalized and clipped float32, ready for the policy."""
        if not self.enabled:
            return np.asarray(obs, dtype=np.float32)
        mean, scale = self.moments()
        return np.clip((obs - mean) / scale, -CLIP, CLIP).astype(np.float32)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, sqrt(clip(var / (steps + 1), 1e-6, 1e6)))``, float64 ``(dim,)`` each: what ``normalize``
        subtracts and divides by (the device rollout uploads them once per generation)."""
        return self.mean, np.sqrt(np.clip(self.var / (self.steps + 1.0), VAR_MIN, VAR_MAX))

    def accumulator(self) -> Accumulator:
        """A fresh accumulator of deviations from the current mean, for one generation's rollouts."""
        return Accumulator(self.mean.copy())

    def update(self, acc: Accumulator) -> None:
        """evojax's ``update_obs_params`` with the generation's accumulated deviations."""
        if not self.enabled or acc.count == 0:
            return
        total = self.steps + acc.count
        new_mean = self.mean + acc.sum / total
        self.var = self.var + (acc.sumsq - (new_mean - self.mean) * acc.sum)
        self.mean, self.steps = new_mean, total

    def state_dict(self) -> dict:
        return {"obs_steps": np.float64(self.steps), "obs_mean": self.mean.copy(), "obs_var": self.var.copy()}

    def load_state_dict(self, state: dict) -> None:
        mean, var = np.asarray(state["obs_mean"], dtype=np.float64), np.asarray(state["obs_var"], dtype=np.float64)
        if mean.shape != (self.dim,) or var.shape != (self.dim,):
            raise ValueError(f"normalizer state of shape {mean.shape} does not fit observations of {self.dim}")
        self.steps, self.mean, self.var = float(state["obs_steps"]), mean.copy(), var.copy()


class Accumulator:
    """Σ(o − mean) and Σ(o − mean)² over the counted observations, summed batch by batch in a fixed order."""

    def __init__(self, mean: np.ndarray):
        self.mean, self.count = mean, 0
        self.sum, self.sumsq = np.zeros_like(mean), np.zeros_like(mean)

    def add(self, obs: np.ndarray) -> None:
        if len(obs):
            d = obs - self.mean
            self.sum += d.sum(axis=0)
            self.sumsq += (d * d).sum(axis=0)
            self.count += len(obs)
