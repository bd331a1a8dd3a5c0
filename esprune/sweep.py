"""Sweeps: a grid of configs (a base plus axes), one ordinary run file per point.

A grid is a TOML table (or a named grid, ``grids.py``)::

    preset = "cartpole"                   # optional starting layer (see `esprune presets`)
    [base]                                # optional: config keys every point shares
    generations = 200
    [axes]                                # required: config keys, each with a list of values
    seed = [0, 1, 2, 3, 4]
    prune = ["snr", "magnitude", "random-reinit"]
    "strategy_options.sigma_init" = [0.05, 0.1]   # a key of an option table, dotted

The points are the Cartesian product of the axes (first axis slowest). Each point's config is preset → base →
its axis values (→ ``scale``), resolved and validated like ``esprune run``'s before anything runs. Its run file is
``DIR/<key>=<value>__<key>=<value>.h5``. Running a sweep again skips finished points and resumes partial ones, so
the same command continues a killed sweep. Nothing here writes HDF5: run files belong to ``store`` and runs to
``imp``; the sweep only decides which point runs where.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import config as _config
from . import presets
from .errors import ConfigError, UserError, out_of_memory, written

MANIFEST = "sweep.json"
GRID_KEYS = ("preset", "base", "axes")


@dataclass
class Point:
    """One run of a sweep: its axis values, its resolved config and its run file."""

    name: str
    values: dict
    config: dict
    path: Path


# ---------------------------------------------------------------------------------------------- the grid
def load(path) -> dict:
    """A grid from a TOML file (ConfigError when missing or not TOML)."""
    return _config.load_toml(path)


def expand(grid: dict, directory, scale: float = 1.0, prepare: bool = True,
           check_files: bool = True) -> list[Point]:
    """Every point of ``grid`` with its validated config, checked against what ``directory`` already holds.

    Raises ConfigError (one line) for an unknown grid or config key, an axis that is not a non-empty list,
    two points with the same config (or the same file name), a bad value in any point, or a run file in
    ``directory`` that holds another config than its point. ``scale`` (0 < scale ≤ 1) cuts the training budget:
    see ``scaled``. ``prepare``: load and verify each task's data once (as ``esprune run`` does);
    ``check_files``: check the files already there (``check_existing``; off when only some points will run).
    """
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"unknown grid key(s) {', '.join(unknown)}; a grid has: preset, [base], [axes]")
    base = grid.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError("the grid's base must be a table of config keys ([base])")
    axes = _axes(grid.get("axes"))
    if not 0 < scale <= 1:
        raise ConfigError(f"scale must lie in (0, 1], got {scale}")
    names = _short_names(list(axes))
    points, seen, files = [], {}, {}
    directory = Path(directory)
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        name = "__".join(f"{names[key]}={_text(value)}" for key, value in values.items())
        name = re.sub(r"[^A-Za-z0-9._=+-]", "_", name)
        preset = values.get("preset", grid.get("preset"))
        layers = [presets.get(preset) if preset else {}, base, _layer(values)]
        try:
            cfg = _config.resolve(*layers, prepare=False)
            if scale != 1:
                cfg = _config.resolve(cfg, scaled(cfg, scale), prepare=False)
        except ConfigError as err:
            raise ConfigError(f"grid point {name}: {err}") from None
        key = json.dumps(cfg.to_dict(), sort_keys=True)
        if key in seen:
            raise ConfigError(f"grid points {seen[key]} and {name} have the same config; remove the duplicate value")
        if name in files:
            raise ConfigError(f"grid points {files[name]} and {values} both give the file name {name}.h5")
        seen[key], files[name] = name, values
        points.append(Point(name, values, cfg, directory / f"{name}.h5"))
    if prepare:
        prepare_tasks(points)
    if check_files:
        check_existing(points)
    return points


def check_existing(points: list[Point]) -> None:
    """Raises ConfigError when a run file already at a point's path holds another config than the point's."""
    for point in points:
        _check_existing(point)


def check_same_grid(directory, grid: dict) -> None:
    """Raises ConfigError when ``directory`` already holds the manifest of another grid: running this one there
    would replace it, and the other grid's points not started yet would vanish from ``sweep status``."""
    path = Path(directory) / MANIFEST
    try:
        stored = json.loads(path.read_text()).get("grid")
    except (OSError, ValueError, AttributeError):
        return  # none yet (or not one esprune wrote): this grid's manifest will be written
    if stored != json.loads(json.dumps(grid, default=str)):
        raise ConfigError(f"{directory} holds the sweep of another grid ({path}); give this grid another --dir, "
                          f"or remove {path} to make {directory} this grid's")


