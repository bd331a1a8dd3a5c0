"""Supervised training of a masked classifier by minibatch gradient descent (the paper's GD baseline)."""
from __future__ import annotations

import numpy as np

from ..errors import bounded
from . import optim
from .objective import Objective
from .trainer import TrainResult


class Supervised:
    """``epochs`` passes over the training set in seeded shuffled minibatches; test accuracy after each epoch.

    Defaults are PAPER.md's: Adam, lr 3e-4, batch 128, 2 epochs per IMP iteration.
    """

    def __init__(self, epochs: int = 2, lr: float = 3e-4, batch_size: int = 128, optimizer: str = "adam",
                 momentum: float = 0.9):
        bounded("epochs", epochs, 10_000)  # far above any real use (paper: 2, the ES → GD transfer 20)
        bounded("batch_size", batch_size, 1_000_000)  # the tasks' bound on their batch_size
        optim.make(optimizer, 1, lr, **({"momentum": momentum} if optimizer == "sgd" else {}))  # checks both
        self.epochs, self.lr, self.batch_size = int(epochs), float(lr), int(batch_size)
        self.optimizer, self.momentum = optimizer, float(momentum)

    def budget(self, task) -> int:
        """Optimizer steps in a whole run (for progress bars)."""
        n = len(task.prepare()[0])
        return self.epochs * -(-n // self.batch_size)

    def train(self, task, net, layout, theta, seed: int, backend="numba", progress=None) -> TrainResult:
        xtr, ytr, _, _ = task.prepare()
        opt = optim.make(self.optimizer, layout.dim, self.lr,
                         **({"momentum": self.momentum} if self.optimizer == "sgd" else {}))
        theta = np.asarray(theta, dtype=np.float32).copy()
        result = TrainResult(theta, theta, -np.inf, -1)
        total, step = self.budget(task), 0
        for epoch in range(self.epochs):
            order = np.random.default_rng([seed, 0x6D, epoch]).permutation(len(xtr))
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                loss, grad = Objective(net, layout, xtr[idx], ytr[idx]).value_and_grad(theta)
                theta = opt.step(theta, grad)
                step += 1
                result.train.append((-loss, -loss))
                if progress:
                    progress(step, total, result.best_score)
            score = float(task.score(net, layout, theta[None], seed=seed, backend=backend)[0])
            result.evals.append((step, score))
            if score > result.best_score:
                result.best, result.best_score, result.best_step = theta.copy(), score, step
            if progress:
                progress(step, total, result.best_score)
        result.final, result.steps = theta, step
        return result
