"""Linear mode connectivity: loss and score along θ(α) = θa + α(θb − θa), and the barrier between the ends.

As PAPER.md defines it for networks with different masks: interpolate the whole parameter vectors (pruned
entries are 0) and evaluate the dense network. All α points are one population, so a curve is one call of the
task's batched evaluation. The loss is the training loss on one fixed seeded batch (classification: cross-
entropy; control: −return on the training episodes of generation 0); the score is the test score.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..params import Layout
from .solutions import Solution, finished_iterations, load


def curve(evaluate, a, b, points: int = 25):
    """``alphas`` and ``evaluate(θ(α) for every α)``; θ(0) is exactly ``a`` and θ(1) exactly ``b``."""
    alphas = np.linspace(0.0, 1.0, int(points))
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    pop = a[None] + alphas[:, None] * (b - a)[None]
    pop[-1] = b
    return alphas, np.asarray(evaluate(pop), dtype=np.float64)


def barrier(alphas, values, higher_is_better: bool) -> float:
    """The largest shortfall of ``values`` against the straight line between its ends (0 when none)."""
    line = (1 - alphas) * values[0] + alphas * values[-1]
    gap = line - values if higher_is_better else values - line
    return float(max(gap.max(), 0.0))


def connect(a: Solution, b: Solution, points: int = 25, backend: str = "numba") -> dict:
    """Loss and score curves between two solutions of the same network, and their barriers."""
    if a.net.spec != b.net.spec:
        raise UserError(f"{a.label} and {b.label} are different networks; connectivity needs one shape")
    task, net = a.task, a.net
    dense = Layout(net.spec)
    seed = int(a.config["seed"])

    def loss(pop):
        return -task.evaluate(net, dense, pop.astype(np.float32), seed=seed, generation=0, backend=backend)

    def score(pop):
        return task.score(net, dense, pop.astype(np.float32), seed=seed, backend=backend)

    alphas, losses = curve(loss, a.full, b.full, points)
    _, scores = curve(score, a.full, b.full, points)
    return {"a": a.label, "b": b.label, "trainer_a": a.trainer, "trainer_b": b.trainer,
            "iteration_a": a.iteration, "iteration_b": b.iteration,
            "sparsity_a": a.sparsity, "sparsity_b": b.sparsity,
            "alpha": alphas, "loss": losses, "score": scores,
            "loss_barrier": barrier(alphas, losses, higher_is_better=False),
            "score_barrier": barrier(alphas, scores, higher_is_better=True)}


def pairs(run_a, run_b=None, iteration: int | None = None, consecutive: bool = False):
    """The solution pairs to connect: consecutive iterations of one run, or two runs at one or every common
    iteration. Raises UserError for a missing partner, a second run or an ``iteration`` with ``consecutive``."""
    for path in (run_a, run_b):
        if path is not None:
            finished_iterations(path)  # a missing or foreign file is named before anything else
    if consecutive:
        if iteration is not None:
            raise UserError("--iteration and --consecutive exclude each other: --consecutive pairs every finished "
                            "iteration k with k + 1; --iteration K picks one iteration of two runs")
        if run_b is not None:
            raise UserError("--consecutive compares the iterations of one run; give one run file")
        done = finished_iterations(run_a)
        if len(done) < 2:
            raise UserError(f"{run_a} needs at least two finished iterations for --consecutive")
        return [(load(run_a, k), load(run_a, k + 1)) for k in done[:-1] if k + 1 in done]
    if run_b is None:
        raise UserError("give a second run file (another seed, or a GD run) or --consecutive")
    if iteration is not None:
        return [(load(run_a, iteration), load(run_b, iteration))]
    common = sorted(set(finished_iterations(run_a)) & set(finished_iterations(run_b)))
    if not common:
        raise UserError(f"{run_a} and {run_b} have no finished iteration in common")
    return [(load(run_a, k), load(run_b, k)) for k in common]


COLUMNS = (("iteration_a", "iter a", "{:d}"), ("iteration_b", "iter b", "{:d}"),
           ("sparsity_a", "sparsity a", "{:.4f}"), ("sparsity_b", "sparsity b", "{:.4f}"),
           ("score_a", "score a", "{:.4g}"), ("score_b", "score b", "{:.4g}"), ("score_mid", "score α=½", "{:.4g}"),
           ("score_barrier", "score barrier", "{:.4g}"), ("loss_barrier", "loss barrier", "{:.4g}"))


def rows(results) -> list[dict]:
    return [{**r, "score_a": float(r["score"][0]), "score_b": float(r["score"][-1]),
             "score_mid": float(np.interp(0.5, r["alpha"], r["score"]))} for r in results]


def colour_key(n: int, cmap, most: int = 8):
    """Colours for ``n`` pairs along ``cmap`` and a discrete colour bar naming them: pair i's line colour is
    ``cmap(i / (n − 1))``; the bar (``bar_cmap`` under ``norm``) has one band per pair, [i − ½, i + ½), in that
    pair's colour, and its ticks sit at the centres i of at most ``most`` evenly spread pairs, the first and the
    last among them, so each tick's label names the pair whose colour it sits on.

    Returns ``(colours, bar_cmap, norm, ticks)``: colours (n, 4) RGBA floats, a ListedColormap, a BoundaryNorm
    and the labelled pair indices (int array, ascending)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    colours = cmap(np.linspace(0.0, 1.0, n))
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    ticks = np.unique(np.round(np.linspace(0, n - 1, min(n, most))).astype(int))
    return colours, ListedColormap(colours), norm, ticks


def figure(results, out, plt) -> None:
    fig, (ax_s, ax_l) = plt.subplots(1, 2, figsize=(10.5, 4), layout="constrained")  # room for a colour bar
    # Many pairs (a whole IMP run): one colour per pair along a sequential map and a colour bar with a band per
    # pair, since a 21-entry legend hides the curves; a few pairs keep their legend.
    many = len(results) > 6
    if many:
        colours, bar_cmap, norm, ticks = colour_key(len(results), plt.get_cmap("viridis"))
    for i, r in enumerate(results):
        name = f"{r['iteration_a']}↔{r['iteration_b']} (sparsity {r['sparsity_a']:.2f}/{r['sparsity_b']:.2f})"
        color = colours[i] if many else None
        ax_s.plot(r["alpha"], r["score"], marker="o", ms=2, label=name, color=color)
        ax_l.plot(r["alpha"], r["loss"], marker="o", ms=2, label=name, color=color)
    ax_s.set_ylabel("test score")
    ax_l.set_ylabel("training loss")
    for ax in (ax_s, ax_l):
        ax.set_xlabel("α  (θ = (1−α)·θa + α·θb)")
        ax.grid(alpha=0.3)
    if many:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=bar_cmap), ax=[ax_s, ax_l], ticks=ticks, pad=0.02)
        bar.ax.set_yticklabels([f"{results[k]['iteration_a']}↔{results[k]['iteration_b']}: "
                                f"{100 * (1 - results[k]['sparsity_a']):.3g}%" for k in ticks], fontsize=7)
        bar.ax.minorticks_off()
        bar.set_label("pair (iterations): weights remaining of run A", fontsize=8)
    else:
        ax_s.legend(fontsize=7)
    first = results[0]
    fig.suptitle(f"{first['a'].rsplit('@', 1)[0]} ({first['trainer_a']}) ↔ {first['b'].rsplit('@', 1)[0]} "
                 f"({first['trainer_b']})", fontsize=9)
    fig.savefig(out, dpi=120)
    plt.close(fig)