def prepare_tasks(points: list[Point]) -> None:
    """Load and verify each task's data once, for these points (missing data stops the sweep before it
    starts); raises the task's UserError, naming the first point that needs it."""
    tasks = {}
    for p in points:
        tasks.setdefault(json.dumps([p.config.task, dict(p.config.task_options)], sort_keys=True), p)
    for p in tasks.values():
        try:
            _config.validate(p.config, prepare=True)
        except UserError as err:
            raise type(err)(f"grid point {p.name}: {err}") from None


def select(points: list[Point], only: list[tuple[str, str]]) -> list[Point]:
    """The points whose axis values match ``only``, pairs (axis, value) as ``--only AXIS=VALUE`` gives them:
    one axis named several times matches any of its values, different axes must all match. An axis is named
    by its key or by its short name in the file names (``sigma_init`` for ``strategy_options.sigma_init``).
    A number axis value matches any spelling of the same number (``1``, ``1.0``, ``01``, ``.05`` for 0.05);
    a text value matches itself, bare or JSON-quoted; other values (true, lists) match their JSON text. Order
    as in ``points``. Raises ConfigError for a name that is not an axis or a value the axis does not have."""
    if not only:
        return points
    axes = {key: [] for key in points[0].values} if points else {}
    for p in points:
        for key, value in p.values.items():
            if value not in axes[key]:
                axes[key].append(value)
    short = _short_names(list(axes))
    wanted: dict[str, list] = {}
    for name, given in only:
        name = name.strip()
        key = name if name in axes else next((k for k, s in short.items() if s == name), None)
        if key is None:
            raise ConfigError(f"--only {name}={given}: {name} is not an axis of this grid (axes: "
                              f"{', '.join(axes)})")
        chosen = [value for value in axes[key] if _matches(given.strip(), value)]
        if not chosen:
            raise ConfigError(f"--only {name}={given}: axis {key} has the values "
                              f"{', '.join(_text(v) for v in axes[key])} (one value per --only; repeat it for "
                              "several)")
        wanted.setdefault(key, []).extend(chosen)
    return [p for p in points if all(p.values[key] in values for key, values in wanted.items())]


