"""Whole ES generations (ask → evaluate → tell) and a short IMP run: the ``generation`` and ``imp`` suites of
``esprune bench``.

Workloads (fixed; README, "Performance"):
- W1: CartPole-v1, policy 4→64→64→2 tanh, Sep-CMA-ES, P=100, 8 episodes of up to 500 steps. Episodes end
  when the pole falls, so the work depends on the policy (here: the init plus search noise); rows report the
  environment steps taken and steps/s beside the seconds.
- W2: the paper's MNIST CNN, SNES, P=128, batch 1024 of synthetic 28×28 images (the ``blobs`` task, so no
  download is needed; the arithmetic is that of MNIST).
- W3: Ant-v5 on MuJoCo, Sep-CMA-ES, P=256, 8 episodes, beside MuJoCo's raw batched stepping rate of the same
  worlds (``bench_locomotion``; needs the mujoco extra; only when asked for).
Each at density 1.0 and at the density of IMP iteration 10 (0.8**10 ≈ 0.107), on every usable backend.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from . import strategies, tasks
from .bench import _macs, backends_to_measure, machine, optional, peaks_of, random_mask, render_peaks, timeit
from .params import Layout

DENSITIES = (1.0, 0.8**10)
WORKLOADS = {
    "W1": ("CartPole-v1 4-64-64-2 sep_cma_es P=100 E=8", "CartPole-v1", {}, "sep_cma_es",
           {"sigma_init": 0.1, "elite_ratio": 0.5}, 100),
    "W2": ("MNIST CNN 8-16-10 snes P=128 B=1024", "blobs", {"batch_size": 1024}, "snes",
           {"sigma_init": 0.025, "temperature": 12.0}, 128),
}


def generation(backends=None, densities=DENSITIES, repeats: int = 3, workloads=("W1", "W2"), progress=None) -> dict:
    """Seconds per generation (median over ``repeats`` generations after one warm-up generation)."""
    bes = backends_to_measure(backends or [n for n in ("numba", "cupy") if _usable(n)])
    peaks = peaks_of(bes)
    # W3 (Ant on MuJoCo) is physics-bound: the policy's density changes nothing measurable, so dense only
    jobs = [(w, be, d) for w in workloads for be in bes for d in densities if w != "W3" or d == 1.0]
    rows = []
    for n, (key, be, density) in enumerate(jobs):
        if key == "W3":
            from .bench_locomotion import w3_row

            rows.append(w3_row(be, density, repeats))
            if progress:
                progress(n + 1, len(jobs), rows[-1])
            continue
        name, task_name, options, strategy, hparams, P = WORKLOADS[key]
        task = tasks.make(task_name, **options)
        net = task.default_net()
        layout = Layout(net.spec, random_mask(net.spec, density))
        es = strategies.make(strategy, layout.dim, P, seed=0, backend=be, **hparams)
        es.mean = layout.flatten({k: v.astype(np.float64) for k, v in net.init(0).items()})
        state = {"g": 0, "fitness": None}

        def one_generation():
            pop = es.ask()
            state["fitness"] = task.evaluate(net, layout, pop, seed=0, generation=state["g"], backend=be)
            es.tell(state["fitness"])
            state["g"] += 1

        t = timeit(one_generation, repeats, be)
        row = {"suite": "generation", "workload": f"{key} {name}", "backend": be.name, "density": density,
               "active_weights": layout.mask.kept, "dim": layout.dim, **t}
        if task.kind == "control":
            steps = float(np.sum(state["fitness"]) * task.episodes)  # CartPole's return is its step count
            row.update(env_steps=steps, steps_per_s=steps / t["median_s"])
        else:
            flops = 2.0 * P * task.batch_size * _macs(net, layout.mask)
            row.update(gflops=flops / t["median_s"] / 1e9, frac_peak=flops / t["median_s"] / 1e9 /
                       peaks[be.name]["gflops"])
        rows.append(row)
        if progress:
            progress(n + 1, len(jobs), row)
    _ratios(rows)
    return {"machine": machine(), "peak": peaks, "rows": rows, "paper_mnist_imp": _paper_estimate(rows)}


def _paper_estimate(rows) -> dict:
    """Hours of the paper's MNIST IMP run (iterations k = 0..20 at density 0.8**k, 4000 generations each) at
    the measured W2 rates: seconds per generation taken as a + b·density through the two measured points."""
    out = {}
    for backend in {r["backend"] for r in rows}:
        w2 = {r["density"]: r["median_s"] for r in rows if r["backend"] == backend and r["workload"].startswith("W2")}
        if len(w2) < 2:
            continue
        (d0, t0), (d1, t1) = sorted(w2.items())[:1] + sorted(w2.items())[-1:]
        slope = (t1 - t0) / (d1 - d0)
        seconds = sum(4000 * max(t0 + slope * (0.8**k - d0), 0.0) for k in range(21))
        out[backend] = {"hours": seconds / 3600, "model": f"{t0 - slope * d0:.3g} + {slope:.3g}·density s/generation"}
    return out


def imp(repeats: int = 1, progress=None) -> dict:
    """The demo preset cut to 3 iterations: seconds per iteration and per generation of the whole loop
    (evaluation of the mean, checkpoints and the pruning included)."""
    from . import config, presets
    from .imp import Experiment

    cfg = config.resolve(presets.get("demo"), {"iterations": 2})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            start = time.perf_counter()
            out = Experiment.start(cfg, Path(tmp) / f"imp{r}.h5").execute()
            total = time.perf_counter() - start
            rows.append({"suite": "imp", "workload": "demo preset, 3 iterations", "backend": cfg["backend"],
                         "seconds": total, "iteration_seconds": [row["seconds"] for row in out],
                         "seconds_per_generation": total / (len(out) * cfg["generations"])})
            if progress:
                progress(r + 1, repeats, rows[-1])
    return {"machine": machine(), "peak": {}, "rows": rows}


def _usable(name) -> bool:
    from . import backend

    return backend.probe()[name][0]


def _ratios(rows) -> None:
    """sparse (IMP iteration 10) over dense, and GPU over numba, at the same workload."""
    by = {(r["workload"], r["backend"], r["density"]): r for r in rows}
    for r in rows:
        dense = by.get((r["workload"], r["backend"], 1.0))
        if dense and r["density"] < 1.0:
            r["speedup_vs_dense"] = dense["median_s"] / r["median_s"]
        cpu = by.get((r["workload"], "numba", r["density"]))
        if cpu and r["backend"] == "cupy":
            r["speedup_vs_numba"] = cpu["median_s"] / r["median_s"]


def render(result: dict) -> str:
    lines = render_peaks(result)
    head = (f"{'workload':<48}{'backend':<8}{'density':>8}{'median s':>10}{'min s':>9}{'max s':>9}"
            f"{'rate':>18}{'%peak':>7}{'sp/dense':>9}{'gpu/cpu':>8}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        rate = f"{r['steps_per_s']:.3g} steps/s" if "steps_per_s" in r else f"{r['gflops']:.1f} GF/s"
        peak = optional(r, "frac_peak", ".1f", scale=100)
        sp, gpu = optional(r, "speedup_vs_dense", ".2f"), optional(r, "speedup_vs_numba", ".1f")
        lines.append(f"{r['workload']:<48}{r['backend']:<8}{r['density']:>8.3f}{r['median_s']:>10.3f}"
                     f"{r['min_s']:>9.3f}{r['max_s']:>9.3f}{rate:>18}{peak:>7}{sp:>9}{gpu:>8}")
    from .bench_locomotion import render_floor

    return "\n".join(lines + render_floor(result["rows"]) + render_estimate(result))


def render_estimate(result: dict) -> list[str]:
    return [f"paper-size MNIST IMP (21 iterations × 4000 generations) on {b}: ~{e['hours']:.1f} h ({e['model']})"
            for b, e in result.get("paper_mnist_imp", {}).items()]


def render_imp(result: dict) -> str:
    return "\n".join(f"{r['workload']}: {r['seconds']:.1f} s ({', '.join(f'{s:.1f}' for s in r['iteration_seconds'])} "
                     f"s per iteration), {1000 * r['seconds_per_generation']:.1f} ms per generation"
                     for r in result["rows"])
