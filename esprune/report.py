"""What a finished run shows: the summary table, its one-line setting, its config as TOML, its training curves
(table, CSV, JSON), curve labels and the seed band (the figures across runs are ``report_grid``'s)."""
from __future__ import annotations

import csv
import json
import math
import re

import numpy as np

from . import config as _config

from .errors import UserError
from .store import RunFile

COLUMNS = (("iteration", "iter", "{:d}"), ("sparsity", "sparsity", "{:.4f}"), ("weights", "weights", "{:d}"),
           ("effective", "effective", "{:.3g}%"), ("final", "final", "{:.2f}"), ("best", "best", "{:.2f}"),
           ("test", "test", "{:.2f}"), ("threshold", "threshold", "{:.4g}"), ("seconds", "seconds", "{:.1f}"))
NONE = "—"  # a value that does not exist (iteration 0's threshold; any threshold of a random mask)


def table(rows: list[dict]) -> str:
    """The summary rows as an aligned text table (a NaN value, one that does not exist, as "—")."""
    cells = [[head for _, head, _ in COLUMNS]]
    cells += [[cell(fmt, row[key]) for key, _, fmt in COLUMNS] for row in rows]
    return _align(cells)


def notes(rows: list[dict]) -> list[str]:
    """Lines to print under the summary table: the iterations whose ticket is disconnected (no input reaches
    an output: ``RunFile.summary``'s ``disconnected``) and its empty layers, consecutive iterations alike as one
    range."""
    runs = []  # [first, last, empty layers] of consecutive disconnected iterations with the same empty layers
    for row in rows:
        if not row["disconnected"]:
            continue
        k, empty = row["iteration"], row["empty_layers"]
        if runs and runs[-1][1] == k - 1 and runs[-1][2] == empty:
            runs[-1][1] = k
        else:
            runs.append([k, k, empty])
    out = []
    for first, last, empty in runs:
        which = f"iteration {first}" if first == last else f"iterations {first}–{last}"
        why = f"{', '.join(empty)} empty" if empty else "no layer empty, but no path of active weights"
        out.append(f"{which}: disconnected ({why}): no input reaches an output, the network computes a constant")
    return out


