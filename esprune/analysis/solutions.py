"""The trained networks of a run file, ready to evaluate: task, network, mask and parameters of an iteration."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import gd, tasks
from ..errors import UserError
from ..params import Layout, Mask
from ..store import RunFile, from_vector


@dataclass
class Solution:
    """Iteration ``k`` of a run: ``full`` is the final (or best) mean over every parameter, pruned entries 0."""

    path: str
    config: dict
    iteration: int
    full: np.ndarray
    mask: Mask
    std_full: np.ndarray | None
    sparsity: float
    task_state: dict | None = None  # a task's own state stored with this solution (observation statistics)

    @cached_property
    def task(self):
        """The run's task; one with state of its own (locomotion's observation statistics) holds the state
        stored with this solution, so that evaluations see the observations the solution was trained on."""
        task = tasks.make(self.config["task"], **self.config["task_options"])
        if self.task_state and hasattr(task, "load_state_dict"):
            task.load_state_dict(self.task_state)
        return task

    @cached_property
    def net(self):
        return gd.network(self.task, self.config)  # the network the run trained

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.net.spec, self.mask)

    @property
    def theta(self) -> np.ndarray:
        """The active parameters (the space the ES searched), float64."""
        return self.layout.flatten(from_vector(self.net.spec, self.full.astype(np.float64)))

    @property
    def trainer(self) -> str:
        return "gd" if self.config.get("trainer", "es") == "gd" else self.config["strategy"]

    @property
    def label(self) -> str:
        return f"{self.path}@{self.iteration}"


def finished_iterations(path) -> list[int]:
    return [row["iteration"] for row in RunFile.open(path).summary()]


def load(path, iteration: int, which: str = "final") -> Solution:
    """Iteration ``iteration``'s trained mean (``which``: final or best) of the run file at ``path``."""
    run = RunFile.open(path)
    done = finished_iterations(path)
    if iteration not in done:
        raise UserError(f"{path} has no finished iteration {iteration} (finished: {_ranges(done)})")
    it = run.iteration(iteration)
    spec = run.spec
    full_mask = from_vector(spec, it["mask"].astype(bool))
    mask = Mask({n: full_mask[n] for n in spec.prunable_names}, spec)
    std = it.get(f"{which}_std")
    prefix = f"{which}_task_"
    state = {k[len(prefix):]: v for k, v in it.items() if k.startswith(prefix)} or None
    return Solution(str(path), run.config, iteration, np.asarray(it[f"{which}_mean"], dtype=np.float64), mask,
                    None if std is None else np.asarray(std, dtype=np.float64), mask.sparsity(), state)


def _ranges(values) -> str:
    return ", ".join(map(str, values)) if values else "none"
