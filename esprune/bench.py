"""The benchmark suite behind ``esprune bench``: medians over repeats, rates, and the ratios that matter.

Every suite returns ``{"machine": ..., "peak": ..., "rows": [...]}``; the matmul peak is measured in the same
run so that achieved GFLOP/s can be read as a fraction of what this machine's BLAS (or cuBLAS) reaches.
Nothing here asserts a speed: it measures and reports.
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from . import __version__
from . import backend as _backend
from .nets import MLP, mnist_cnn
from .params import Layout, Mask

DENSITIES = (1.0, 0.8, 0.5, 0.2, 0.05, 0.01)  # 0.8: IMP iteration 1

# (name, network factory, population P, batch B): the paper's control policy, a wide MNIST-sized MLP and the
# paper's MNIST CNN at its ES setting (P = 128, B = 1024; no numpy reference row, it would take minutes).
WORKLOADS = (
    ("mlp-control 4-64-64-2", lambda: MLP(4, (64, 64), 2), 100, 8),
    ("mlp-wide 784-256-256-10", lambda: MLP(784, (256, 256), 10), 128, 1024),
    ("cnn-mnist 8-16-10", mnist_cnn, 128, 1024),
)


def timeit(fn, repeats: int, be) -> dict:
    """Median, min and max seconds of ``fn()`` over ``repeats`` calls after one warm-up (compilation) call."""
    fn()
    be.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        be.synchronize()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def matmul_peak(be, n: int | None = None, repeats: int = 5) -> dict:
    """float32 GFLOP/s of one large square matmul on ``be`` (BLAS on the CPU, cuBLAS on the GPU)."""
    n = n or (8192 if be.is_gpu else 2048)
    rng = np.random.default_rng(0)
    a = be.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = be.asarray(rng.standard_normal((n, n), dtype=np.float32))
    t = timeit(lambda: a @ b, repeats, be)
    return {"backend": be.name, "n": n, **t, "gflops": 2 * n**3 / t["median_s"] / 1e9}


def memory_bandwidth(be, mib: int = 1024, repeats: int = 5) -> dict:
    """Device-memory copy bandwidth (read + write bytes per second) of a ``mib`` MiB array copy on ``be``."""
    a = be.xp.ones(mib * 2**20 // 4, dtype=np.float32)
    b = be.xp.empty_like(a)
    t = timeit(lambda: b.__setitem__(Ellipsis, a), repeats, be)
    return {"backend": be.name, "mib": mib, **t, "gbs": 2 * a.nbytes / t["median_s"] / 1e9}


def peaks_of(bes) -> dict:
    """Per backend measured here: the float32 matmul peak, and on a GPU also the memory bandwidth."""
    out = {}
    for be in bes:
        if be.name in ("numba", "cupy"):
            out[be.name] = matmul_peak(be)
            if be.is_gpu:
                out[be.name]["bandwidth_gbs"] = memory_bandwidth(be)["gbs"]
    return out


def random_mask(spec, density: float, seed: int = 0) -> Mask:
    """Each prunable tensor keeps exactly round(density · size) entries, chosen at random."""
    rng = np.random.default_rng(seed)
    masks = {}
    for t in spec:
        if t.prunable:
            keep = np.zeros(t.size, dtype=bool)
            keep[rng.choice(t.size, size=max(1, round(density * t.size)), replace=False)] = True
            masks[t.name] = keep.reshape(t.shape)
    return Mask(masks, spec)


def machine() -> dict:
    info = {"esprune": __version__, "numpy": np.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "backends": {k: v[1] for k, v in _backend.probe().items() if v[0]}}
    return info


def backends_to_measure(names=None) -> list:
    """The named backends (an unusable one is a UserError), or by default every usable one."""
    if names:
        return [_backend.get(n) for n in names]
    return [_backend.get(n) for n in _backend.NAMES if _backend.probe()[n][0]]


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
    macs_active, macs_dense = _macs(net, mask), _macs(net, Mask.dense(net.spec))
    return layout, be.asarray(pop), be.asarray(x), mask.kept, 2.0 * P * B * macs_active, 2.0 * P * B * macs_dense


def _macs(net, mask) -> float:
    """Multiply-adds per example over the active weights (a conv tap counts once per output position)."""
    if isinstance(net, MLP):
        return float(mask.kept)
    total = 0.0
    for k, (_, h, w) in enumerate(net.shapes):
        total += mask[f"conv_{k}/w"].sum() * h * w
    return total + sum(float(mask[f"dense_{k}/w"].sum()) for k in range(net.dense.n_layers))


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


def render_peaks(result: dict) -> list[str]:
    return [f"matmul peak ({p['backend']}, n={p['n']}): {p['gflops']:.1f} GFLOP/s"
            + (f"; memory bandwidth {p['bandwidth_gbs']:.0f} GB/s" if "bandwidth_gbs" in p else "")
            for p in result["peak"].values()]


def optional(row: dict, key: str, fmt: str, scale: float = 1.0) -> str:
    """``row[key]`` (times ``scale``) formatted, or "-" where the row has no such column."""
    return format(scale * row[key], fmt) if key in row else "-"


def render(result: dict) -> str:
    """A plain-text table of a suite's rows, with the measured peaks above it."""
    lines = render_peaks(result)
    head = (f"{'workload':<26}{'backend':<8}{'path':<10}{'density':>8}{'median s':>11}{'min s':>10}{'max s':>10}"
            f"{'GF/s act':>10}{'GF/s dense':>11}{'%peak':>7}{'sp/dense':>9}{'vs ref':>8}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['workload']:<26}{r['backend']:<8}{r['path']:<10}{r['density']:>8.2f}{r['median_s']:>11.2e}"
                     f"{r['min_s']:>10.2e}{r['max_s']:>10.2e}{r['gflops_active']:>10.2f}{r['gflops_dense_equiv']:>11.2f}"
                     f"{(100 * r['frac_peak']) if 'frac_peak' in r else float('nan'):>7.1f}"
                     f"{optional(r, 'speedup_vs_dense', '.2f'):>9}{optional(r, 'speedup_vs_reference', '.1f'):>8}")
    return "\n".join(lines)


def task_rollouts(repeats: int = 5, progress=None) -> dict:
    """CartPole-v1 steps/s with the paper's 4→64→64→2 tanh policy, P=100, 8 episodes of up to 500 steps:
    the Python-stepped numpy reference against the fused numba rollout (CartPole's return = its step count)."""
    from . import tasks

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


def render_tasks(result: dict) -> str:
    lines = [f"{'workload':<34}{'backend':<8}{'path':<10}{'steps':>9}{'median s':>10}{'steps/s':>12}{'vs ref':>8}"]
    for r in result["rows"]:
        ratio = optional(r, "speedup_vs_reference", ".1f")
        lines.append(f"{r['workload']:<34}{r['backend']:<8}{r['path']:<10}{r['steps']:>9.0f}{r['median_s']:>10.4f}"
                     f"{r['steps_per_s']:>12.0f}{ratio:>8}")
    return "\n".join(lines)
