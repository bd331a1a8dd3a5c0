"""``esprune bench mpi``: a generation with the population split over R MPI ranks against one process.

Workload W1 of ``bench generation``: CartPole-v1, the paper's 4-64-64-2 tanh MLP, Sep-CMA-ES, P = 100, 8
episodes, dense. Each configuration runs in fresh processes (``mpiexec -n R python -m esprune.bench.mpi``, and
the single process without mpiexec); rank 0 reports seconds per generation (ask → evaluate → allgather → tell;
median, min, max) and the payload bytes each rank sends and receives per generation (the fitness values: 8
bytes per member). Ranks on one host split its cores (numba threads = cores / ranks).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UserError


def measure(generations: int = 20, popsize: int = 100, episodes: int = 8) -> dict:
    """Time ``generations`` generations in this process (sharded when started under mpiexec)."""
    from .. import distributed, strategies, tasks
    from ..params import Layout, Mask

    task = tasks.make("CartPole-v1", episodes=episodes)
    net = task.default_net()
    layout = Layout(net.spec, Mask.dense(net.spec))
    es = strategies.make("sep_cma_es", layout.dim, popsize, seed=0, backend="numba")
    es.mean = layout.flatten({n: np.asarray(v, dtype=np.float64) for n, v in net.init(0).items()})
    ranks = distributed.world_size()
    c = distributed.comm() if ranks > 1 else None
    seconds, sent, received = [], 0, 0
    for g in range(generations + 2):  # two warm-up generations (numba's cache, MPI's first connections)
        clock = time.perf_counter()
        if c is None:
            fitness = np.asarray(task.evaluate(net, layout, es.ask(), seed=0, generation=g, backend="numba"))
            s = r = 0
        else:
            fitness, s, r = distributed.gather_fitness(c, task, net, layout, es, 0, g, "numba")
        es.tell(fitness)
        if g >= 2:
            seconds.append(time.perf_counter() - clock)
            sent, received = sent + s, received + r
    result = {"ranks": ranks, "mpi": c is not None, "popsize": popsize, "generations": generations,
              "median_s": float(np.median(seconds)), "min_s": float(np.min(seconds)),
              "max_s": float(np.max(seconds)), "bytes_sent_per_rank": sent / generations,
              "bytes_received_per_rank": received / generations, "mean_checksum": float(es.mean.sum())}
    if c is not None:
        per_rank = c.gather((sent / generations, received / generations), root=0)
        result["bytes_per_rank"] = per_rank
    return result


def run(ranks=(1, 2), generations: int = 20, progress=None) -> dict:
    """The single process, then each R in ``ranks`` under mpiexec; speed-up = single time / sharded time."""
    launcher = _mpiexec()
    jobs = [("single", [sys.executable, "-m", "esprune.bench.mpi", str(generations)])]
    jobs += [(f"R={r}", [launcher, "-n", str(r), sys.executable, "-m", "esprune.bench.mpi", str(generations)])
             for r in ranks]
    rows = []
    for i, (name, cmd) in enumerate(jobs):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise UserError(f"bench mpi: {name} failed: {done.stderr.strip().splitlines()[-1:]}")
        rows.append({"config": name, **json.loads(done.stdout.strip().splitlines()[-1])})
        if progress:
            progress(i + 1, len(jobs), rows[-1])
    single = rows[0]["median_s"]
    for row in rows:
        row["speedup_vs_single"] = single / row["median_s"]
    same = len({row["mean_checksum"] for row in rows}) == 1
    return {"workload": "W1: CartPole-v1, 4-64-64-2 tanh, Sep-CMA-ES, P=100, 8 episodes, numba",
            "rows": rows, "same_mean_after_all_generations": same}


def render(result: dict) -> str:
    lines = [result["workload"], f"{'config':<8} {'ranks':>5} {'median s/gen':>13} {'min–max':>17} "
                                 f"{'speed-up':>8} {'bytes sent/rank':>16} {'received/rank':>14}"]
    for r in result["rows"]:
        lines.append(f"{r['config']:<8} {r['ranks']:>5} {r['median_s']:>13.4f} "
                     f"{r['min_s']:>8.4f}–{r['max_s']:<8.4f} {r['speedup_vs_single']:>8.2f} "
                     f"{r['bytes_sent_per_rank']:>16.0f} {r['bytes_received_per_rank']:>14.0f}")
    lines.append(f"identical search mean after the run in every configuration: {result['same_mean_after_all_generations']}")
    return "\n".join(lines)


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        raise UserError("bench mpi needs mpiexec: pip install 'esprune[mpi]' (the mpich wheel provides it)")
    return found


if __name__ == "__main__":
    out = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    from . import distributed

    if distributed.rank() == 0:
        print(json.dumps(out))
