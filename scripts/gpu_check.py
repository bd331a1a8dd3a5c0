"""The GPU check a lent CUDA machine runs at once (``make gpu-check OUT=DIR``; scripts/gpu-check.sh installs
CuPy first): ``pytest -m gpu`` (with the MuJoCo Warp tests on the device when the gpu-physics extra is there),
the GPU benchmarks (W1, W1-full, W2 dense and sparse, the device's matmul peak and memory bandwidth, numba beside
them for the GPU/CPU ratios; W3, Ant on MuJoCo Warp beside Ant on C MuJoCo) and one short IMP run on the cupy
backend compared with the numba run. Every step writes its JSON into DIR as soon as it ends, a failing step is recorded
and the next one runs, and steps that no longer fit the time budget are skipped; DIR/summary.md says what
happened.

``--emulate`` runs the same steps here, without a GPU: CuPy replaced by tests/host_cupy.py and the kernels
compiled for the host (esprune/ops/host_cuda.py), on small sizes (the emulation runs a grid's threads one after
another), with the cupy-path tests (``-k host``) in place of ``-m gpu``. So the first real device run is not the
script's first run. Figures from the emulation say nothing about speed.

    python scripts/gpu_check.py DIR [--emulate] [--budget SECONDS]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the JSON files and summary.md (created)")
    parser.add_argument("--emulate", action="store_true", help="no GPU: host emulation of CuPy, small sizes")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all steps (default 450)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.emulate:
        _emulate()
    check = Check(args.out, args.budget, args.emulate)
    check.step("info", _info, need=5)
    check.step("pytest", lambda: _pytest(args.out, args.emulate, check.left() - 240), need=60)
    check.step("bench_generation", lambda: _bench_generation(args.emulate), need=60)
    check.step("bench_w3", lambda: _bench_w3(args.emulate), need=90)
    check.step("bench_forward", lambda: _bench_forward(args.emulate), need=30)
    check.step("imp_cupy_vs_numba", lambda: _imp_compare(args.emulate), need=30)
    check.finish()
    return 0 if not check.failed else 1


class Check:
    """Runs the steps under one time budget and writes what each produced."""

    def __init__(self, out: Path, budget: float, emulate: bool):
        self.out, self.budget, self.emulate = out, budget, emulate
        self.start = time.perf_counter()
        self.steps, self.failed = {}, []

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def step(self, name, run, need: float) -> None:
        if self.left() < need:
            self.steps[name] = {"status": "skipped", "why": f"{self.left():.0f} s left of the budget, needs ~{need} s"}
            print(f"[gpu-check] {name}: skipped (time)", flush=True)
            return
        print(f"[gpu-check] {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            result = run()
            status = "ok" if not (isinstance(result, dict) and result.get("failed")) else "failed"
        except Exception:  # a failing step must not lose the others: record it and go on
            result, status = {"error": traceback.format_exc()}, "error"
        seconds = time.perf_counter() - t0
        if status != "ok":
            self.failed.append(name)
        self.steps[name] = {"status": status, "seconds": seconds}
        (self.out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"[gpu-check] {name}: {status} in {seconds:.0f} s", flush=True)

    def finish(self) -> None:
        total = time.perf_counter() - self.start
        report = {"emulated": self.emulate, "seconds": total, "steps": self.steps}
        (self.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
        (self.out / "summary.md").write_text(_summary(self.out, report))
        print((self.out / "summary.md").read_text())


# ----------------------------------------------------------------------------------------------------- steps
def _emulate() -> None:
    """What tests/conftest.py's host_device fixture does, for this process."""
    sys.path.insert(0, str(ROOT / "tests"))
    import host_cupy

    from esprune import backend
    from esprune.ops import cuda, host_cuda

    if host_cuda.compiler() is None:
        raise SystemExit("--emulate needs a C++ compiler (g++) to build the kernels for the host")
    cuda.load = host_cuda.load
    cuda.device_array_type = lambda: host_cupy.ndarray
    host, real_get = backend.Backend("cupy", host_cupy), backend.get
    backend.get = lambda name="auto": host if name == "cupy" else real_get(name)


def _info() -> dict:
    from esprune import backend
    from esprune.bench import machine

    info = {"machine": machine(), "probe": {k: list(v) for k, v in backend.probe().items()}}
    try:
        info["nvidia_smi"] = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = f"not available: {exc}"
    return info


def _pytest(out: Path, emulate: bool, timeout: float) -> dict:
    if emulate:  # every cupy-path test, on the host emulation (the device ones skip without a GPU)
        selection = ["tests/test_device_path.py", "tests/test_control.py", "tests/test_mlp.py", "tests/test_cnn.py",
                     "tests/test_noise.py", "tests/test_warp_physics.py", "-k", "host and not slow"]
    else:
        selection = ["-m", "gpu"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "--junitxml", str(out / "pytest.xml"), *selection]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 30))
        text, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        text, code = f"{exc.stdout or ''}\ntimed out after {timeout:.0f} s", -1
    (out / "pytest.txt").write_text(text)
    last = [line for line in text.strip().splitlines() if line.strip()][-1:] or [""]
    return {"command": " ".join(cmd), "returncode": code, "result": last[0], "failed": code not in (0, 5)}


