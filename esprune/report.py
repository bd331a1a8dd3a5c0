"""What a finished run shows: the summary table, its one-line setting, curve labels and the seed band (the
figures across runs are ``report_grid``'s)."""
from __future__ import annotations

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
