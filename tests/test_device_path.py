"""The cupy code path end to end: whole generations (ask → evaluate → tell) against the numba backend, what
crosses between host and device per generation, and the host emulation's own launch checks.

``cupy_backend`` runs each test twice: on the host emulation of the CUDA kernels (every CI run) and on a GPU
(``-m gpu``, skipped without one)."""
import contextlib

import numpy as np
import pytest

import host_cupy
from esprune import strategies, tasks
from esprune.bench import random_mask
from esprune.errors import BackendUnavailable
from esprune.ops import host_cuda
from esprune.params import Layout

# (task, task options, strategy, P): small cousins of the bench workloads W1 (control) and W2 (CNN).
WORKLOADS = {"control": ("CartPole-v1", {"episodes": 3}, "sep_cma_es", 10),
             "cnn": ("blobs", {"batch_size": 24}, "snes", 8)}


def generations(workload, backend, n=3, density=0.3, watch_last=contextlib.nullcontext):
    task_name, options, strategy, P = WORKLOADS[workload]
    task = tasks.make(task_name, **options)
    net = task.default_net()
    layout = Layout(net.spec, random_mask(net.spec, density, seed=1))
    es = strategies.make(strategy, layout.dim, P, seed=0, backend=backend)
    es.mean = layout.flatten({k: v.astype(np.float64) for k, v in net.init(0).items()})
    fitness = []
    for g in range(n):
        with watch_last() if g == n - 1 else contextlib.nullcontext():
            pop = es.ask()
            fitness.append(task.evaluate(net, layout, pop, seed=0, generation=g, backend=backend))
            es.tell(fitness[-1])
    return np.array(fitness), es.be.to_numpy(es.mean), es.be.to_numpy(es.std), layout.dim, P


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_generations_on_the_device_follow_the_numba_backend(cupy_backend, workload):
    f_cpu, mean_cpu, std_cpu, _, _ = generations(workload, "numba")
    f_dev, mean_dev, std_dev, _, _ = generations(workload, cupy_backend)
    assert isinstance(f_dev, np.ndarray) and f_dev.dtype == np.float64
    if workload == "control":  # discrete actions: the returns are step counts and must be identical
        np.testing.assert_array_equal(f_dev, f_cpu)
    else:
        np.testing.assert_allclose(f_dev, f_cpu, rtol=1e-5)
    # Equal fitness ranks give equal updates; the noise moments are float64 sums in the same order.
    np.testing.assert_allclose(mean_dev, mean_cpu, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(std_dev, std_cpu, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_a_generation_moves_only_the_fitness_to_the_host(workload, host_device):
    """Nothing of size d (mean, std, noise, members) crosses in either direction inside a generation."""
    moved = {}

    @contextlib.contextmanager
    def count():
        for log in host_cupy.transfers.values():
            log.clear()
        yield
        moved.update({k: list(v) for k, v in host_cupy.transfers.items()})

    _, _, _, dim, P = generations(workload, host_device, watch_last=count)
    episodes = WORKLOADS[workload][1].get("episodes", 1)
    # one transfer down: the float64 returns and episode lengths (control: run profiles count the env steps) or
    # the fitness (classification)
    assert moved["to_host"] == [8 * P * episodes * (2 if workload == "control" else 1)]
    # Up: members' noise rows and signs, the fitness weights, and the batch indices or episode start states.
    batch = WORKLOADS[workload][1].get("batch_size", 0)
    assert moved["to_device"] and max(moved["to_device"]) <= 8 * max(P, batch, 4 * episodes)
    assert 8 * dim > 100 * max(moved["to_device"])  # …and d is far larger than any of them


def test_an_imp_run_on_the_cupy_path_matches_the_numba_run(cupy_backend, tmp_path):
    """The whole IMP loop (ES, SNR pruning, rewinding, evaluation, checkpoints) with ``backend = "cupy"``.
    Under host emulation every number equals the numba run's; on a GPU the device's math may shift
    trajectories, so there only the schedule and the bookkeeping are compared."""
    from esprune import config
    from esprune.imp import Experiment
    from esprune.store import RunFile

    small = {"task": "CartPole-v1", "task_options": {"episodes": 2}, "strategy": "sep_cma_es", "prune": "snr",
             "iterations": 2, "keep": 0.5, "generations": 6, "popsize": 8, "eval_every": 3, "seed": 3}
    runs = {}
    for name in ("numba", "cupy"):
        path = tmp_path / f"{name}.h5"
        rows = Experiment.start(config.resolve({**small, "backend": name}), path).execute()
        rows = [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in r.items() if k != "seconds"}
                for r in rows]  # NaN (no threshold at iteration 0) != NaN
        runs[name] = (rows, RunFile.open(path))
    (rows_cpu, run_cpu), (rows_dev, run_dev) = runs["numba"], runs["cupy"]
    assert [r["sparsity"] for r in rows_dev] == [r["sparsity"] for r in rows_cpu]
    if cupy_backend.xp is host_cupy:
        assert rows_dev == rows_cpu
        for k in range(3):
            a, b = run_cpu.iteration(k), run_dev.iteration(k)
            np.testing.assert_array_equal(a["mask"], b["mask"])
            np.testing.assert_array_equal(a["final_mean"], b["final_mean"])


def test_launches_refuse_what_a_gpu_would_misread(host_device):
    """CuPy passes a numpy scalar with its own width and a Python float as a double: the emulated launch
    checks every argument against the kernel's parameter types instead of reading garbage."""
    kernel = host_cuda.load("noise.cu").get_function("philox_uint32")
    members, out = np.arange(3, dtype=np.uint32), np.zeros((3, 5), dtype=np.uint32)
    good = [members, np.int32(3), np.int32(5), np.uint32(1), np.uint32(2), np.uint32(0), out]
    kernel((1,), (32,), good)
    from esprune.ops import noise
    np.testing.assert_array_equal(out, noise.philox_uint32_reference(members, 5, 1, 2, 0))
    with pytest.raises(TypeError, match=r"argument 2 \(int dim\) needs a numpy int32"):
        kernel((1,), (32,), good[:2] + [np.int64(5)] + good[3:])
    with pytest.raises(TypeError, match="points to uint32, got an array of int64"):
        kernel((1,), (32,), [members.astype(np.int64)] + good[1:])
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel((1,), (32,), good[:-1] + [np.zeros((5, 3), dtype=np.uint32).T])
    with pytest.raises(TypeError, match="takes 7 arguments"):
        kernel((1,), (32,), good[:-1])
    with pytest.raises(ValueError, match="exceeds CUDA's 1024"):
        kernel((1,), (2048,), good)
    with pytest.raises(ValueError, match="exceeds CUDA's limits"):
        kernel((1, 70000), (32,), good)


@pytest.mark.parametrize("body,why", [
    ("__syncthreads(); x[0] = 1;", "no barriers"),  # threads run one by one on the host
    ("__shared__ float s[32]; x[0] = s[0];", "no shared memory"),
    ("x[0] = -INFINITY;", "INFINITY"),  # NVRTC has no host headers: CuPy could not compile this
])
def test_what_the_host_cannot_emulate_or_nvrtc_cannot_compile_is_refused(host_device, tmp_path, monkeypatch,
                                                                        body, why):
    (tmp_path / "host_cuda.h").write_text((host_cuda.cuda.kernels_dir() / "host_cuda.h").read_text())
    (tmp_path / "k.cu").write_text(f'extern "C" __global__ void k(float* x) {{ {body} }}\n')
    monkeypatch.setattr(host_cuda.cuda, "kernels_dir", lambda: tmp_path)
    monkeypatch.setenv("ESPRUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackendUnavailable, match=why):
        host_cuda.load.__wrapped__("k.cu")


def test_the_bench_suites_run_their_gpu_branches(host_device, monkeypatch):
    """The GPU rows of ``esprune bench`` (synchronised timing, memory bandwidth, GPU/CPU ratios) on small sizes;
    the figures themselves mean nothing under emulation."""
    from esprune.bench import common, forward, generation

    real_peak, real_bandwidth = common.matmul_peak, common.memory_bandwidth
    monkeypatch.setattr(common, "matmul_peak", lambda be: real_peak(be, n=64, repeats=1))
    monkeypatch.setattr(common, "memory_bandwidth", lambda be: real_bandwidth(be, mib=1, repeats=1))
    result = forward.forward(backends=["numba", "cupy"], densities=(1.0, 0.2), repeats=1, workloads=["mlp-control"])
    assert {r["backend"] for r in result["rows"]} == {"numba", "cupy"}
    assert result["peak"]["cupy"]["bandwidth_gbs"] > 0 and "memory bandwidth" in forward.render(result)
    monkeypatch.setitem(generation.WORKLOADS, "W1", ("small W1", "CartPole-v1", {"episodes": 2}, "sep_cma_es",
                                                     {"sigma_init": 0.1}, 8, (1.0, 0.8**10), False))
    result = generation.generation(backends=["numba", "cupy"], repeats=1, workloads=("W1",))
    gpu = [r for r in result["rows"] if r["backend"] == "cupy"]
    assert len(gpu) == 2 and all("speedup_vs_numba" in r for r in gpu)
    assert "cupy" in generation.render(result)