def cell(fmt: str, value) -> str:
    """``value`` formatted by ``fmt``; None or NaN (a number that does not exist) as "—"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    return fmt.format(value)


def iterations_text(K: int) -> str:
    """What ``iterations = K`` means, in the words every output uses: iteration 0 trains the dense network,
    then K prunings, so K + 1 tickets are trained (PAPER_SETTINGS.md)."""
    return f"iterations 0..{K} (dense + {K} pruning{'s' if K != 1 else ''}: {K + 1} trained ticket{'s' * (K != 0)})"


def tickets_text(K: int, source) -> str:
    """What ``iterations = K`` means in a transfer run (config key ``tickets_from``): no pruning, iteration k
    trains ticket k of the run file ``source``."""
    return f"tickets 0..{K} of {source} ({K + 1} trained ticket{'s' * (K != 0)}, no pruning)"


def _align(cells: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


# ---------------------------------------------------------------------------------------------- a run's log
def log_every(generations: int) -> int:
    """How many generations apart a run sent to a log file reports: a tenth of an iteration (at least 1)."""
    return max(1, generations // 10)


def iteration_tag(k: int, K: int) -> str:
    """"iter 3 of 0..14": iteration ``k`` of a run whose iterations are 0 (dense) to ``K``."""
    return f"iter {k} of 0..{K}"


def generation_line(k: int, K: int, g: int, G: int, best: float, sparsity: float, elapsed: float,
                    unit: str = "gen", eta: float | None = None) -> str:
    """One log line inside iteration ``k`` of ``0..K``: generation ``g`` of ``G`` (``unit``: "step" for gradient
    descent), the best test score of this iteration so far, the ticket's sparsity, the seconds since the
    command started and (``eta``, seconds; None: not known yet) the time left."""
    score = f"{best:.2f}" if math.isfinite(best) else "none yet"
    left = "" if eta is None else f" · ETA {_clock(eta)}"
    return (f"{iteration_tag(k, K)} · {unit} {g}/{G} · best test {score} · sparsity {sparsity:.4f} · "
            f"elapsed {_clock(elapsed)}{left}")


def iteration_line(row: dict, K: int) -> str:
    """An iteration's summary row (``store.SUMMARY_FIELDS``) as one log line, with the table's formats."""
    cells = " · ".join(f"{head} {cell(fmt, row[key])}" for key, head, fmt in COLUMNS[1:-1])
    return f"{iteration_tag(row['iteration'], K)} done · {cells} · {row['seconds']:.1f} s"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


# ---------------------------------------------------------------------------------------------- config as TOML
def config_ordered(config: dict) -> dict:
    """``config`` with its keys in ``RunConfig`` order (unknown keys after them, sorted)."""
    order = [k for k in _config.KEYS if k in config] + sorted(set(config) - set(_config.KEYS))
    return {k: config[k] for k in order}


def config_toml(config: dict) -> str:
    """``config`` (a run file's stored config) as TOML text that ``esprune run FILE.toml`` reads back to the same
    config: top-level keys in ``RunConfig`` order, then one table per option table (empty ones too). TOML has no
    null: None values are left out (a top-level key left out takes its default, None). Raises TypeError on a
    value TOML cannot hold."""
    lines, tables = [], []
    for key, value in config_ordered(config).items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for name, table in tables:
        entries = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        lines += ["", f"[{_toml_key(name)}]", *entries]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes (\" \\ \n \t \uXXXX for control characters) are TOML's; TOML also wants DEL escaped
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"a config value TOML cannot hold: {value!r}")


# ---------------------------------------------------------------------------------------------- training curves
CURVE_FIELDS = ("iteration", "generation", "train_mean", "train_max", "test")


def curve_rows(curves: list[tuple[int, np.ndarray, np.ndarray]]) -> list[dict]:
    """One row per finished iteration and generation (``RunFile.curves()`` flattened): ``iteration``, ``generation``
    (1..G; for gradient descent the optimizer step or PPO update), ``train_mean`` and ``train_max`` (the population's
    mean and max training fitness in that generation; GD: −batch loss twice, or PPO's mean and max episode return),
    ``test`` (the test score of the search mean after that generation, None where it was not measured)."""
    rows = []
    for k, train, evals in curves:
        tests = {int(g): float(score) for g, score in np.asarray(evals).reshape(-1, 2)}
        last = max([len(train), *tests])
        for g in range(1, last + 1):
            mean, top = (float(v) for v in train[g - 1]) if g <= len(train) else (math.nan, math.nan)
            rows.append({"iteration": k, "generation": g, "train_mean": mean, "train_max": top,
                         "test": tests.get(g)})
    return rows


def curves_table(rows: list[dict]) -> str:
    """The rows where the test score was measured, as an aligned text table (every row: ``curves_csv``/JSON)."""
    cells = [["iter", "gen", "train mean", "train max", "test"]]
    cells += [[str(r["iteration"]), str(r["generation"]), f"{r['train_mean']:.5g}", f"{r['train_max']:.5g}",
               f"{r['test']:.5g}"] for r in rows if r["test"] is not None]
    return _align(cells)


def curves_json(rows: list[dict]) -> str:
    """The rows as strict JSON, a list of objects one per line; NaN (a generation with no finite fitness) becomes
    null."""
    objects = [json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
               for r in rows]
    return "[\n" + ",\n".join(objects) + "\n]" if objects else "[]"


def write_curves_csv(rows: list[dict], path) -> None:
    """The rows as CSV with a header (``CURVE_FIELDS``); floats at full precision (``repr``), an unmeasured test
    score as an empty cell, NaN as ``nan``."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CURVE_FIELDS)
        for r in rows:
            w.writerow(["" if r[k] is None else r[k] for k in CURVE_FIELDS])


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
    """"snr tickets of snes → gd": what was transferred from where (the source file may be gone); across tasks
    both sides name theirs: "snr tickets of snes, fashion_mnist → snes, mnist"."""
    try:
        source = RunFile.open(config["tickets_from"]).config
    except UserError:
        return f"transfer → {trainer(config)}"
    if source["task"] != config["task"]:
        return f"{source['prune']} tickets of {trainer(source)}, {source['task']} → {trainer(config)}, " \
               f"{config['task']}"
    return f"{source['prune']} tickets of {trainer(source)} → {trainer(config)}"


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
