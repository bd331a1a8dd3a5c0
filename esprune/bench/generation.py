"""Whole ES generations (ask → evaluate → tell): the ``generation`` suite of ``esprune bench``.

Workloads (fixed; README, "Performance"):
- W1: CartPole-v1, policy 4→64→64→2 tanh, Sep-CMA-ES, P=100, 8 episodes of up to 500 steps, from the paper's
  init. Episodes end when the pole falls, so the work per generation is the policy's: it grows as the policy
  learns, and the seconds per generation swing with it. The row therefore also reports the env steps taken and
  the per-step rates (steps/s, GFLOP/s over the steps taken), which are what stays comparable.
- W1-full: the same network holding a linear controller that balances CartPole (weights outside the controller
  small), searched with a small σ, so every episode runs the full 500 steps: constant work per generation, the
  stable row to compare runs and machines on.
- W2: the paper's MNIST CNN, SNES, P=128, batch 1024 of synthetic 28×28 images (the ``blobs`` task, so no
  download is needed; the arithmetic is that of MNIST).
- W3: Ant-v5 on MuJoCo, Sep-CMA-ES, P=256, 8 episodes, beside the physics' raw batched stepping rate of the
  same worlds (``bench.locomotion``; needs the mujoco extra, and gpu-physics for MuJoCo Warp; only when asked
  for; dense only).
Each at density 1.0 and at the density of IMP iteration 10 (0.8**10 ≈ 0.107), W2 also at 0.05, on every usable
backend. FLOPs count 2 × active weights per member and env step (W1), or 2 × active multiply-adds per image
(W2): biases, activations, pooling and the environment are not counted.
"""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from .. import strategies, tasks
from ..params import Layout
from .common import backends_to_measure, machine, macs, peaks_of, random_mask, render_peaks, table, timeit

# key: (name, task, task options, strategy, hyperparameters, P, densities, full_length)
WORKLOADS = {
    "W1": ("CartPole-v1 4-64-64-2 sep_cma_es P=100 E=8", "CartPole-v1", {}, "sep_cma_es",
           {"sigma_init": 0.1, "elite_ratio": 0.5}, 100, (1.0, 0.8**10), False),
    "W1-full": ("CartPole-v1 balancing, 500-step episodes", "CartPole-v1", {}, "sep_cma_es",
                {"sigma_init": 0.002, "elite_ratio": 0.5}, 100, (1.0, 0.8**10), True),
    "W2": ("MNIST CNN 8-16-10 snes P=128 B=1024", "blobs", {"batch_size": 1024}, "snes",
           {"sigma_init": 0.025, "temperature": 12.0}, 128, (1.0, 0.8**10, 0.05), False),
}
# gains on (x, ẋ, θ, θ̇) of a linear controller that keeps CartPole-v1 up for 500 steps from every reset
CONTROLLER = np.array([0.1, 0.5, 3.0, 1.0], dtype=np.float32)


def generation(backends=None, repeats: int = 5, workloads=("W1", "W1-full", "W2"), progress=None,
               densities=None, physics: str = "auto") -> dict:
    """Seconds per generation (median over ``repeats`` generations after one warm-up generation), per env step
    or image, and GFLOP/s against the matmul peak measured in the same run."""
    bes = backends_to_measure(backends or [n for n in ("numba", "cupy") if _backend.probe()[n][0]])
    peaks = peaks_of(bes)
    # W3 (Ant on MuJoCo) is physics-bound: the policy's density changes nothing measurable, so dense only
    jobs = [(w, be, d) for w in workloads for be in bes
            for d in ((1.0,) if w == "W3" else (densities or WORKLOADS[w][6]))]
    rows = []
    for n, (key, be, density) in enumerate(jobs):
        if key == "W3":
            from .locomotion import w3_row

            rows.append(w3_row(be, density, repeats, physics=physics))
        else:
            rows.append(_row(key, be, density, repeats, peaks))
        if progress:
            progress(n + 1, len(jobs), rows[-1])
    _ratios(rows)
    return {"machine": machine(), "peak": peaks, "rows": rows, "paper_mnist_imp": _paper_estimate(rows)}


