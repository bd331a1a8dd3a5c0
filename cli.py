"""The ``esprune`` command line: argument handling and printing only; the work is done by library calls."""
from __future__ import annotations

import contextlib
import json
import sys

import click

import esprune
from esprune import backend as _backend
from esprune.errors import UserError


class UsageError(click.ClickException):
    """A user mistake: one line on stderr, exit status 2, no traceback."""

    exit_code = 2


class Group(click.Group):
    """Turns the library's UserError into a one-line usage error wherever a command raises it."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise UsageError(str(exc)) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(esprune.__version__, prog_name="esprune")
def cli():
    """esprune: evolution strategies for sparse, backprop-free trainable networks (lottery tickets).

    Every command has --help. Backends: numpy (reference), numba (fast CPU), cupy (GPU), auto.
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
def info(as_json):
    """Versions, usable backends and the GPU, if any."""
    facts = {"esprune": esprune.__version__, "python": sys.version.split()[0],
             "backends": {name: {"usable": ok, "detail": detail} for name, (ok, detail) in _backend.probe().items()},
             "auto": _backend.get("auto").name}
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"esprune {facts['esprune']} on Python {facts['python']}")
    for name, b in facts["backends"].items():
        click.echo(f"  {name:<6} {'usable ' if b['usable'] else 'missing'}  {b['detail']}")
    click.echo(f"  auto -> {facts['auto']}")


@cli.command("strategies")
@click.option("--json", "as_json", is_flag=True, help="Print names, aliases and defaults as JSON.")
def list_strategies(as_json):
    """The evolution strategies with their hyperparameters and defaults (PAPER.md's values)."""
    from esprune import strategies

    aliases = {v: k for k, v in strategies.ALIASES.items()}
    table = {name: {"alias": aliases[name], "doc": (cls.__doc__ or "").strip(),
                    "hyperparameters": strategies.hyperparameters(name)}
             for name, cls in strategies.REGISTRY.items()}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for name, entry in table.items():
        click.echo(f"{name} ({entry['alias']}): {entry['doc']}")
        click.echo("    " + ", ".join(f"{k}={v}" for k, v in entry["hyperparameters"].items()))


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def list_tasks(as_json):
    """The tasks with their observation/action shapes, horizon and default network."""
    from esprune import tasks

    table = {name: tasks.make(name).describe() for name in tasks.TASKS}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for name, t in table.items():
        shape = "×".join(map(str, t["obs_shape"]))
        horizon = f"horizon {t['horizon']}" if t["horizon"] else f"batch {t['batch_size']}"
        click.echo(f"{name}: obs {shape}, {t['act_dim']} outputs, {t['actions']}, {horizon}, "
                   f"{t['default_net']}")


# ---------------------------------------------------------------------------------------------- experiments
@cli.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print every preset's config as JSON.")
def list_presets(as_json):
    """Named configs for `esprune run --preset`: the paper's settings and a quick demo."""
    from esprune import presets

    if as_json:
        click.echo(json.dumps({name: cfg for name, (_, cfg) in presets.PRESETS.items()}, indent=2))
        return
    for name, (about, cfg) in presets.PRESETS.items():
        click.echo(f"{name:<14} {about}")


@cli.command()
@click.argument("config_file", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="Start from a named config (see `esprune presets`); the file and flags override it.")
@click.option("--task", help="Task name, e.g. CartPole-v1 (see `esprune tasks`).")
@click.option("--strategy", help="Evolution strategy, e.g. sep_cma_es (see `esprune strategies`).")
@click.option("--prune", help="Ticket maker: snr, magnitude, random-reinit, magnitude-permute, permute-permute, "
                             "mask-reinit, movement, snip, grasp (the last two: classification tasks only).")
@click.option("--trainer", type=click.Choice(["es", "gd"]),
              help="Who trains each ticket: es (default) or gd, gradient descent (Adam on classification, PPO on "
                   "control); gd runs cannot prune by snr.")
