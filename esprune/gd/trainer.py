"""What every gradient-descent trainer returns (``gd.make_trainer`` picks the trainer)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainResult:
    """A trained ticket in the shape an ES iteration stores: flat vectors over the layout's active parameters.

    ``train`` rows are (mean, max) fitness per logged step, as for ES: −batch loss per optimizer step for
    supervised training, mean and max episode return per PPO update. ``evals`` rows are (step, test score).
    """

    final: np.ndarray
    best: np.ndarray
    best_score: float
    best_step: int
    train: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    steps: int = 0
