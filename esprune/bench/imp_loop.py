"""The ``imp`` suite of ``esprune bench``: the whole IMP loop (the demo preset cut to 3 iterations), with the
evaluation of the mean, checkpoints and pruning included. The one suite that runs an experiment, so the one
that imports ``imp`` and ``config``."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .. import config, presets
from ..imp import Experiment
from .common import machine, render_peaks


def imp(repeats: int = 1, progress=None) -> dict:
    """Seconds per iteration and per generation of the demo preset cut to 3 iterations."""
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


def render(result: dict) -> str:
    return "\n".join(render_peaks(result) + [
        f"{r['workload']}: {r['seconds']:.1f} s ({', '.join(f'{s:.1f}' for s in r['iteration_seconds'])} "
        f"s per iteration), {1000 * r['seconds_per_generation']:.1f} ms per generation" for r in result["rows"]])