def _bench_generation(emulate: bool) -> dict:
    from esprune.bench import common, generation

    if emulate:  # small cousins: the emulation runs every thread one after another
        common.matmul_peak = _small_peak(common.matmul_peak)
        common.memory_bandwidth = _small_bandwidth(common.memory_bandwidth)
        generation.WORKLOADS = {
            "W1": ("small W1", "CartPole-v1", {"episodes": 2}, "sep_cma_es", {"sigma_init": 0.1}, 8,
                   (1.0, 0.8**10), False),
            "W2": ("small W2", "blobs", {"batch_size": 4}, "snes", {"sigma_init": 0.025}, 4, (1.0, 0.05), False)}
        result = generation.generation(backends=["numba", "cupy"], repeats=1, workloads=("W1", "W2"))
    else:
        result = generation.generation(backends=["numba", "cupy"], repeats=3, workloads=("W1", "W1-full", "W2"))
    result["table"] = generation.render(result)
    return result


def _bench_w3(emulate: bool) -> dict:
    """W3 (Ant-v5, Sep-CMA-ES, P=256 × 8 episodes of 50 steps) on the cupy backend, whose worlds run on MuJoCo
    Warp (on the emulation: Warp's CPU device, tiny sizes), beside numba with C MuJoCo; each row with its
    physics' own batched stepping rate (the floor)."""
    import importlib.util

    missing = [m for m in ("mujoco", "gymnasium", "mujoco_warp") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"{', '.join(missing)} not installed: pip install 'esprune[mujoco,gpu-physics]'"}
    from esprune import backend
    from esprune.bench import generation, locomotion
    from esprune.bench.common import table

    size = {"repeats": 1, "max_steps": 3, "popsize": 4, "episodes": 2} if emulate else {"repeats": 2}
    rows = [locomotion.w3_row(backend.get(name), **size) for name in ("cupy", "numba")]
    generation._ratios(rows)
    return {"rows": rows, "failed": rows[0]["physics"] == "mujoco",
            "table": "\n".join([table(rows, generation.COLUMNS + [("physics", 14, "physics", ">")])]
                               + locomotion.render_floor(rows))}


def _bench_forward(emulate: bool) -> dict:
    from esprune.bench import forward

    if emulate:
        result = forward.forward(backends=["cupy"], densities=(1.0, 0.2), repeats=1, workloads=["mlp-control"])
    else:
        result = forward.forward(backends=["cupy"], densities=(1.0, 0.2, 0.05), repeats=3,
                                 workloads=["mlp-wide", "cnn-mnist"])
    result["table"] = forward.render(result)
    return result


def _imp_compare(emulate: bool) -> dict:
    """The demo preset, shortened, on numba and on cupy: the same tickets and (on the emulation) the same numbers;
    on a device the double-precision math may differ in the last bits, so the differences are reported."""
    import numpy as np

    from esprune import config, presets
    from esprune.imp import Experiment
    from esprune.store import RunFile

    overrides = {"iterations": 1, "generations": 3 if emulate else 20, "popsize": 8 if emulate else 32}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("numba", "cupy"):
            cfg = config.resolve(presets.get("demo"), {**overrides, "backend": name})
            t0 = time.perf_counter()
            Experiment.start(cfg, Path(tmp) / f"{name}.h5").execute()
            run = RunFile.open(Path(tmp) / f"{name}.h5")
            runs[name] = {"seconds": time.perf_counter() - t0, "summary": run.summary()}
    a, b = runs["numba"]["summary"], runs["cupy"]["summary"]
    diff = {key: float(np.max(np.abs([ra[key] - rb[key] for ra, rb in zip(a, b)]))) for key in ("final", "test")}
    same_masks = [ra["weights"] == rb["weights"] for ra, rb in zip(a, b)]
    return {"config": overrides, "runs": runs, "max_abs_difference": diff, "same_active_counts": same_masks,
            "identical": all(same_masks) and not any(diff.values())}


def _small_peak(real):
    return lambda be, n=None, repeats=5: real(be, n=64, repeats=1)


def _small_bandwidth(real):
    return lambda be, mib=1024, repeats=5: real(be, mib=1, repeats=1)


# --------------------------------------------------------------------------------------------------- summary
def _summary(out: Path, report: dict) -> str:
    lines = [f"# esprune GPU check ({'host emulation' if report['emulated'] else 'device'})", "",
             f"{report['seconds']:.0f} s in all.", "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {k} | {v['status']} | {v.get('seconds', 0):.0f} |" for k, v in report["steps"].items()]
    for name, title in (("pytest", "pytest"), ("bench_generation", "bench generation"),
                        ("bench_w3", "bench generation W3 (MuJoCo Warp on the cupy backend)"),
                        ("bench_forward", "bench forward"), ("imp_cupy_vs_numba", "IMP on cupy vs numba")):
        path = out / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        lines += ["", f"## {title}"]
        if "error" in data:
            lines += ["```", data["error"].strip().splitlines()[-1], "```"]
        elif "skipped" in data:
            lines += [f"skipped: {data['skipped']}"]
        elif name == "pytest":
            lines += [f"`{data['command']}` → {data['result']} (exit {data['returncode']})"]
        elif "table" in data:
            lines += ["```", data["table"], "```"]
        else:
            lines += [f"identical: {data['identical']}; max |Δ| final {data['max_abs_difference']['final']:.3g}, "
                      f"test {data['max_abs_difference']['test']:.3g}; seconds numba "
                      f"{data['runs']['numba']['seconds']:.1f}, cupy {data['runs']['cupy']['seconds']:.1f}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