def _row(key, be, density, repeats, peaks) -> dict:
    name, task_name, options, strategy, hparams, P, _, full_length = WORKLOADS[key]
    task = tasks.make(task_name, **options)
    net = task.default_net()
    mask = random_mask(net.spec, density)
    params = {k: v.astype(np.float64) for k, v in net.init(0).items()}
    if full_length:
        mask, params = balancing_policy(net, mask)
    layout = Layout(net.spec, mask)
    es = strategies.make(strategy, layout.dim, P, seed=0, backend=be, **hparams)
    es.mean = layout.flatten(params)
    work = []  # env steps (control) or images per timed generation

    def one_generation():
        g = es.generation
        fitness = task.evaluate(net, layout, es.ask(), seed=0, generation=g, backend=be)
        es.tell(fitness)
        # CartPole's return is its step count
        work.append(float(np.sum(fitness)) * task.episodes if task.kind == "control" else P * task.batch_size)

    t = timeit(one_generation, repeats, be)
    work = work[1:]  # the warm-up generation is not timed
    row = {"suite": "generation", "workload": f"{key} {name}", "backend": be.name, "density": density,
           "active_weights": layout.mask.kept, "dim": layout.dim, **t}
    if task.kind == "control":  # the work differs between generations: rates are medians of per-generation rates
        rate = float(np.median([w / s for w, s in zip(work, t["times_s"])]))
        row.update(env_steps=float(np.median(work)), env_steps_min=min(work), env_steps_max=max(work),
                   steps_per_s=rate, ns_per_step=1e9 / rate, gflops=2.0 * layout.mask.kept * rate / 1e9)
    else:
        row.update(images=work[0], gflops=2.0 * work[0] * macs(net, layout.mask) / t["median_s"] / 1e9)
    peak = peaks.get(be.name)
    if peak:
        row["frac_peak"] = row["gflops"] / peak["gflops"]
    return row


def balancing_policy(net, mask):
    """(mask, params) of a 4→64→64→2 tanh policy that balances CartPole: unit 0 of each hidden layer carries
    tanh(0.1 · CONTROLLER · obs), the outputs are ∓ that unit, every other weight is the init scaled by 0.01 (so
    it barely moves the decision) and the controller's weights are kept in the mask."""
    params = {k: 0.01 * v.astype(np.float64) for k, v in net.init(0).items()}
    params["dense_0/w"][:, 0] = 0.1 * CONTROLLER
    params["dense_0/b"][0] = 0.0
    params["dense_1/w"][:, 0] = 0.0
    params["dense_1/w"][0, 0], params["dense_1/b"][0] = 1.0, 0.0
    params["dense_2/w"][0] = (-1.0, 1.0)
    keep = {k: np.array(v) for k, v in mask.items()}
    keep["dense_0/w"][:, 0] = True
    keep["dense_1/w"][0, 0] = True
    keep["dense_2/w"][0] = True
    return type(mask)(keep, net.spec), params


def _paper_estimate(rows) -> dict:
    """Hours of the paper's MNIST IMP run (iterations k = 0..20 at density 0.8**k, 4000 generations each) at
    the measured W2 rates: seconds per generation taken as a + b·density through the densest and the sparsest
    measured points."""
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


def _ratios(rows) -> None:
    """dense over sparse seconds at the same workload, and GPU over numba."""
    by = {(r["workload"], r["backend"], r["density"]): r for r in rows}
    for r in rows:
        dense = by.get((r["workload"], r["backend"], 1.0))
        if dense and r["density"] < 1.0:
            r["speedup_vs_dense"] = dense["median_s"] / r["median_s"]
        cpu = by.get((r["workload"], "numba", r["density"]))
        if cpu and r["backend"] == "cupy":
            r["speedup_vs_numba"] = cpu["median_s"] / r["median_s"]


def _rate(r) -> str:
    if "steps_per_s" in r:  # W3's physics-bound rates are thousands, not millions
        rate = r["steps_per_s"]
        return f"{rate / 1e6:.2f}M steps/s" if rate >= 1e5 else f"{rate / 1e3:.2f}k steps/s"
    return f"{r['images'] / r['median_s']:.0f} img/s"


COLUMNS = [("workload", 50, "workload", ""), ("backend", 8, "backend", ""), ("density", 8, "density", ".3f"),
           ("median s", 10, "median_s", ".4f"), ("min s", 9, "min_s", ".4f"), ("max s", 9, "max_s", ".4f"),
           ("rate", 18, _rate, ">"), ("GF/s", 8, "gflops", ".1f"),
           ("%peak", 7, lambda r: 100 * r["frac_peak"] if "frac_peak" in r else None, ".1f"),
           ("sp/dense", 9, "speedup_vs_dense", ".2f"), ("gpu/cpu", 8, "speedup_vs_numba", ".1f")]


def render(result: dict) -> str:
    estimate = [f"paper-size MNIST IMP (21 iterations × 4000 generations) on {b}: ~{e['hours']:.1f} h ({e['model']})"
                for b, e in result.get("paper_mnist_imp", {}).items()]
    from .locomotion import render_floor

    return "\n".join(render_peaks(result) + [table(result["rows"], COLUMNS)] + render_floor(result["rows"])
                     + estimate)
