"""What a run costs before it is started: its generations, and its wall time on a 2-core machine, measured where
the exact config was run here, otherwise estimated from measured per-unit costs (``esprune presets``).

The estimate is a model, not a promise: seconds per generation = the work of one generation (env steps, or
member × image evaluations) × a measured cost per unit at the ticket's density, interpolated linearly between
the dense and the sparse measurement (as ``bench generation``'s paper-size estimate does), summed over the
iterations at densities ``keep**k``, plus the test evaluations of the mean. Control episodes are counted at
full length: an upper bound for CartPole, whose episodes end when the pole falls (a fresh policy's last ~20
steps), and exact for Pendulum. The unit costs come from the README's Performance section (this 2-core
machine, numba 0.68), measured with the machine otherwise idle except W3's.
"""
from __future__ import annotations

import hashlib
import json

from . import config as _config

# seconds per unit: (density, seconds) at the dense and a sparse point, and where the figures come from
UNIT_COSTS = {
    "control": {"unit": "env step", "points": ((0.107, 1 / 13.4e6), (1.0, 1 / 9.6e6)),
                "source": "W1-full: the fused CartPole rollout, 4-64-64-2 tanh, 9.6M steps/s dense, 13.4M at "
                          "density 0.107 (2 threads, the machine otherwise idle)"},
    "classify": {"unit": "member × image", "points": ((0.107, 0.281 / (128 * 1024)), (1.0, 1.43 / (128 * 1024))),
                 "source": "W2: the MNIST CNN, P=128, batch 1024, 1.43 s dense, 0.281 s at density 0.107 (2 "
                           "threads, the machine otherwise idle)"},
    "locomotion": {"unit": "env step", "points": ((1.0, 1 / 3.47e3),),
                   "source": "W3: Ant-v5 on C MuJoCo, 3.47k env steps/s (P=256, 8 episodes, a machine loaded "
                             "with other jobs); other bodies taken at Ant's cost"},
}
# Whole runs timed here, keyed by the fingerprint of the config they ran (a preset whose config changes loses its
# measurement and falls back to the estimate): wall seconds of `esprune run --preset NAME` with the kernels
# already compiled, on the 2-core machine (each entry says how loaded it was).
MEASURED: dict[str, float] = {
    "132d928023f7": 7.5,  # the demo preset: 7.09 / 7.49 / 7.85 s (3 runs, the machine otherwise idle, 2026-11-30)
}


def fingerprint(cfg: dict) -> str:
    """12 hex digits identifying a resolved config's work (JSON with sorted keys; the seeds and the backend left
    out: a measurement on 2 CPU cores stands for any seed)."""
    plain = {k: v for k, v in cfg.items() if k not in ("backend", "seed", "init_seed")}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cost(config: dict) -> dict:
    """``{"generations": G × (K + 1), "tickets": K + 1, "seconds": s or None, "how": "measured" | "estimated" |
    reason none}`` for a config (a preset's layer or a full config). Gradient-descent runs count no generations
    and get no estimate."""
    cfg = _config.resolve(config, prepare=False).to_dict()
    K, G = cfg["iterations"], cfg["generations"]
    out = {"tickets": K + 1, "generations": None if cfg["trainer"] == "gd" else G * (K + 1)}
    if cfg["trainer"] == "gd":
        return {**out, "seconds": None, "how": "gradient descent: no ES generations, not estimated"}
    key = fingerprint(cfg)
    if key in MEASURED:
        return {**out, "seconds": MEASURED[key], "how": "measured"}
    seconds = _estimate(cfg)
    if seconds is None:
        return {**out, "seconds": None, "how": "no per-unit cost for this task"}
    return {**out, "seconds": seconds, "how": "estimated"}


def _estimate(cfg: dict) -> float | None:
    from . import tasks

    task = tasks.make(cfg["task"], **cfg["task_options"])
    kind = getattr(task, "kind", None)
    if kind not in UNIT_COSTS:
        return None
    P, G, K, keep, every = cfg["popsize"], cfg["generations"], cfg["iterations"], cfg["keep"], cfg["eval_every"]
    if kind == "classify":
        train, test = P * task.batch_size, 10_000  # the MNIST family's test set, one member
    else:
        train, test = P * task.episodes * task.max_steps, task.test_episodes * task.max_steps
    tests = G // every + 1  # every eval_every generations and after generation 1
    return sum(G * train * _unit(kind, keep**k) + tests * test * _unit(kind, keep**k) for k in range(K + 1))


def _unit(kind: str, density: float) -> float:
    """Seconds per unit at ``density``: linear through the measured points (the only one, when there is one)."""
    points = UNIT_COSTS[kind]["points"]
    if len(points) == 1:
        return points[0][1]
    (d0, t0), (d1, t1) = points[0], points[-1]
    return max(t0 + (t1 - t0) * (density - d0) / (d1 - d0), 0.0)


def clock(seconds: float) -> str:
    """A duration as "45 s", "12 min", "3.4 h" or "5.1 days"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