# a number as JSON, Python or TOML may write it, in ASCII digits only (float() also takes other scripts' digits)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _matches(given: str, value) -> bool:
    """Whether ``--only``'s text ``given`` names the axis value ``value`` (see ``select``)."""
    if isinstance(value, str):
        return given == value or given == json.dumps(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return bool(_NUMBER.fullmatch(given)) and float(given) == value
    try:
        parsed = json.loads(given)
    except json.JSONDecodeError:
        return False
    return type(parsed) is type(value) and parsed == value


def scaled(cfg: dict, scale: float) -> dict:
    """The budget keys of ``cfg`` cut by ``scale``: generations, eval_every and checkpoint_every, and the GD
    trainer's epochs and timesteps where given; each rounded, at least 1. The sparsity levels (iterations,
    keep), the population and the hyperparameters stay, so a scaled sweep draws the same x-axis with less
    training per ticket."""
    def cut(value):
        return max(1, round(value * scale))

    out = {"generations": cut(cfg["generations"])}
    out["eval_every"] = min(cut(cfg["eval_every"]), out["generations"])
    out["checkpoint_every"] = min(cut(cfg["checkpoint_every"]), out["generations"])
    gd = {k: cut(v) for k, v in cfg["gd_options"].items() if k in ("epochs", "timesteps")}
    if gd:
        out["gd_options"] = gd
    return out


def _axes(axes) -> dict:
    """The axes as {key: values}, dotted keys for option tables ("strategy_options.sigma_init")."""
    if not isinstance(axes, dict) or not axes:
        raise ConfigError("a grid needs an [axes] table with at least one key, e.g. seed = [0, 1, 2]")
    flat = {}
    for key, values in axes.items():
        if key in _config.OPTION_TABLES and isinstance(values, dict):  # TOML's dotted keys nest: undo it
            flat.update({f"{key}.{k}": v for k, v in values.items()})
        else:
            flat[key] = values
    for key, values in flat.items():
        head, _, option = key.partition(".")
        if key != "preset" and head not in _config.KEYS:
            raise ConfigError(f"unknown axis key {key!r}; known: preset, {', '.join(_config.KEYS)} "
                              f"(options as {_config.OPTION_TABLES[1]}.NAME)")
        if option and head not in _config.OPTION_TABLES:
            raise ConfigError(f"axis key {key!r}: only {', '.join(_config.OPTION_TABLES)} take dotted option names")
        if not isinstance(values, list):
            raise ConfigError(f"axis {key} must be a list of values, e.g. {key} = [{_text(values)}], "
                              f"got {written(values)}")
        if not values:
            raise ConfigError(f"axis {key} is empty: give it at least one value")
    return flat


def _layer(values: dict) -> dict:
    """Axis values as a config layer: dotted keys go into their option table."""
    layer = {}
    for key, value in values.items():
        head, _, option = key.partition(".")
        if key == "preset":
            continue
        if option:
            layer.setdefault(head, {})[option] = value
        else:
            layer[key] = value
    return layer


def _short_names(keys: list) -> dict:
    """An axis's name in file names: the option name alone, unless two axes would then share it."""
    short = {k: k.rpartition(".")[2] for k in keys}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k if s in clash else s) for k, s in short.items()}


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _check_existing(point: Point) -> None:
    """A run file already at the point's path must hold the point's config (then it is skipped or resumed)."""
    if not point.path.exists():
        return
    from .store import RunFile

    stored = RunFile.open(point.path).config
    mine = json.loads(json.dumps(point.config.to_dict()))
    if stored != mine:
        keys = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise ConfigError(f"{point.path} holds a run of another config than grid point {point.name} (differs in "
                          f"{', '.join(keys)}); use another --dir, or remove the file to run the point again")


