"""The ``forward`` suite of ``esprune bench``: population forward passes of the paper's control MLP, a wide
MLP and the paper's MNIST CNN, dense and sparse paths per density, against the matmul peak of the same run."""
from __future__ import annotations

import numpy as np

from ..nets import MLP, mnist_cnn
from ..params import Layout, Mask
from .common import backends_to_measure, machine, macs, peaks_of, random_mask, render_peaks, table, timeit

DENSITIES = (1.0, 0.8, 0.5, 0.2, 0.05, 0.01)  # 0.8: IMP iteration 1

# (name, network factory, population P, batch B): the paper's control policy, a wide MNIST-sized MLP and the
# paper's MNIST CNN at its ES setting (P = 128, B = 1024; no numpy reference row, it would take minutes).
WORKLOADS = (
    ("mlp-control 4-64-64-2", lambda: MLP(4, (64, 64), 2), 100, 8),
    ("mlp-wide 784-256-256-10", lambda: MLP(784, (256, 256), 10), 128, 1024),
    ("cnn-mnist 8-16-10", mnist_cnn, 128, 1024),
)


def forward(backends=None, densities=DENSITIES, repeats: int = 5, progress=None, workloads=None) -> dict:
    """Population forward passes of the workloads (names starting with any of ``workloads``; default all) at
    each density, per backend and kernel path."""
    bes = backends_to_measure(backends)
    peaks = peaks_of(bes)
    chosen = [w for w in WORKLOADS if not workloads or any(w[0].startswith(p) for p in workloads)]
    jobs = [(w, be, d, path) for w in chosen for be in bes for d in densities
            for path in (("reference",) if be.name == "numpy" else ("dense", "sparse"))
            if not (be.name == "numpy" and w[0].startswith("cnn"))]
    rows = []
    for n, (workload, be, density, path) in enumerate(jobs):
        name, factory, P, B = workload
        net = factory()
        layout, pop, x, active, flops_active, flops_dense = _workload_inputs(net, density, path, P, B, be)
        sparse_below = 2.0 if path == "sparse" else 0.0
        reps = max(1, repeats // 2) if path == "reference" else repeats
        t = timeit(lambda: net.forward(layout, pop, x, backend=be, sparse_below=sparse_below), reps, be)
        peak = peaks.get(be.name, peaks.get("numba"))
        row = {"suite": "forward", "workload": name, "backend": be.name, "path": path, "density": density,
               "P": P, "B": B, "active_weights": active, **t,
               "gflops_active": flops_active / t["median_s"] / 1e9,
               "gflops_dense_equiv": flops_dense / t["median_s"] / 1e9}
        if peak:
            row["frac_peak"] = row["gflops_active"] / peak["gflops"]
        rows.append(row)
        if progress:
            progress(n + 1, len(jobs), row)
    _add_ratios(rows)
    return {"machine": machine(), "peak": peaks, "rows": rows}


def _workload_inputs(net, density, path, P, B, be):
    """Layout, population, inputs, active weights and FLOPs (active taps; dense equivalent) of one row.

    A CNN's "dense" row runs the masked network as a dense one (every tap computed, pruned ones zero): what an
    implementation without a sparse path pays at that density."""
    mask = random_mask(net.spec, density)
    rng = np.random.default_rng(1)
    params = net.init(0)
    cnn = not isinstance(net, MLP)
    if cnn and path == "dense":
        params = {n: (v * mask[n] if n in mask else v) for n, v in params.items()}
        layout = Layout(net.spec)
    else:
        layout = Layout(net.spec, mask)
    pop = layout.flatten(params)[None] + 0.01 * rng.standard_normal((P, layout.dim), np.float32)
    in_shape = net.in_shape if cnn else (net.sizes[0],)
    x = rng.standard_normal((B, *in_shape), dtype=np.float32)
    macs_active, macs_dense = macs(net, mask), macs(net, Mask.dense(net.spec))
    return layout, be.asarray(pop), be.asarray(x), mask.kept, 2.0 * P * B * macs_active, 2.0 * P * B * macs_dense


def _add_ratios(rows) -> None:
    """sparse/dense speed-up at the same density, and numba (best path) over the numpy reference."""
    by = {(r["workload"], r["backend"], r["path"], r["density"]): r for r in rows}
    for r in rows:
        key = (r["workload"], r["backend"])
        if r["path"] == "sparse" and (key + ("dense", r["density"])) in by:
            r["speedup_vs_dense"] = by[key + ("dense", r["density"])]["median_s"] / r["median_s"]
        ref = by.get((r["workload"], "numpy", "reference", r["density"]))
        if ref and r["backend"] != "numpy":
            r["speedup_vs_reference"] = ref["median_s"] / r["median_s"]


COLUMNS = [("workload", 26, "workload", ""), ("backend", 8, "backend", ""), ("path", 10, "path", ""),
           ("density", 8, "density", ".2f"), ("median s", 11, "median_s", ".2e"), ("min s", 10, "min_s", ".2e"),
           ("max s", 10, "max_s", ".2e"), ("GF/s act", 10, "gflops_active", ".2f"),
           ("GF/s dense", 11, "gflops_dense_equiv", ".2f"),
           ("%peak", 7, lambda r: 100 * r["frac_peak"] if "frac_peak" in r else None, ".1f"),
           ("sp/dense", 9, "speedup_vs_dense", ".2f"), ("vs ref", 8, "speedup_vs_reference", ".1f")]


def render(result: dict) -> str:
    """A plain-text table of the suite's rows, with the measured peaks above it."""
    return "\n".join(render_peaks(result) + [table(result["rows"], COLUMNS)])
