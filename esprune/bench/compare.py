"""``esprune bench ... --compare OLD.json``: each row's speed against the same row of an earlier benchmark file,
with the machine, versions and threads of both, so that a regression or a speed-up shows at a glance."""
from __future__ import annotations

import json

from ..errors import ConfigError
from .common import table

# what identifies a row across files, and the figure compared (seconds: lower is better)
KEY = ("suite", "workload", "backend", "path", "density")
MACHINE = ("esprune", "numpy", "numba", "python", "cpu", "cores", "threads", "blas_threads")


def load(path) -> dict:
    """A benchmark file written by ``esprune bench ... --out`` (one suite, or ``bench all``'s suites by name)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read benchmark file {path}: {exc}") from None
    if not isinstance(data, dict) or not data or not ("rows" in data or all(isinstance(v, dict) and "rows" in v
                                                                               for v in data.values())):
        raise ConfigError(f"{path} is not a benchmark file of esprune bench (no rows)")
    return data


def suites(result: dict) -> dict:
    """``{suite name: suite result}`` of a one-suite result or of ``bench all``'s."""
    if "rows" in result:
        name = result["rows"][0].get("suite", "suite") if result["rows"] else "suite"
        return {name: result}
    return result


def compare(new: dict, old: dict) -> dict:
    """Rows present in both results, each with ``ratio`` = old median seconds / new median seconds (> 1: the new
    run is faster), and the machines of both."""
    old_rows = {_key(r): r for s in suites(old).values() for r in s["rows"]}
    rows = []
    for s in suites(new).values():
        for r in s["rows"]:
            o = old_rows.get(_key(r))
            if o is None or "median_s" not in r or "median_s" not in o:
                continue
            rows.append({**{k: r.get(k) for k in KEY}, "new_s": r["median_s"], "old_s": o["median_s"],
                         "ratio": o["median_s"] / r["median_s"]})
    machines = {}
    for label, result in (("new", new), ("old", old)):
        first = next(iter(suites(result).values()))
        machines[label] = {k: first.get("machine", {}).get(k) for k in MACHINE}
    return {"machines": machines, "rows": rows}


def _key(row) -> tuple:
    return tuple(row.get(k) for k in KEY)


COLUMNS = [("suite", 11, "suite", ""), ("workload", 50, "workload", ""), ("backend", 8, "backend", ""),
           ("path", 9, "path", ""), ("density", 8, "density", ".3f"), ("old s", 10, "old_s", ".4f"),
           ("new s", 10, "new_s", ".4f"), ("old/new", 8, "ratio", ".2f")]


def render(result: dict) -> str:
    lines = [f"{label}: " + ", ".join(f"{k} {v}" for k, v in m.items() if v is not None)
             for label, m in result["machines"].items()]
    if not result["rows"]:
        return "\n".join(lines + ["no row of the new run matches a row of the old file"])
    return "\n".join(lines + [table(result["rows"], COLUMNS), "old/new > 1: the new run is faster"])