@click.option("--gd-option", "gd_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the GD trainer (repeatable), e.g. epochs=2, lr=3e-4, batch_size=128; PPO: "
                   "timesteps=200000, n_envs=8, target=475.")
@click.option("--iterations", type=int, help="IMP iterations after the dense run (default 20).")
@click.option("--keep", type=float, help="Fraction of active weights kept per iteration (default 0.8).")
@click.option("--generations", type=int, help="ES generations per iteration (default 2000).")
@click.option("--popsize", type=int, help="Population size (default 100).")
@click.option("--seed", type=int, help="Seed of the ES noise, the episodes and the init (default 0).")
@click.option("--backend", type=click.Choice(_backend.CHOICES), help="Array backend (default numba).")
@click.option("--out", type=click.Path(dir_okay=False), help="Run file (default runs/<preset|task>-<prune>-s<seed>.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file instead of refusing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(config_file, preset, out, overwrite, quiet, **flags):
    """Run an iterative-pruning (lottery ticket) experiment and store it in an HDF5 run file.

    Layers, later wins: defaults, --preset, CONFIG_FILE (TOML with the same keys), flags. The merged config is
    checked before any work starts. The run is checkpointed as it goes: after a crash or Ctrl-C,
    `esprune resume RUN.h5` continues it to the same numbers.
    """
    from esprune import config, presets
    from esprune.imp import Experiment

    from esprune.report import setting

    flags["gd_options"] = _key_values(flags.pop("gd_option"), "--gd-option") or None
    layers = [presets.get(preset) if preset else {}, config.load_toml(config_file) if config_file else {}, flags]
    cfg = config.resolve(*layers)
    trainer = "" if cfg["trainer"] == "es" else "-gd"
    out = out or f"runs/{preset or cfg['task']}-{cfg['prune']}{trainer}-s{cfg['seed']}.h5"
    click.echo(f"esprune run: {setting(cfg)} · {cfg['iterations'] + 1} iterations → {out}", err=True)
    _execute(Experiment.start(cfg, out, overwrite=overwrite), quiet)


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new run file.")
@click.option("--task", help="Train on this task instead (same network shape, e.g. fashion_mnist → mnist).")
@click.option("--strategy", help="Train with this evolution strategy instead.")
@click.option("--trainer", type=click.Choice(["es", "gd"]), help="es or gd (gradient descent).")
@click.option("--gd-option", "gd_option", multiple=True, metavar="KEY=VALUE", help="A GD trainer option (repeatable).")
@click.option("--iterations", type=int, help="Transfer tickets 0..N only (default: as many as the source has).")
@click.option("--generations", type=int, help="ES generations per ticket.")
@click.option("--popsize", type=int, help="ES population size.")
@click.option("--seed", type=int, help="Seed of the new training (default: the source's).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file instead of refusing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def transfer(source, out, overwrite, quiet, **flags):
    """Train the tickets (init + mask of every iteration) of the SOURCE run in a new setting.

    The setting is the source's config with the given flags changed: another strategy (e.g. SNES → PGPE),
    another task with the same network (Fashion-MNIST → MNIST), or gradient descent (--trainer gd, the ES → GD
    transfer). No pruning happens: iteration k trains the source's ticket k. The result is an ordinary run
    file that records its source (config key tickets_from); `esprune report` draws it beside the source.
    """
    from esprune import config
    from esprune.imp import Experiment
    from esprune.report import setting
    from esprune.store import RunFile

    base = RunFile.open(source).config
    flags["gd_options"] = _key_values(flags.pop("gd_option"), "--gd-option") or None
    if flags["task"] and flags["task"] != base["task"]:
        base["task_options"] = {}  # the source task's options (e.g. data_dir) need not fit the new task
        base["gd_options"] = {}    # nor its trainer's (supervised vs PPO)
    if flags["trainer"] == "gd" and base["prune"] == "snr":
        base["prune"] = "magnitude"  # only a label here: no pruning happens in a transfer run
    if flags["iterations"] is None:
        flags["iterations"] = RunFile.open(source).tickets() - 1
    cfg = config.resolve(base, flags, {"tickets_from": str(source)})
    click.echo(f"esprune transfer: {source} → {setting(cfg)} → {out}", err=True)
    _execute(Experiment.start(cfg, out, overwrite=overwrite), quiet)


def _key_values(items, flag) -> dict:
    """``KEY=VALUE`` strings as a dict; values parsed as JSON where they are (numbers, true, lists), else text."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command()
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bar.")
def resume(run_file, quiet):
    """Continue a run from its last checkpoint (same numbers as an uninterrupted run on the same backend)."""
    from esprune.imp import Experiment

    exp = Experiment.resume(run_file)
    if exp.finished:
        click.echo(f"{run_file} is already finished.", err=True)
    _execute(exp, quiet)


def _execute(exp, quiet):
    """Run with a progress bar, then print the summary table; Ctrl-C says how to continue."""
    from esprune.report import table

    K, G = exp.K, exp.G
    ck = exp.run.checkpoint()
    start = int(ck["iteration"]) * G + int(ck["generation"]) if not ck["finished"] else (K + 1) * G
    try:
        with click.progressbar(length=(K + 1) * G, label="IMP", file=sys.stderr, show_pos=True,
                               hidden=quiet, item_show_func=lambda s: s) as bar:
            bar.update(start)

            unit = "gen" if exp.trainer is None else "step"

            def progress(k, g, best, sparsity):
                bar.update(1, f"iter {k}/{K} {unit} {g}/{G} best {best:.2f} sparsity {sparsity:.3f}")
            rows = exp.execute(progress)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; continue with: esprune resume {exp.run.path}", err=True)
        sys.exit(130)
    click.echo(table(rows))
    click.echo(f"run file: {exp.run.path}", err=True)


@cli.command()
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the rows as a JSON list (keys iteration, sparsity, active, final, best, test, threshold, "
                   "seconds; a missing threshold is null).")
def show(run_file, as_json):
    """The summary table of a run: per iteration its sparsity, active parameters and scores.

    final: the final mean's training fitness; best: its best test score during training; test: the final
    mean's test score; threshold: the pruning score below which weights were cut to make this ticket.
    """
    from esprune.report import setting, table
    from esprune.store import RunFile

    run = RunFile.open(run_file)
    rows = run.summary()
    if as_json:  # strict JSON: the first iteration's threshold (NaN, no pruning yet) becomes null
        click.echo(json.dumps([{k: (None if v != v else v) for k, v in r.items()} for r in rows], indent=2))
        return
    cfg, ck = run.config, run.checkpoint()
    click.echo(f"{run_file}: {setting(cfg)} · keep {cfg['keep']} · {cfg['backend']}")
    click.echo(table(rows))
    if ck and not ck["finished"]:
        click.echo(f"unfinished: next is iteration {ck['iteration']} at generation {ck['generation']}; "
                   f"continue with: esprune resume {run_file}")


@cli.command()
@click.argument("run_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", default="report.png", show_default=True, type=click.Path(dir_okay=False),
              help="Figure file (png, pdf, svg).")
@click.option("--metric", default="test", show_default=True, type=click.Choice(["test", "best", "final"]),
              help="Which summary column to plot.")
def report(run_files, out, metric):
    """Score vs. sparsity of one or more runs (needs the plot extra).

    One curve per pruning method; runs that differ only in their seed are drawn as the mean with a min–max band.
    """
    from esprune.report import figure

    curves = figure(run_files, out, metric)
    click.echo(f"wrote {out}: " + ", ".join(curves))


# ---------------------------------------------------------------------------------------------- analyses
def _write_outputs(result, prefix, draw, what):
    """The numbers to PREFIX.json and, with the plot extra, the figure to PREFIX.png."""
    from esprune.analysis import output

    path = output.write_json(result, prefix)
    plt = output.pyplot()
    if plt is None:
        click.echo(f"wrote {path} (no figure: install the plot extra, pip install 'esprune[plot]')", err=True)
        return
    draw(f"{prefix}.png", plt)
    click.echo(f"wrote {path} and {prefix}.png ({what})", err=True)


@cli.command()
@click.argument("run_a", type=click.Path(dir_okay=False))
@click.argument("run_b", required=False, type=click.Path(dir_okay=False))
@click.option("--iteration", type=int, help="Compare the two runs at this iteration only (default: every common one).")
@click.option("--consecutive", is_flag=True, help="Compare consecutive iterations k, k+1 of RUN_A.")
@click.option("--points", default=25, show_default=True, type=click.IntRange(3), help="α grid points on [0, 1].")
@click.option("--out", "prefix", type=click.Path(dir_okay=False),
              help="Write PREFIX.json and PREFIX.png (default: RUN_A's name + '-connect').")
@click.option("--backend", default="numba", show_default=True, type=click.Choice(_backend.CHOICES))
def connect(run_a, run_b, iteration, consecutive, points, prefix, backend):
    """Linear mode connectivity: training loss and test score along θ(α) = (1−α)·θa + α·θb.

    Pairs: two runs (two seeds, or ES vs GD) at every common iteration or at --iteration; or --consecutive
    iterations of one run. Networks with different masks are interpolated as whole vectors (pruned entries
    0) and evaluated dense. The score barrier is the largest drop of the test score below the straight line
    between the ends (0 = linearly connected); the loss barrier likewise for the loss.
    """
    from esprune.analysis import connectivity, output

    pairs = connectivity.pairs(run_a, run_b, iteration, consecutive)
    results = []
    with click.progressbar(pairs, label="connect", file=sys.stderr) as bar:
        for a, b in bar:
            results.append(connectivity.connect(a, b, points, backend))
    click.echo(output.table(connectivity.rows(results), connectivity.COLUMNS))
    prefix = prefix or output.default_prefix(run_a, "connect")
    _write_outputs({"pairs": results}, prefix, lambda out, plt: connectivity.figure(results, out, plt),
                   "score and loss along each path")


@cli.command()
@click.argument("run_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--iteration", "iterations", multiple=True, type=int,
              help="Iterations to analyse (repeatable; default: every finished one).")
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1), help="Hessian eigenvalues to find.")
@click.option("--probes", default=20, show_default=True, type=click.IntRange(2),
              help="Hutchinson probes for the trace.")
@click.option("--batch", default=512, show_default=True, type=click.IntRange(1),
              help="Training examples in the Hessian's loss (a fixed seeded batch).")
@click.option("--samples", default=32, show_default=True, type=click.IntRange(1),
              help="Random perturbations per radius of the sharpness profile.")
@click.option("--out", "prefix", type=click.Path(dir_okay=False),
              help="Write PREFIX.json and PREFIX.png (default: the first run's name + '-flatness').")
@click.option("--backend", default="numba", show_default=True, type=click.Choice(_backend.CHOICES))
def flatness(run_files, iterations, top_k, probes, batch, samples, prefix, backend):
    """Curvature of the training loss at each solution: top Hessian eigenvalues (Lanczos on exact-gradient
    Hessian-vector products), the Hutchinson trace ± its standard error, and the mean loss increase under
    N(0, r²) perturbations of the active parameters. Give ES and GD runs together to compare them.

    Eigenvalues and trace need a supervised loss (classification tasks); control runs get the sharpness
    profile only.
    """
    from esprune.analysis import flatness as _flatness
    from esprune.analysis import output
    from esprune.analysis.solutions import finished_iterations, load

    jobs = [(path, k) for path in run_files for k in (iterations or finished_iterations(path))]
    results = []
    with click.progressbar(jobs, label="flatness", file=sys.stderr,
                           item_show_func=lambda j: j and f"{j[0]}@{j[1]}") as bar:
        for path, k in bar:
            results.append(_flatness.analyze(load(path, k), top_k, probes, batch, samples=samples, backend=backend))
    click.echo(output.table(_flatness.rows(results), _flatness.columns(results)))
    notes = {r.get("note") for r in results} - {None}
    for note in notes:
        click.echo(note, err=True)
    prefix = prefix or output.default_prefix(run_files[0], "flatness")
    _write_outputs({"solutions": results}, prefix, lambda out, plt: _flatness.figure(results, out, plt),
                   "top eigenvalue vs sparsity, sharpness profiles")


@cli.command("snr")
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--out", "prefix", type=click.Path(dir_okay=False),
              help="Write PREFIX.json and PREFIX.png (default: the run's name + '-snr').")
def snr_study(run_file, prefix):
    """How SNR pruning differs from magnitude pruning in an ES run, per iteration: both thresholds, the
    Jaccard overlap of the weights each would keep, the correlation of |μ| and σ, per-layer counts (JSON) and
    the SNR distribution of kept and pruned weights."""
    from esprune.analysis import output
    from esprune.analysis import snr as _snr

    results = _snr.study(run_file)
    click.echo(output.table(results, _snr.COLUMNS))
    prefix = prefix or output.default_prefix(run_file, "snr")
    _write_outputs({"run": run_file, "iterations": results}, prefix,
                   lambda out, plt: _snr.figure(results, out, plt), "overlap per iteration, SNR histograms")


@cli.group()
def data():
    """The MNIST-family data files: check what is there, fetch what is missing."""


@data.command("check")
@click.argument("data_dir", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_check(data_dir, as_json):
    """Where each dataset file was found ($ESPRUNE_DATA, ~/.cache/esprune, Debian's Fashion-MNIST) and whether
    its content verifies against data/checksums.json."""
    from esprune import datasets

    report = datasets.check(data_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key, entry in report.items():
        click.echo(f"{entry['status'][:7]:<8} {key:<45} {entry['path'] or ''}")
        if entry["status"].startswith("bad"):
            click.echo(f"         {entry['status']}")


@data.command("fetch")
@click.argument("name", type=click.Choice(["mnist", "fashion_mnist", "kmnist"]))
@click.option("--dir", "dest", default=None, type=click.Path(file_okay=False),
              help="Where to put the files (default: $ESPRUNE_DATA, else ~/.cache/esprune).")
@click.option("--url", default=None, help="Base URL to download from (default: the official site).")
def data_fetch(name, dest, url):
    """Download a dataset's official files; each is kept only once its content verifies."""
    import os
    from pathlib import Path

    from esprune import datasets

    dest = dest or os.environ.get("ESPRUNE_DATA") or str(Path.home() / ".cache" / "esprune")
    kept = datasets.fetch(name, dest, url, progress=lambda f: click.echo(f"verified {f}", err=True))
    click.echo(f"{name}: {len(kept)} file(s) downloaded into {Path(dest) / datasets.folder(name)}")


def _bench_options(repeats: int, unit: str):
    """--repeats, --json and --out, which every bench suite takes."""
    def apply(fn):
        fn = click.option("--out", type=click.Path(dir_okay=False, writable=True),
                          help="Also write the JSON result here.")(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")(fn)
        return click.option("--repeats", default=repeats, show_default=True, type=click.IntRange(1),
                            help=f"Timed {unit}.")(fn)
    return apply


@cli.group()
def bench():
    """Measure speed: medians over repeats, GFLOP/s against this machine's matmul peak, and ratios."""


@bench.command("forward")
@click.option("--backend", "backends", multiple=True, type=click.Choice(_backend.NAMES),
              help="Backends to measure (repeatable); default: every usable one.")
@click.option("--density", "densities", multiple=True, type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Weight densities to measure (repeatable); default 1.0 0.8 0.5 0.2 0.05 0.01.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["mlp-control", "mlp-wide", "cnn-mnist"]),
              help="Workloads to measure (repeatable); default: all three.")
@_bench_options(repeats=5, unit="calls per row")
def bench_forward(backends, densities, workloads, repeats, as_json, out):
    """Population forward passes: the paper's control MLP (P=100, B=8), a wide MLP and the paper's MNIST CNN
    (both P=128, B=1024). Dense and sparse paths per density, GFLOP/s against the matmul peak, speed-ups."""
    from esprune import bench as _bench

    kwargs = {"repeats": repeats, "backends": backends, "workloads": workloads}
    if densities:
        kwargs["densities"] = densities
    with _bench_progress("bench forward") as progress:
        result = _bench.forward(progress=progress, **kwargs)
    _emit(result, as_json, out, _bench.render)


@bench.command("tasks")
@_bench_options(repeats=5, unit="calls per row")
def bench_tasks(repeats, as_json, out):
    """CartPole-v1 environment steps per second: numpy reference vs the fused numba rollout."""
    from esprune import bench as _bench

    with _bench_progress("bench tasks") as progress:
        result = _bench.task_rollouts(repeats=repeats, progress=progress)
    _emit(result, as_json, out, _bench.render_tasks)


@bench.command("generation")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["numba", "cupy"]),
              help="Backends to measure (repeatable); default: numba and, when usable, cupy.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["W1", "W2", "W3"]),
              help="W1: CartPole-v1, 4-64-64-2 tanh, Sep-CMA-ES, P=100, 8 episodes; W2: the MNIST CNN, SNES, "
                   "P=128, batch 1024 (synthetic images); W3: Ant-v5 on MuJoCo, Sep-CMA-ES, P=256, 8 episodes "
                   "of 50 steps, beside MuJoCo's raw batched stepping (needs esprune[mujoco]). Default W1 W2.")
@_bench_options(repeats=3, unit="generations per row")
def bench_generation(backends, workloads, repeats, as_json, out):
    """Seconds per ES generation (ask → evaluate → tell) at density 1.0 and at IMP iteration 10's (0.8**10),
    with sparse/dense and GPU/CPU ratios and the fraction of the matmul peak (W2)."""
    from esprune import bench_generation as _bench

    with _bench_progress("bench generation") as progress:
        result = _bench.generation(backends or None, repeats=repeats, workloads=workloads or ("W1", "W2"),
                                   progress=progress)
    _emit(result, as_json, out, _bench.render)


@bench.command("imp")
@_bench_options(repeats=1, unit="runs")
def bench_imp(repeats, as_json, out):
    """The whole IMP loop: the demo preset cut to 3 iterations (checkpoints, test scores and pruning included)."""
    from esprune import bench_generation as _bench

    _emit(_bench.imp(repeats), as_json, out, _bench.render_imp)


@bench.command("all")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Also write the four suites' JSON here, as {forward, tasks, generation, imp}.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
def bench_all(out, as_json):
    """The whole suite with its default settings: forward, tasks, generation and imp, on every usable backend
    (what `make bench` runs)."""
    from esprune import bench as _bench
    from esprune import bench_generation as _gen

    suites = {}
    for name, run_suite, render in (("forward", _bench.forward, _bench.render),
                                    ("tasks", _bench.task_rollouts, _bench.render_tasks),
                                    ("generation", _gen.generation, _gen.render), ("imp", _gen.imp, _gen.render_imp)):
        with _bench_progress(f"bench {name}") as progress:
            suites[name] = run_suite(progress=progress)
        if not as_json:
            click.echo(f"\n== {name}\n{render(suites[name])}")
    if out:
        with open(out, "w") as fh:
            fh.write(json.dumps(suites, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(suites, indent=2))


@contextlib.contextmanager
def _bench_progress(label):
    """A progress bar on stderr and the ``progress(done, total, row)`` callback the suites call."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
        def progress(done, total, row):
            bar.length = total
            bar.update(done - bar.pos)
        yield progress


def _emit(result, as_json, out, render):
    text = json.dumps(result, indent=2)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
    click.echo(text if as_json else render(result))


def main():
    cli(prog_name="esprune")


if __name__ == "__main__":
    main()
