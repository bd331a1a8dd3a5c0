"""The ``tasks`` suite of ``esprune bench``: CartPole-v1 environment steps per second, the Python-stepped numpy
reference against the fused rollout (``ops/rollout.py``)."""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from .. import tasks
from ..params import Layout
from .common import machine, render_peaks, table, timeit


def task_rollouts(repeats: int = 5, progress=None) -> dict:
    """CartPole-v1 steps/s with the paper's 4→64→64→2 tanh policy, P=100, 8 episodes of up to 500 steps:
    the Python-stepped numpy reference against the fused numba rollout (CartPole's return = its step count)."""
    task = tasks.make("CartPole-v1")
    net = task.default_net()
    layout = Layout(net.spec)
    rng = np.random.default_rng(0)
    pop = layout.flatten(net.init(0))[None] + 0.1 * rng.standard_normal((100, layout.dim), np.float32)
    rows = []
    for n, name in enumerate(("numpy", "numba")):
        be = _backend.get(name)
        steps = float(task.evaluate(net, layout, pop, seed=0, backend=be).sum() * task.episodes)
        t = timeit(lambda: task.evaluate(net, layout, pop, seed=0, backend=be), repeats, be)
        rows.append({"suite": "tasks", "workload": "CartPole-v1 4-64-64-2 P=100 E=8", "backend": name,
                     "path": "reference" if name == "numpy" else "fused", "steps": steps, **t,
                     "steps_per_s": steps / t["median_s"]})
        if progress:
            progress(n + 1, 2, rows[-1])
    rows[1]["speedup_vs_reference"] = rows[0]["median_s"] / rows[1]["median_s"]
    return {"machine": machine(), "peak": {}, "rows": rows}


COLUMNS = [("workload", 34, "workload", ""), ("backend", 8, "backend", ""), ("path", 10, "path", ""),
           ("steps", 9, "steps", ".0f"), ("median s", 10, "median_s", ".4f"), ("steps/s", 12, "steps_per_s", ".0f"),
           ("vs ref", 8, "speedup_vs_reference", ".1f")]


def render(result: dict) -> str:
    return "\n".join(render_peaks(result) + [table(result["rows"], COLUMNS)])
