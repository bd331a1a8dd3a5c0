"""Where an analysis puts its numbers (JSON) and its figure (PNG, with the plot extra), and how it prints them."""
from __future__ import annotations

import json
import math
from pathlib import Path


def default_prefix(run_path, analysis: str) -> Path:
    """``runs/demo.h5`` → ``runs/demo-connect``."""
    p = Path(run_path)
    return p.with_name(f"{p.stem}-{analysis}")


def write_json(result: dict, prefix) -> Path:
    """The numbers as strict JSON (NaN and infinities become null)."""
    path = Path(f"{prefix}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_strict(result), indent=2) + "\n")
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None without the plot extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def table(rows: list[dict], columns) -> str:
    """``columns``: (key, heading, format) triples; an aligned text table."""
    cells = [[head for _, head, _ in columns]]
    cells += [[("-" if row.get(key) is None else fmt.format(row[key])) for key, _, fmt in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def _strict(value):
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist"):
        return _strict(value.tolist())
    return value
