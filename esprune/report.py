"""What a finished run shows: the summary table, and score against sparsity across runs (the paper's Fig. 2)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .errors import UserError
from .store import RunFile

COLUMNS = (("iteration", "iter", "{:d}"), ("sparsity", "sparsity", "{:.4f}"), ("active", "active", "{:d}"),
           ("final", "final", "{:.2f}"), ("best", "best", "{:.2f}"), ("test", "test", "{:.2f}"),
           ("threshold", "threshold", "{:.4g}"), ("seconds", "seconds", "{:.1f}"))


def table(rows: list[dict]) -> str:
    """The summary rows as an aligned text table."""
    cells = [[head for _, head, _ in COLUMNS]]
    cells += [[fmt.format(row[key]) for key, _, fmt in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def trainer(config: dict) -> str:
    """Who trained the tickets: the strategy's name, or "gd" (older run files have no trainer key)."""
    return "gd" if config.get("trainer", "es") == "gd" else config["strategy"]


def setting(config: dict) -> str:
    """One line saying what a run does."""
    if config.get("trainer", "es") == "gd":
        opts = ", ".join(f"{k}={v}" for k, v in config.get("gd_options", {}).items())
        how = f"gd{f' ({opts})' if opts else ''}"
    else:
        how = f"{config['strategy']} · P={config['popsize']} · {config['generations']} generations"
    source = f" · tickets from {config['tickets_from']}" if config.get("tickets_from") else ""
    return f"{config['task']} · {how} · {config['prune']}{source} · seed {config['seed']}"


def label(config: dict, vary: set) -> str:
    """A curve's name: the pruning method (or the transfer), plus whatever else differs between the runs shown."""
    method = _transfer_label(config) if config.get("tickets_from") else config["prune"]
    parts = [method] + [trainer(config) if key == "trainer" else str(config[key])
                        for key in ("trainer", "task") if key in vary and not config.get("tickets_from")]
    return " / ".join(parts)


def _transfer_label(config: dict) -> str:
    """"snr tickets of snes → gd": what was transferred from where (the source file may be gone)."""
    try:
        source = RunFile.open(config["tickets_from"]).config
    except UserError:
        return f"transfer → {trainer(config)}"
    task = f", {source['task']}" if source["task"] != config["task"] else ""
    return f"{source['prune']} tickets of {trainer(source)}{task} → {trainer(config)}"


BANDS = {"se": "mean ± SE (std/√n)", "minmax": "mean, min–max"}


def band(values: np.ndarray, kind: str = "se") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high)`` over the seeds (axis 0) of ``values`` ``(n_seeds, n_points)``.

    ``se``: mean ± the standard error std/√n, std with n − 1 in the denominator (the paper's figures draw
    mean ± std/√5 over 5 seeds); ``minmax``: the lowest and highest seed. One seed: a band of zero width.
    """
    if kind not in BANDS:
        raise UserError(f"unknown band {kind!r}; choose one of {', '.join(BANDS)}")
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(0)
    if kind == "minmax":
        return mean, values.min(0), values.max(0)
    n = values.shape[0]
    se = values.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, mean - se, mean + se


def figure(paths, out, metric: str = "test", band_kind: str = "se") -> dict:
    """Score vs. sparsity, one curve per method; runs that differ only in seed give the mean and a band:
    ± standard error by default (the paper's), min–max with ``band_kind="minmax"``. The legend says which.

    Returns the plotted curves ``{label: (sparsity, mean, low, high)}``.
    """
    if band_kind not in BANDS:
        raise UserError(f"unknown band {band_kind!r}; choose one of {', '.join(BANDS)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("esprune report needs matplotlib: pip install 'esprune[plot]'") from None
    runs = [RunFile.open(p) for p in paths]
    configs = [r.config for r in runs]
    vary = {key for key, values in (("trainer", {trainer(c) for c in configs}), ("task", {c["task"] for c in configs}))
            if len(values) > 1}
    groups = defaultdict(list)
    for run, cfg in zip(runs, configs):
        rows = run.summary()
        if not rows:
            raise UserError(f"{run.path} has no finished iteration yet")
        groups[label(cfg, vary)].append(rows)
    curves = {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, seeds in groups.items():
        n = min(len(rows) for rows in seeds)  # seeds that ran further are cut to the common length
        sparsity = np.array([row["sparsity"] for row in seeds[0][:n]])
        values = np.array([[row[metric] for row in rows[:n]] for rows in seeds])
        mean, low, high = band(values, band_kind)
        curves[name] = (sparsity, mean, low, high)
        density = 100 * (1 - sparsity)
        how = f"{len(seeds)} seeds, {BANDS[band_kind]}" if len(seeds) > 1 else "1 seed"
        (line,) = ax.plot(density, mean, marker="o", ms=3, label=f"{name} ({how})")
        if len(seeds) > 1:
            ax.fill_between(density, low, high, alpha=0.2, color=line.get_color())
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel(f"{metric} score")
    ax.set_title(", ".join(sorted({f"{c['task']} · {trainer(c)}" for c in configs})))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return curves
