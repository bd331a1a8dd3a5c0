"""Reports over many runs (a sweep's directory or a list of run files): seed means with standard-error bands,
tables of them, and the paper's normalised aggregate over tasks.

Runs are grouped by their whole config except the seed; a group is one curve: at each IMP iteration the mean of
the metric over its seeds and the standard error SE = s/√n (s the sample standard deviation, ddof 1; PAPER.md:
"bands are mean ± std/√5"). Curves are named by the config keys whose values differ between them. The aggregate
(the paper's Figs. 1 and 3) min–max normalises each task's curves over all of them and all sparsity levels, then
averages a method's normalised curve over the tasks; a method is the ticket maker and who trained it (ES or GD).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .config import OPTION_TABLES as _OPTION_TABLES
from .errors import UserError
from .outputs import writing
from .report import BANDS, band, label, trainer
from .store import RunFile



def collect(paths, warn=print) -> list[tuple[Path, dict, list]]:
    """``(path, config, summary rows)`` of every run in ``paths`` (directories give their ``*.h5`` files). A file
    given twice, a run whose config (seed included) repeats another's, or a run with no finished iteration is
    left out with a warning (``warn(line)``): a duplicate would count one seed twice."""
    files, seen = [], {}
    for p in map(Path, paths):
        found = sorted(p.glob("*.h5")) if p.is_dir() else [p]
        if p.is_dir() and not found:
            raise UserError(f"{p} holds no run files (*.h5)")
        for f in found:
            key = f.resolve()
            if key in seen:
                warn(f"warning: {f} is given twice (as {seen[key]}); counted once")
                continue
            seen[key] = f
            files.append(f)
    runs, configs, unfinished = [], {}, set()
    for f in files:
        run = RunFile.open(f)
        cfg, rows = run.config, run.summary()
        if not rows:
            warn(f"warning: {f} has no finished iteration yet; left out")
            continue
        key = json.dumps(cfg, sort_keys=True)
        if key in configs:
            warn(f"warning: {f} holds the same config as {configs[key]} (seed {cfg['seed']} twice); left out")
            continue
        configs[key] = f
        runs.append((f, cfg, rows))
        if not run.finished:
            unfinished.add(f)
    if not runs:
        raise UserError("no finished runs to report")
    return _without_unfinished_seeds(runs, unfinished, warn)


def _without_unfinished_seeds(runs, unfinished, warn):
    """A run still going (or stopped) is left out of a curve that has finished seeds: kept, it would cut every
    seed's curve to its few iterations (``curves`` cuts a group to its common length) while a sweep runs. A curve
    with no finished seed keeps them all, cut."""
    done = {_identity(cfg) for f, cfg, _ in runs if f not in unfinished}
    kept = []
    for f, cfg, rows in runs:
        if f in unfinished and _identity(cfg) in done:
            warn(f"warning: {f} is unfinished ({len(rows)} of {cfg['iterations'] + 1} iterations); left out of "
                 "its curve, whose other seeds have finished")
            continue
        kept.append((f, cfg, rows))
    return kept


def curves(runs, metric: str = "test", warn=print, band_kind: str = "se") -> list[dict]:
    """One curve per group of runs equal but for the seed: label, task, method, seeds, iteration, sparsity,
    weights_remaining (%), effective_remaining (% of the weights on some input→output path, seed mean; see
    ``esprune.effective``), disconnected_seeds (how many seeds' tickets no input reaches an output of), mean
    and se per iteration (se NaN for one seed), and the band drawn (``low``, ``high``: ``report.band`` of
    ``band_kind``, mean ± SE by default). Seeds that ran further are cut to the group's common length."""
    if band_kind not in BANDS:
        raise UserError(f"unknown band {band_kind!r}; choose one of {', '.join(BANDS)}")
    groups = {}
    for path, cfg, rows in runs:
        groups.setdefault(_identity(cfg), []).append((path, cfg, rows))
    flat = [_flatten(members[0][1]) for members in groups.values()]
    labels = _labels(flat)
    out = []
    for members, label in zip(groups.values(), labels):
        cfg = members[0][1]
        lengths = [len(rows) for _, _, rows in members]
        n = min(lengths)
        if max(lengths) > n:
            warn(f"warning: {label}: the seeds reached {n}..{max(lengths)} iterations; the curve stops at {n} "
                 "(unfinished runs?)")
        values = np.array([[row[metric] for row in rows[:n]] for _, _, rows in members])
        sparsity = np.array([row["sparsity"] for row in members[0][2][:n]])
        effective = np.array([[row["effective"] for row in rows[:n]] for _, _, rows in members])
        disconnected = np.array([[row["disconnected"] for row in rows[:n]] for _, _, rows in members])
        seeds = len(members)
        se = values.std(0, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.full(n, np.nan)
        mean, low, high = band(values, band_kind)
        out.append({"label": label, "task": cfg["task"], "method": method(cfg), "seeds": seeds,
                    "files": [str(p) for p, _, _ in members], "iteration": list(range(n)),
                    "sparsity": sparsity.tolist(), "weights_remaining": (100 * (1 - sparsity)).tolist(),
                    "effective_remaining": effective.mean(0).tolist(),
                    "disconnected_seeds": disconnected.sum(0).astype(int).tolist(), "mean": mean.tolist(),
                    "se": se.tolist(), "band": BANDS[band_kind],
                    "low": low.tolist(), "high": high.tolist()})
    return out


def _labels(flat: list[dict]) -> list[str]:
    """Each curve's name: the keys whose values differ between the curves of its task (each task is a panel of
    its own), "prune" first; a transfer's curve is named by what it transferred ("snr tickets of sep_cma_es →
    snes") and the other keys that differ. Keys set in only some configs (a GD run's gd_options) are left out unless the
    names would then clash."""
    out = [None] * len(flat)
    for task in {f["task"] for f in flat}:
        mine = [i for i, f in enumerate(flat) if f["task"] == task]
        # a transfer is named by what it transferred (below), so its source path names no other curve
        keys = sorted({k for i in mine for k in flat[i] if k != "tickets_from"}, key=lambda k: (k != "prune", k))
        values = {k: [json.dumps(flat[i].get(k)) for i in mine] for k in keys}
        loose = [k for k in keys if len(set(values[k])) > 1]
        strict = [k for k in loose if len(set(values[k]) - {"null"}) > 1]
        for vary in (strict, loose):
            names = [_name(flat[i], vary) for i in mine]
            if len(set(names)) == len(names):
                break
        for i, name in zip(mine, names):
            out[i] = name
    return out


def _name(flat: dict, vary: list) -> str:
    """One curve's name from the keys ``vary``; a transfer is "snr tickets of sep_cma_es → snes" (not
    "trainer=snes": say that it is a transfer) plus whatever else varies."""
    transfer = flat.get("tickets_from")
    if transfer:
        return " · ".join([transfer, *(f"{k}={_text(flat.get(k))}" for k in vary if k not in ("trainer", "prune"))])
    return " · ".join(f"{k}={_text(flat.get(k))}" for k in vary) or flat["prune"]


def method(config: dict) -> str:
    """What the aggregate averages over tasks: the ticket maker, and "gd" for gradient-descent runs."""
    return f"{config['prune']}{' (gd)' if config.get('trainer', 'es') == 'gd' else ''}"


def aggregate(curves_: list[dict]) -> dict:
    """The paper's normalised aggregate: per task, (mean − lo) / (hi − lo) with lo, hi the smallest and largest
    mean over all of that task's curves and iterations; then per method the average over the tasks, at the
    iterations every task reached. {} when the curves cover fewer than two tasks."""
    tasks = sorted({c["task"] for c in curves_})
    if len(tasks) < 2:
        return {}
    scaled = {}
    for task in tasks:
        mine = [c for c in curves_ if c["task"] == task]
        lo = min(min(c["mean"]) for c in mine)
        hi = max(max(c["mean"]) for c in mine)
        for c in mine:
            norm = (np.asarray(c["mean"]) - lo) / (hi - lo) if hi > lo else np.zeros(len(c["mean"]))
            scaled.setdefault(c["method"], []).append((c, norm))
    out = {}
    for name, parts in scaled.items():
        n = min(len(norm) for _, norm in parts)
        out[name] = {"tasks": sorted({c["task"] for c, _ in parts}), "curves": len(parts), "iteration": list(range(n)),
                     "weights_remaining": parts[0][0]["weights_remaining"][:n],
                     "normalised": np.mean([norm[:n] for _, norm in parts], axis=0).tolist()}
    return out


def table_paths(out) -> tuple[Path, Path]:
    """Where the tables of a report whose figure is ``out`` go: ``report.png`` → ``report.json``, ``report.csv``."""
    out = Path(out)
    return out.with_suffix(".json"), out.with_suffix(".csv")


def write_tables(curves_, agg, prefix) -> tuple[Path, Path]:
    """PREFIX.json ({metric curves, aggregate}) and PREFIX.csv (one row per curve and iteration; the
    aggregate's rows have task "aggregate" and its normalised value as the mean)."""
    js, cs = table_paths(prefix)
    clean = lambda v: None if isinstance(v, float) and v != v else v  # noqa: E731  strict JSON: NaN → null
    js.write_text(json.dumps({"se": "standard error s/sqrt(n), s with ddof 1",
                              "curves": [{k: ([clean(x) for x in v] if isinstance(v, list) else v)
                                          for k, v in c.items()} for c in curves_],
                              "aggregate": agg}, indent=2) + "\n")
    with cs.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["curve", "task", "method", "seeds", "iteration", "sparsity", "weights_remaining", "mean", "se",
                    "effective_remaining", "disconnected_seeds"])
        for c in curves_:
            for i in c["iteration"]:
                se = c["se"][i]
                w.writerow([c["label"], c["task"], c["method"], c["seeds"], i, c["sparsity"][i],
                            c["weights_remaining"][i], c["mean"][i], "" if se != se else se,
                            c["effective_remaining"][i], c["disconnected_seeds"][i]])
        for name, a in agg.items():
            for i in a["iteration"]:
                w.writerow([name, "aggregate", name, "", i, "", a["weights_remaining"][i], a["normalised"][i], "",
                            "", ""])
    return js, cs


def figure(curves_, agg, out, metric: str = "test") -> None:
    """One panel per task (curves with their ± SE bands) and, over two or more tasks, the aggregate's panel;
    x: weights remaining (%), log scale, dense on the left. Effective sparsity (``esprune.effective``): a
    dotted line in the curve's colour draws the same scores against the effective weights remaining (seed mean,
    where it is above 0 and differs from the nominal), and a cross marks each iteration where at least one
    seed's ticket is disconnected (no input reaches an output)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError:
        raise UserError("esprune report needs matplotlib: pip install 'esprune[plot]'") from None
    tasks = sorted({c["task"] for c in curves_})
    panels = len(tasks) + bool(agg)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        marks = []  # legend entries of the effective-sparsity marks this panel draws
        for c in (c for c in curves_ if c["task"] == task):
            x, mean, low, high = map(np.asarray, (c["weights_remaining"], c["mean"], c["low"], c["high"]))
            how = f" ({c['band']})" if c["seeds"] > 1 else ""
            (line,) = ax.plot(x, mean, marker="o", ms=3, label=f"{c['label']}, {c['seeds']} seed"
                                                               f"{'s' * (c['seeds'] > 1)}{how}")
            if c["seeds"] > 1:
                ax.fill_between(x, low, high, alpha=0.2, color=line.get_color())
            marks += _effective_marks(ax, c, x, mean, line.get_color())
        _axis(ax, f"{metric} score", task)
        if marks:
            handles, names = ax.get_legend_handles_labels()
            styles = {"effective": Line2D([], [], color="gray", ls=":", label="dotted: vs effective weights remaining"),
                      "disconnected": Line2D([], [], color="gray", ls="", marker="x", ms=7,
                                             label="×: ticket disconnected (≥ 1 seed)")}
            extra = [styles[m] for m in styles if m in marks]
            ax.legend(handles + extra, names + [h.get_label() for h in extra], fontsize=7)
    if agg:
        ax = axes[0][-1]
        for name, a in agg.items():
            ax.plot(a["weights_remaining"], a["normalised"], marker="o", ms=3,
                    label=f"{name} ({len(a['tasks'])} tasks)")
        _axis(ax, "normalised score (min–max per task)", "aggregate over tasks")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _effective_marks(ax, c, x, mean, color) -> list[str]:
    """Draw curve ``c``'s effective-sparsity marks (see ``figure``); returns which kinds it drew."""
    drawn = []
    eff = np.asarray(c["effective_remaining"])
    alive = eff > 0
    if alive.any() and np.any(np.abs(eff[alive] - x[alive]) > 0.01 * x[alive]):
        ax.plot(eff[alive], mean[alive], ls=":", lw=1, color=color)
        drawn.append("effective")
    cut = np.asarray(c["disconnected_seeds"]) > 0
    if cut.any():
        ax.plot(x[cut], mean[cut], ls="", marker="x", ms=7, mew=1.5, color=color)
        drawn.append("disconnected")
    return drawn


def report(paths, out, metric: str = "test", warn=print, band_kind: str = "se") -> dict:
    """Collect, group, write OUT (figure), OUT's .json and .csv; returns {curves, aggregate, json, csv}.
    ``band_kind``: the band drawn over the seeds, "se" (mean ± SE, the paper's) or "minmax". A write that fails
    raises OutputError (check the paths first: ``outputs.check_all([out, *table_paths(out)])``)."""
    cs = curves(collect(paths, warn), metric, warn, band_kind)
    agg = aggregate(cs)
    with writing("report"):
        js, table = write_tables(cs, agg, out)
        figure(cs, agg, out, metric)
    return {"curves": cs, "aggregate": agg, "json": str(js), "csv": str(table)}


PAPER_REMAINING = (100.0, 32.8, 10.7, 3.5, 1.44)  # the weights remaining (%) the paper's figures are read at


def text_table(curves_, at=None) -> str:
    """The curves' means ± SE as a text table, one row per IMP iteration and one column per curve, grouped by task.

    ``at``: weights remaining (%) to show; each picks the iteration whose remaining percentage is nearest
    (PAPER_REMAINING gives the paper's 100, 32.8, 10.7, 3.5, 1.44 % = iterations 0, 5, 10, 15, 19 at keep 0.8);
    None shows every iteration. A curve that did not reach a row's iteration shows "—"; one seed shows no SE.
    Each cell ends with the curve's effective weights remaining ([eff …%], seed mean) and "×" when the ticket is
    disconnected in some seed.
    """
    blocks = []
    for task in sorted({c["task"] for c in curves_}):
        mine = [c for c in curves_ if c["task"] == task]
        longest = max(mine, key=lambda c: len(c["iteration"]))
        remaining = np.asarray(longest["weights_remaining"])
        far = []
        if at is None:
            rows = list(longest["iteration"])
        else:  # nearest on a log scale, each iteration once; say so where the nearest is far from what was asked
            nearest = {p: int(np.argmin(np.abs(np.log(remaining) - np.log(p)))) for p in at}
            rows = sorted(set(nearest.values()))
            far = [f"{p:g}% → iteration {i} ({remaining[i]:.3g}%)" for p, i in nearest.items()
                   if abs(np.log(remaining[i] / p)) > np.log(1.1)]
        cells = [[task, "remaining %"] + [f"{c['label']} (n={c['seeds']})" for c in mine]]
        for i in rows:
            line = [f"iteration {i}", f"{remaining[i]:.3g}"]
            for c in mine:
                if i >= len(c["mean"]):
                    line.append("—")
                    continue
                se = c["se"][i]
                cut = " ×" if c["disconnected_seeds"][i] else ""
                line.append(f"{c['mean'][i]:.4g}" + ("" if se != se else f" ± {se:.2g}")
                            + f" [eff {c['effective_remaining'][i]:.3g}%]{cut}")
            cells.append(line)
        widths = [max(len(r[k]) for r in cells) for k in range(len(cells[0]))]
        lines = ["  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in cells]
        if far:
            lines.append("nearest iterations more than 10% away from the percentage asked: " + "; ".join(far))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _axis(ax, ylabel, title):
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _identity(cfg: dict) -> str:
    """A group's key: the config without the seed; a transfer's source stands for itself by its own group key
    (five seeds of a transfer have five source files)."""
    cfg = {k: v for k, v in cfg.items() if k != "seed"}
    if cfg.get("tickets_from"):
        try:
            cfg["tickets_from"] = _identity(RunFile.open(cfg["tickets_from"]).config)
        except UserError:
            pass
    return json.dumps(cfg, sort_keys=True)


_ES_LOOP_KEYS = ("generations", "popsize", "eval_every", "checkpoint_every", "snr_variance")  # unused by GD runs


def _flatten(cfg: dict) -> dict:
    """Config keys with option tables spelled out ("strategy_options.sigma_init"), the seed left out, and a
    trainer label that names the strategy (what tells curves apart in a legend)."""
    out = {}
    for key, value in cfg.items():
        if key == "seed":
            continue
        if key in _OPTION_TABLES and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif key == "trainer":
            out[key] = trainer(cfg)
        else:
            out[key] = value
    if cfg.get("tickets_from"):
        out["tickets_from"] = label(cfg, set())  # "snr tickets of snes → gd", not a path per seed
    out["trainer"] = trainer(cfg)  # the strategy's name, or gd (whose strategy keys are unused)
    out.pop("strategy", None)
    if cfg.get("trainer", "es") == "gd":  # the ES loop's keys are unused by a GD run: they name nothing
        out = {k: v for k, v in out.items() if not k.startswith("strategy_options.") and k not in _ES_LOOP_KEYS
               and k != "task_options.batch_size"}  # a classification task's ES batch; GD has gd_options
    return out



def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
