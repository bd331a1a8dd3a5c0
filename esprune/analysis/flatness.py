"""Flatness of a solution: top Hessian eigenvalues and trace of the training loss over its active parameters,
and a black-box sharpness profile.

Curvature uses the GD reference's exact Hessian-vector products (Pearlmutter's R-operator through the numpy
backprop, ``Objective.hvp``) inside a scipy ``LinearOperator``: Lanczos (``eigsh``) for the top eigenvalues,
Hutchinson's estimator for the trace. Both need a supervised loss, so they exist for classification tasks only.
The sharpness profile needs no gradient: the mean loss increase when every active parameter is perturbed by
N(0, r²) (the ES's own kind of noise), from antithetic pairs ±rε so that the gradient term cancels, evaluated
for all perturbations at once as one population; it works for every task.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from .. import backend as _backend
from ..gd.objective import Objective
from ..nets import cross_entropy
from .solutions import Solution

RADII = (0.001, 0.003, 0.01, 0.03, 0.1)
BATCH_SEED = 0  # the fixed batch every classification solution is measured on (task.batch's seeded permutation)


def top_eigenvalues(hvp, dim: int, k: int = 3, tol: float = 1e-6, seed: int = 0) -> np.ndarray:
    """The ``k`` algebraically largest eigenvalues (descending) of the symmetric operator ``v ↦ hvp(v)``."""
    k = min(int(k), dim - 1)
    op = LinearOperator((dim, dim), matvec=lambda v: hvp(np.asarray(v, np.float64).reshape(-1)), dtype=np.float64)
    v0 = np.random.default_rng([seed, 0xE16]).standard_normal(dim)
    values = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(values)[::-1]


def hutchinson_trace(hvp, dim: int, probes: int = 20, seed: int = 0) -> tuple[float, float]:
    """tr(H) ≈ mean of zᵀHz over Rademacher z, with its standard error (sample std / √probes)."""
    rng = np.random.default_rng([seed, 0x7ACE])
    samples = np.array([z @ hvp(z) for z in rng.choice([-1.0, 1.0], size=(int(probes), dim))])
    stderr = float(samples.std(ddof=1) / np.sqrt(len(samples))) if len(samples) > 1 else float("nan")
    return float(samples.mean()), stderr


def sharpness(loss, theta, radii=RADII, samples: int = 32, seed: int = 0) -> list[dict]:
    """Mean and std over ε ~ N(0, I) of the rise (L(θ + rε) + L(θ − rε)) / 2 − L(θ), per radius r.

    ``loss`` maps a population ``(P, d)`` to losses ``(P,)``; each radius evaluates one population of
    2·``samples`` members (the antithetic pairs). Within a pair the first-order term r·∇Lᵀε cancels, so each
    rise is ½r²·εᵀHε + O(r⁴) and the mean estimates ½r²·tr(H); a one-sided L(θ + rε) − L(θ) carries r·∇Lᵀε,
    whose sample mean has std r·|∇L|/√samples and swamps the curvature at small r away from a minimum.
    """
    rng = np.random.default_rng([seed, 0x5A4])
    base = float(loss(theta[None])[0])
    n = int(samples)
    out = []
    for r in radii:
        step = r * rng.standard_normal((n, theta.size))
        values = np.asarray(loss(np.concatenate([theta[None] + step, theta[None] - step])), np.float64)
        rise = 0.5 * (values[:n] + values[n:]) - base
        out.append({"radius": float(r), "mean_increase": float(rise.mean()), "std_increase": float(rise.std())})
    return out


def analyze(sol: Solution, top_k: int = 3, probes: int = 20, batch: int = 512, radii=RADII, samples: int = 32,
            backend: str = "numba") -> dict:
    """Curvature (classification) and the sharpness profile of one solution.

    Classification: the loss, the Hessian and the sharpness profile are all of the mean cross-entropy on one
    fixed batch of ``batch`` training images (``BATCH_SEED``'s, the same for every solution whatever its run's
    seed or batch size), so that solutions of ES and GD runs, of any seed, are measured on the same data: a
    smaller batch alone raises the top eigenvalue of its empirical Hessian. Control tasks: the loss is minus the
    return of the run's own training episodes (seeded by the run's seed), and no Hessian."""
    task, net, layout, theta = sol.task, sol.net, sol.layout, sol.theta
    seed = int(sol.config["seed"])
    result = {"run": sol.path, "iteration": sol.iteration, "trainer": sol.trainer, "sparsity": sol.sparsity,
              "active": layout.dim}
    if task.kind == "classify":
        xtr, ytr, _, _ = task.prepare()
        idx = task.batch(BATCH_SEED, 0, size=batch)
        be = _backend.get(backend)
        x, y = be.asarray(xtr[idx]), be.asarray(ytr[idx])

        def loss(pop):
            return be.to_numpy(cross_entropy(net.forward(layout, pop.astype(np.float32), x, backend=be), y))
    else:
        def loss(pop):
            return -task.evaluate(net, layout, pop.astype(np.float32), seed=seed, generation=0, backend=backend)

    result["loss"] = float(loss(theta[None])[0])
    result["sharpness"] = sharpness(loss, theta, radii, samples, seed)
    if task.kind == "classify":
        obj = Objective(net, layout, xtr[idx], ytr[idx])
        result["eigenvalues"] = top_eigenvalues(lambda v: obj.hvp(theta, v), layout.dim, top_k, seed=seed).tolist()
        result["trace"], result["trace_stderr"] = hutchinson_trace(lambda v: obj.hvp(theta, v), layout.dim,
                                                                   probes, seed)
        result["hessian_batch"] = int(len(idx))
    else:
        result["eigenvalues"], result["trace"], result["trace_stderr"] = None, None, None
        result["note"] = "Hessian needs a supervised loss: control tasks get the sharpness profile only"
    return result


def rows(results) -> list[dict]:
    names = run_names([r["run"] for r in results])
    out = []
    for r in results:
        row = {k: r[k] for k in ("iteration", "trainer", "sparsity", "active", "loss", "trace", "trace_stderr")}
        row["run"] = names[r["run"]]
        row["lambda_max"] = r["eigenvalues"][0] if r["eigenvalues"] else None
        for s in r["sharpness"]:
            row[f"rise@{s['radius']:g}"] = s["mean_increase"]
        out.append(row)
    return out


def run_names(paths) -> dict:
    """Each run file's shortest distinguishing name for a table: its file name, or its parent folder too when
    two runs share a file name (seed=0__prune=snr.h5 of two sweeps)."""
    paths = list(dict.fromkeys(paths))
    names = {p: Path(p).name for p in paths}
    if len(set(names.values())) < len(paths):
        names = {p: str(Path(Path(p).parent.name) / Path(p).name) for p in paths}
    return names


def columns(results):
    several = len({r["run"] for r in results}) > 1
    base = ([("run", "run", "{}")] if several else []) + [
        ("iteration", "iter", "{:d}"), ("trainer", "trainer", "{}"), ("sparsity", "sparsity", "{:.4f}"),
        ("active", "active", "{:d}"), ("loss", "loss", "{:.4g}"), ("lambda_max", "λmax", "{:.4g}"),
        ("trace", "trace", "{:.4g}"), ("trace_stderr", "±", "{:.2g}")]
    radii = [s["radius"] for s in results[0]["sharpness"]] if results else []
    return base + [(f"rise@{r:g}", f"Δloss r={r:g}", "{:.3g}") for r in radii]


def figure(results, out, plt) -> None:
    fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    by_run = {}
    for r in results:
        by_run.setdefault((r["run"], r["trainer"]), []).append(r)
    for (run, trainer), rs in by_run.items():
        density = [100 * (1 - r["sparsity"]) for r in rs]
        if rs[0]["eigenvalues"]:
            ax_e.plot(density, [r["eigenvalues"][0] for r in rs], marker="o", label=f"{trainer}: {run}")
        for r in rs:
            ax_s.plot([s["radius"] for s in r["sharpness"]], [s["mean_increase"] for s in r["sharpness"]],
                      marker="o", ms=3, label=f"{trainer} it {r['iteration']}")
    ax_e.set_xscale("log")
    ticks = sorted({100 * (1 - r["sparsity"]) for r in results})
    ax_e.set_xticks(ticks, [f"{t:.3g}" for t in ticks])  # the measured densities, not log decades
    ax_e.xaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    ax_e.invert_xaxis()
    ax_e.set_xlabel("weights remaining (%)")
    ax_e.set_ylabel("top Hessian eigenvalue")
    ax_s.set_xscale("log")
    ax_s.set_xlabel("perturbation std r")
    ax_s.set_ylabel("mean loss increase")
    for ax in (ax_e, ax_s):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