# ---------------------------------------------------------------------------------------------- running
def write_manifest(points: list[Point], directory, grid: dict) -> None:
    """DIR/sweep.json: the grid and its points, so that `sweep status` lists points not started yet."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"grid": grid, "points": [{"name": p.name, "values": p.values, "file": p.path.name} for p in points]}
    tmp = directory / f"{MANIFEST}.{os.getpid()}.tmp"  # one per process: two sweep starts of a grid may race here
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, directory / MANIFEST)


def run_point(point: Point, progress=None) -> str:
    """Run, resume or skip one point; returns "finished", "skipped" (already done) or "resumed". Raises
    RunFileBusy while another esprune process runs the point (it holds the run file's lock); the check and the
    lock are taken so that two sweeps of one grid racing for a point never both run it nor fail on it.

    ``progress(name, done, total)``: generations (GD: steps) done of the point's total, after each one. The run's
    warnings (a disconnected ticket) go to stderr as lines "NAME: warning: ...", from worker processes too."""
    from .imp import Experiment
    from .store import RunFileError

    exp, how = None, "finished"
    if not point.path.exists():
        try:
            exp = Experiment.start(point.config, point.path)  # holds the lock from here
        except RunFileError:
            if not point.path.exists():  # a real error, or another process holds the lock of a file not yet written
                raise
            # another process wrote the file between the check and the start: as for a file that was there
    if exp is None:
        exp, how = Experiment.resume(point.path), "resumed"
    try:
        exp.run.lock()  # RunFileBusy while another process runs it; whether it is finished is read under the lock
        total = (exp.K + 1) * exp.G
        if exp.finished:
            exp.run.unlock(remove=True)
            if progress:
                progress(point.name, total, total)
            return "skipped"
        if progress:
            def step(k, g, best, sparsity):
                progress(point.name, k * exp.G + g, total)
            progress(point.name, _done(exp), total)
        else:
            step = None
        exp.execute(step, warn=lambda line: print(f"{point.name}: warning: {line}", file=sys.stderr, flush=True))
    finally:
        exp.run.unlock()
    return how


def _done(exp) -> int:
    ck = exp.run.checkpoint()
    return (exp.K + 1) * exp.G if ck["finished"] else int(ck["iteration"]) * exp.G + int(ck["generation"])


def run(points: list[Point], jobs: int = 1, progress=None) -> dict:
    """Run every point, ``jobs`` at a time in separate processes (numba's threads split between them).

    ``progress(name, done, total)`` as in ``run_point``, in this process. Returns {name: outcome}: "finished",
    "resumed", "skipped", "busy" (another process is running it), or the error line of a point that failed
    (the other points still run).
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1 or len(points) == 1:
        return {p.name: attempt(p, progress) for p in points}
    return _run_pool(points, jobs, progress)


def attempt(point: Point, progress=None) -> str:
    """``run_point``, with a user error or running out of memory returned as its line ("error: ...") so that
    the other points still run, and "busy" for a point whose run file another esprune process is writing: two
    ``sweep start`` of one grid (two machines on a shared disk) share its points instead of failing."""
    from .store import RunFileBusy

    try:
        return run_point(point, progress)
    except RunFileBusy:
        return "busy"
    except UserError as err:
        return f"error: {err}"
    except (MemoryError, ValueError) as err:
        if not out_of_memory(err):
            raise
        return f"error: out of memory ({err}); this point needs more memory than this machine has"


def _run_pool(points, jobs, progress):
    import concurrent.futures as cf
    import multiprocessing as mp
    import queue as _queue

    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked numba thread pools
    events = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    outcomes = {}
    with cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                initargs=(events, threads)) as pool:
        futures = {pool.submit(_worker_run, p): p for p in points}
        pending = set(futures)
        while pending:
            try:
                while True:
                    event = events.get(timeout=0.2)
                    if progress:
                        progress(*event)
            except _queue.Empty:
                pass
            done = {f for f in pending if f.done()}
            for f in done:
                outcomes[futures[f].name] = f.result()
            pending -= done
    while not events.empty():
        event = events.get()
        if progress:
            progress(*event)
    return {p.name: outcomes[p.name] for p in points}


_EVENTS = None


def _worker_init(events, threads):
    global _EVENTS
    _EVENTS = events
    set_threads(threads)


def _worker_run(point):
    return attempt(point, lambda *event: _EVENTS.put(event))


def set_threads(n: int) -> None:
    """Use ``n`` numba threads in this process (several processes share the cores)."""
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


# ---------------------------------------------------------------------------------------------- status
def status(directory) -> list[dict]:
    """One row per point of the sweep in ``directory`` (from its manifest, plus any other run file there):
    name, state ("done", "partial (iteration K, generation G)", "not started", "unreadable: ..."),
    ``tickets_trained``: how many tickets are trained (finished iterations), ``tickets``: how many the config
    asks for (its ``iterations`` prunings after the dense iteration 0, plus one), the last trained ticket's
    sparsity and test score; the counts and scores are None before the run file exists."""
    from .store import RunFile

    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    manifest = directory / MANIFEST
    names = [p["file"] for p in json.loads(manifest.read_text())["points"]] if manifest.exists() else []
    names += sorted(p.name for p in directory.glob("*.h5") if p.name not in names)
    if not names:
        raise ConfigError(f"{directory} holds no sweep (no {MANIFEST} and no run files)")
    rows = []
    for name in names:
        path = directory / name
        row = {"point": Path(name).stem, "state": "not started", "tickets_trained": None, "tickets": None,
               "sparsity": None, "test": None}
        if path.exists():
            try:
                run = RunFile.open(path)
                ck, summary, cfg = run.checkpoint(), run.summary(), run.config
            except UserError as err:
                row["state"] = f"unreadable: {err}"
                rows.append(row)
                continue
            row["tickets"] = cfg["iterations"] + 1
            row["tickets_trained"] = len(summary)
            if summary:
                row["sparsity"], row["test"] = summary[-1]["sparsity"], summary[-1]["test"]
            if ck and ck["finished"]:
                row["state"] = "done"
            else:
                row["state"] = f"partial (iteration {ck['iteration']}, generation {ck['generation']})"
        rows.append(row)
    return rows


def render_status(rows: list[dict]) -> str:
    width = max(len(r["point"]) for r in rows)
    lines = []
    for r in rows:
        done = f"{r['tickets_trained']}/{r['tickets']} tickets trained" if r["tickets"] is not None else ""
        last = (f"sparsity {r['sparsity']:.4f} test {r['test']:.4g}" if r["test"] is not None else "")
        lines.append(f"{r['point']:<{width}}  {r['state']:<40} {done:<24} {last}".rstrip())
    return "\n".join(lines)
