"""Per-iteration profile of a run: seconds in each phase of the ES loop, the work done, the rate achieved.

``imp`` opens a :class:`PhaseTimer` per iteration and wraps each phase (``ask``, ``evaluate``, ``tell``,
``commit`` = writing the run file) in ``timer.phase(name)``; after each evaluation it adds the work the task
reports (env steps of a control task, images of a classification task) and the FLOPs of that work. The store
keeps ``timer.record()`` with the iteration (``RunFile.finish_iteration``); ``esprune show RUN.h5 --timing`` prints
it. Recording costs two ``perf_counter`` calls per phase (well under a microsecond against milliseconds of
work per generation).
"""
from __future__ import annotations

import contextlib
import time

PHASES = ("ask", "evaluate", "tell", "commit")


class PhaseTimer:
    """Seconds per phase, summed over an iteration's generations, plus work units and FLOPs."""

    def __init__(self, unit: str = ""):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.unit, self.work, self.flops, self.generations = unit, 0.0, 0.0, 0

    @contextlib.contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def add_work(self, units: float, flops: float) -> None:
        """One evaluation's work (``units`` of ``self.unit``) and its multiply-add FLOPs (2 per multiply-add)."""
        self.work += float(units)
        self.flops += float(flops)
        self.generations += 1

    def record(self) -> dict:
        """Flat numbers for the run file: ``<phase>_s``, ``work``, ``work_unit``, ``generations``, ``gflops``
        (FLOPs over the evaluate seconds)."""
        out = {f"{name}_s": s for name, s in self.seconds.items()}
        evaluate = self.seconds["evaluate"]
        out.update(work=self.work, work_unit=self.unit, generations=self.generations,
                   gflops=self.flops / evaluate / 1e9 if evaluate > 0 else 0.0)
        return out


def work_of(task, net, layout, popsize: int) -> tuple[str, float, float]:
    """(unit, units, FLOPs) of the task's last evaluation of ``popsize`` members: env steps × 2 × active weights
    for an episodic task (control, locomotion, gym: ``task.env_steps``), images × 2 × active multiply-adds for a
    classification task."""
    if getattr(task, "kind", "") != "classify":
        steps = float(getattr(task, "env_steps", 0))
        return "env steps", steps, 2.0 * layout.mask.kept * steps
    images = float(popsize * getattr(task, "batch_size", 0))
    return "images", images, 2.0 * images * macs_per_example(net, layout.mask)


def macs_per_example(net, mask) -> float:
    """Multiply-adds per example over the active weights (a conv tap counts once per output position)."""
    total = 0.0
    for k, (_, h, w) in enumerate(getattr(net, "shapes", ())):
        total += float(mask[f"conv_{k}/w"].sum()) * h * w
    dense = getattr(net, "dense", net)
    return total + sum(float(mask[f"dense_{k}/w"].sum()) for k in range(dense.n_layers))


def render(rows: list[dict]) -> str:
    """Per iteration: the phase seconds, the work and rates, as an aligned table."""
    head = (f"{'iter':>4}{'ask s':>9}{'eval s':>9}{'tell s':>9}{'commit s':>9}{'work':>14}{'unit':>10}"
            f"{'per s':>12}{'GFLOP/s':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = r["work"] / r["evaluate_s"] if r["evaluate_s"] > 0 else 0.0
        lines.append(f"{r['iteration']:>4}{r['ask_s']:>9.3f}{r['evaluate_s']:>9.3f}{r['tell_s']:>9.3f}"
                     f"{r['commit_s']:>9.3f}{r['work']:>14.0f}{r['work_unit']:>10}{rate:>12.4g}{r['gflops']:>9.2f}")
    return "\n".join(lines)
