"""The ``esprune`` command line: argument handling and printing only; the work is done by library calls."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import click

import esprune
from esprune import backend as _backend
from esprune.errors import UserError, out_of_memory


class _Density(click.FloatRange):
    """A weight density in (0, 1]; click's FloatRange lets NaN through (every comparison with NaN is false)."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if value != value:
            self.fail("nan is not a density in (0, 1]", param, ctx)
        return value


DENSITY = _Density(0.0, 1.0, min_open=True)


class UsageError(click.ClickException):
    """A user mistake: one line on stderr, exit status 2, no traceback."""

    exit_code = 2


class Group(click.Group):
    """Turns the library's UserError and click's own usage errors (three lines: usage, hint, error) into one
    line, exit status 2, wherever a command or the parsing of its arguments raises them."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise _ending_the_job(exc, UsageError(str(exc))) from None
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except (MemoryError, ValueError) as exc:  # the library's checks bound sizes; this is the safety net
            if not out_of_memory(exc):
                raise
            advice = _SMALLER.get(ctx.invoked_subcommand, "reduce the sizes it was given")
            raise _ending_the_job(exc, UsageError(f"out of memory: this needs more memory than this machine has "
                                                  f"({str(exc) or 'no detail'}); {advice}")) from None


def _ending_the_job(exc: BaseException, error: click.ClickException) -> click.ClickException:
    """``error``, the one line for ``exc``; when one MPI rank met ``exc`` alone mid-run (``abort_job``, set by
    ``distributed.Sharded``), the line is printed here and the whole job ends: the other ranks would otherwise
    wait for this one forever."""
    if getattr(exc, "abort_job", False):
        from esprune import distributed

        distributed.abort_job(f"Error: {error.format_message()}", error.exit_code)
    return error


# What to make smaller when a command runs out of memory (a MemoryError, or numpy's size-limit ValueError)
_RUN_SIZES = "--popsize, the task's episodes, test_episodes or batch_size (--task-option) or the network's size"
_SMALLER = {"run": f"reduce {_RUN_SIZES}", "transfer": f"reduce {_RUN_SIZES}",
            "resume": f"a run continues with its own config: resume it on a machine with more memory, or start it "
                      f"again with a smaller {_RUN_SIZES}",
            "flatness": "reduce --batch, --samples or --probes", "connect": "reduce --points"}


def _one_line(exc: click.UsageError) -> click.ClickException:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `esprune data` alone prints the group's help, as before
        return exc
    where = exc.ctx.command_path if exc.ctx is not None else "esprune"
    return UsageError(f"{where}: {exc.format_message()} (see `{where} --help`)")


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
    """The evolution strategies with their hyperparameters and defaults (the paper's values, see
    docs/PAPER_SETTINGS.md), and the choices of the rule-choosing ones (ties; Sep-CMA-ES's learning_rates). A
    run file's config records the choice."""
    from esprune import strategies
    from esprune.errors import written

    aliases = {v: k for k, v in strategies.ALIASES.items()}
    table = {name: {"alias": aliases[name], "doc": (cls.__doc__ or "").strip(),
                    "hyperparameters": strategies.hyperparameters(name), "choices": strategies.choices(name)}
             for name, cls in strategies.REGISTRY.items()}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for name, entry in table.items():
        click.echo(f"{name} ({entry['alias']}): {entry['doc']}")
        click.echo("    " + ", ".join(f"{k}={v if isinstance(v, str) else written(v)}"  # as a flag or TOML writes it
                                      for k, v in entry["hyperparameters"].items()))
        for option, values in entry["choices"].items():
            if option != "ties":  # shared by all: printed once below
                click.echo(f"    {option}:")
                for value, text in values.items():
                    click.echo(f"      {value}: {text}")
    click.echo("every strategy: ties:")
    for value, text in strategies.choices("snes")["ties"].items():
        click.echo(f"  {value}: {text}")


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def list_tasks(as_json):
    """The tasks with their observation/action shapes, horizon, default network and options (the config table
    task_options, e.g. `[task_options] episodes = 4`) with their defaults."""
    from esprune import tasks

    table = {name: {**tasks.make(name).describe(), "options": tasks.options_of(name)} for name in tasks.TASKS}
    gym = "gym:<env id>"
    table[gym] = {"kind": "gym", "note": "any Gymnasium environment through its vector API (the slow path)",
                  "horizon": None, "options": tasks.options_of("gym:CartPole-v1")}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for name, t in table.items():
        if name == gym:
            click.echo(f"{name}: {t['note']}")
        else:
            shape = "×".join(map(str, t["obs_shape"]))
            horizon = (f"horizon {t['horizon']}, {t['test_episodes']} test episodes" if t["horizon"]
                       else f"batch {t['batch_size']}")
            click.echo(f"{name}: obs {shape}, {t['act_dim']} output{'s' * (t['act_dim'] != 1)}, {t['actions']}, {horizon}, "
                       f"{t['default_net']}")
        click.echo("    options: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in t["options"].items()))


@cli.command("pruning")
@click.option("--json", "as_json", is_flag=True, help="Print the methods as JSON.")
def list_pruning(as_json):
    """The ticket makers (--prune): the published code's name, the rule, and where esprune departs from it."""
    from esprune import prune

    table = {name: {"paper_name": paper, "rule": rule, "published_code": code}
             for name, (paper, rule, code) in prune.METHODS.items()}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for name, entry in table.items():
        click.echo(f"{name} ({entry['paper_name']}): {entry['rule']}.\n    published code: {entry['published_code']}.")


# ---------------------------------------------------------------------------------------------- experiments
@cli.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print every preset's config as JSON.")
def list_presets(as_json):
    """Named configs for `esprune run --preset`: the paper's settings and a quick demo, each with what it costs:
    generations × (iterations + 1) trained tickets, and its wall time on 2 cores, measured where that exact
    config was timed, otherwise estimated from measured per-step (per-image) costs (see esprune/costs.py)."""
    from esprune import costs, presets

    table = {name: {"about": about, "config": cfg, "cost": costs.cost(cfg)}
             for name, (about, cfg) in presets.PRESETS.items()}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    width = max(map(len, table))  # the longest name (fashion-mnist-pgpe) sets the column
    for name, entry in table.items():
        c = entry["cost"]
        budget = (f"{c['generations'] // c['tickets']} generations × {c['tickets']} tickets = {c['generations']:,}"
                  if c["generations"] is not None else f"{c['tickets']} tickets")
        wall = f"{c['how']} {costs.clock(c['seconds'])} on 2 cores" if c["seconds"] is not None else c["how"]
        click.echo(f"{name:<{width}} {entry['about']}\n{'':<{width}} cost: {budget}; {wall}")
    click.echo("estimates: full-length control episodes (CartPole's end early until the policy balances), unit costs "
               "from the README's Performance figures; on a machine shared with other jobs expect several times more")


# The config's option tables as repeatable KEY=VALUE flags: (flag, what it sets, examples); --FLAG-option fills
# the table FLAG_options.
_OPTION_TABLES = (("gd", "An option of the GD trainer", "e.g. epochs=2, lr=3e-4, batch_size=128; PPO: "
                                                         "timesteps=200000, n_envs=8, target=475"),
                  ("strategy", "An option of the evolution strategy",
                   "e.g. sigma_init=0.05 (see `esprune strategies`)"),
                  ("task", "An option of the task", "e.g. batch_size=256 (see `esprune tasks`)"))


def _option_tables(over: str):
    """The --gd-option, --strategy-option and --task-option flags of a command, each layered ``over`` ..."""
    def apply(command):
        for flag, what, examples in reversed(_OPTION_TABLES):
            command = click.option(f"--{flag}-option", f"{flag}_option", multiple=True, metavar="KEY=VALUE",
                                   help=f"{what} (repeatable), {over}; {examples}.")(command)
        return command
    return apply


def _parse_option_tables(flags: dict) -> None:
    """The flags of ``_option_tables`` parsed into the config's tables (``gd_options``, ...; None when not given)."""
    for flag, _, _ in _OPTION_TABLES:
        flags[f"{flag}_options"] = _key_values(flags.pop(f"{flag}_option"), f"--{flag}-option") or None


@cli.command()
@click.argument("config_file", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="Start from a named config (see `esprune presets`); the file and flags override it.")
@click.option("--task", help="Task name, e.g. CartPole-v1 (see `esprune tasks`).")
@click.option("--strategy", help="Evolution strategy, e.g. sep_cma_es (see `esprune strategies`).")
@click.option("--prune", help="Ticket maker: snr, magnitude, random-reinit, magnitude-permute, permute-permute, "
                             "mask-reinit, movement, snip, grasp (the last two: classification tasks only; grasp "
                             "is the GraSP paper's rule, not the published code's, which kept the wrong "
                             "fraction). `esprune pruning` describes each.")
@click.option("--trainer", type=click.Choice(["es", "gd"]),
              help="Who trains each ticket: es (default) or gd, gradient descent (Adam on classification, PPO on "
                   "control); gd runs cannot prune by snr.")
@_option_tables("over the preset's and the file's")
@click.option("--iterations", type=int, help="Prunings after the dense iteration 0: N trains N + 1 tickets, "
                                             "iterations 0..N (default 20).")
@click.option("--keep", type=float, help="Fraction of active weights kept per iteration (default 0.8).")
@click.option("--generations", type=int, help="ES generations per iteration (default 2000).")
@click.option("--popsize", type=int, help="Population size (default 100).")
@click.option("--seed", type=int, help="Seed of the ES noise, the episodes and the init (default 0).")
@click.option("--backend", type=click.Choice(_backend.CHOICES), help="Array backend (default numba).")
@click.option("--out", type=click.Path(dir_okay=False), help="Run file (default runs/<preset|task>-<prune>-s<seed>.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file instead of refusing.")
@click.option("--quiet", is_flag=True, help="No progress bar (sent to a file: no progress lines).")
def run(config_file, preset, out, overwrite, quiet, **flags):
    """Run an iterative-pruning (lottery ticket) experiment and store it in an HDF5 run file.

    Layers, later wins: defaults, --preset, CONFIG_FILE (TOML with the same keys), flags. The merged config is
    checked before any work starts. The run is checkpointed as it goes: after a crash or Ctrl-C,
    `esprune resume RUN.h5` continues it to the same numbers. When pruning disconnects the network (no input
    reaches an output), one warning line on stderr says so, once, before that ticket is trained.
    """
    from esprune import config, distributed, presets
    from esprune.imp import Experiment
    from esprune.report import iterations_text, setting

    _check_out(out)
    _parse_option_tables(flags)
    layers = [presets.get(preset) if preset else {}, config.load_toml(config_file) if config_file else {}, flags]
    cfg = config.resolve(*layers)
    config.check_es_flags(cfg.trainer, flags)
    out = out or config.default_path(cfg, preset)
    if distributed.world_size() > 1:  # mpiexec -n R esprune run ...: the population split over the ranks
        exp = distributed.start(cfg, out, overwrite=overwrite)
        if distributed.rank() == 0:
            click.echo(f"esprune run: {setting(cfg)} · {iterations_text(cfg.iterations)} → {out} "
                       f"({distributed.world_size()} MPI ranks)", err=True)
    else:
        exp = Experiment.start(cfg, out, overwrite=overwrite)
        click.echo(f"esprune run: {setting(cfg)} · {iterations_text(cfg.iterations)} → {out}", err=True)
    _execute(exp, quiet)


def _check_out(out):
    if out is not None and not out.strip():
        raise UsageError("--out is empty; give a file name such as runs/a.h5 (or leave --out out)")


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new run file.")
@click.option("--task", help="Train on this task instead (same network shape, e.g. fashion_mnist → mnist).")
@click.option("--strategy", help="Train with this evolution strategy instead.")
@click.option("--trainer", type=click.Choice(["es", "gd"]), help="es or gd (gradient descent).")
@_option_tables("over the source's (after a new --strategy or --task: over its defaults)")
@click.option("--iterations", type=int, help="Transfer tickets 0..N only, N + 1 tickets (default: as many as the "
                                             "source has).")
@click.option("--generations", type=int, help="ES generations per ticket.")
@click.option("--popsize", type=int, help="ES population size.")
@click.option("--seed", type=int, help="Seed of the new training (default: the source's).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file instead of refusing.")
@click.option("--quiet", is_flag=True, help="No progress bar (sent to a file: no progress lines).")
def transfer(source, out, overwrite, quiet, **flags):
    """Train the tickets (init + mask of every iteration) of the SOURCE run in a new setting.

    The setting is the source's config with the given flags changed: another strategy (e.g. SNES → PGPE),
    another task with the same network (Fashion-MNIST → MNIST), or gradient descent (--trainer gd, the ES → GD
    transfer). A new strategy or task starts from its own defaults, not the source's options: give the ones
    wanted with --strategy-option / --task-option. No pruning happens: iteration k trains the source's ticket k.
    The result is an ordinary run file that records its source (config key tickets_from); `esprune report` draws
    it beside the source.
    """
    from esprune import config
    from esprune.imp import Experiment
    from esprune.report import setting

    _check_out(out)
    _parse_option_tables(flags)
    cfg = config.transfer_config(source, flags)
    exp = Experiment.start(cfg, out, overwrite=overwrite)
    click.echo(f"esprune transfer: {source} → {setting(cfg)} → {out}", err=True)
    _execute(exp, quiet)


def _pairs(items, flag, takes="KEY=VALUE,") -> list[tuple[str, str]]:
    """``KEY=VALUE`` strings as (key, value) pairs, the key stripped ("sigma_init =0.2" names sigma_init, as
    TOML's "sigma_init = 0.2" does). Raises UsageError for an item without ``=`` or a key."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} takes {takes} got {item!r}")
        pairs.append((key.strip(), value))
    return pairs


def _key_values(items, flag) -> dict:
    """``KEY=VALUE`` strings as a dict; values parsed as JSON where they are (numbers, true, lists), else text.
    Raises UsageError for an item without ``=`` or a key given twice."""
    out, given = {}, {}
    for key, value in _pairs(items, flag):
        if key in out:  # last-wins would hide a typo'd or pasted-twice flag; two values cannot both be meant
            raise UsageError(f"{flag} {key} is given twice ({key}={given[key]} and {key}={value}); give it once")
        given[key] = value
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command()
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--iterations", type=click.IntRange(0),
              help="Go on to iteration N (N prunings after the dense iteration 0), finished run or not: the same "
                   "seeds and schedule, so the result equals a run started with --iterations N. N may not be below "
                   "the last iteration the run has a ticket for.")
@click.option("--quiet", is_flag=True, help="No progress bar (sent to a file: no progress lines).")
def resume(run_file, iterations, quiet):
    """Continue a run from its last checkpoint (same numbers as an uninterrupted run on the same backend), or
    extend it to deeper sparsity with --iterations."""
    from esprune import distributed
    from esprune.imp import Experiment

    from esprune import report
    from esprune.report import iterations_text, table, tickets_text

    if distributed.world_size() > 1:
        exp = distributed.resume(run_file, iterations)
    else:
        exp = Experiment.resume(run_file, iterations)
    if iterations is not None and getattr(exp, "is_root", True) and not exp.finished:
        source = exp.cfg.tickets_from  # a transfer run prunes nothing: it trains its source's tickets
        what = tickets_text(exp.K, source) if source is not None else iterations_text(exp.K)
        click.echo(f"esprune resume: {run_file} · {what}", err=True)
    if exp.finished:  # said before any lock is taken: a finished run needs no writer
        if getattr(exp, "is_root", True):
            click.echo(f"{run_file} is already finished; nothing to do.", err=True)
            rows = exp.run.summary()
            click.echo("\n".join([table(rows), *report.notes(rows)]))
        return
    _execute(exp, quiet)


def _interactive(stream) -> bool:
    """Whether ``stream`` is a terminal (a progress bar redraws there; a file or pipe wants whole lines)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _execute(exp, quiet):
    """Run with a progress bar in a terminal; sent to a file or pipe, a line every tenth of an iteration and each
    iteration's summary row when it is committed (both on stderr); then the summary table. A kernel compilation
    is announced, and the ETA counts from the first generation after it. Ctrl-C says how to continue."""
    from esprune import backend, report
    from esprune.report import table

    root = getattr(exp, "is_root", True)  # under MPI only rank 0 draws and prints
    quiet = quiet or not root
    log = not quiet and not _interactive(sys.stderr)  # where the bar would go: a log file gets lines instead
    K, G = exp.K, exp.G
    start, total = exp.progress_start()
    unit = "gen" if exp.trainer is None else "step"
    every, clock = report.log_every(G), time.monotonic()
    eta = _Eta(start, total)

    def compiling():
        if not quiet:
            click.echo("compiling kernels (first run only; they are cached for the next runs)", err=True)
    try:
        with backend.on_compile(compiling), \
                click.progressbar(length=total, label="IMP", file=sys.stderr, show_pos=True, show_eta=False,
                                  hidden=quiet or log, item_show_func=lambda s: s) as bar:
            bar.update(start)

            def progress(k, g, best, sparsity):
                left = eta.step()
                shown = "" if left is None else f" ETA {report._clock(left)}"
                bar.update(1, f"{report.iteration_tag(k, K)} {unit} {g}/{G} best {best:.2f} "
                              f"sparsity {sparsity:.3f}{shown}")
                if log and (g % every == 0 or g == G):
                    click.echo(report.generation_line(k, K, g, G, best, sparsity, time.monotonic() - clock, unit,
                                                      eta=left), err=True)  # click.echo flushes: in the log now

            def iteration_done(row):
                eta.pause()  # pruning and the next iteration's set-up are not generations
                if log:
                    click.echo(report.iteration_line(row, K), err=True)

            def warn(line):  # once per command, also with --quiet; in a terminal, below the bar's line
                click.echo(("" if log or quiet else "\n") + f"warning: {line}", err=True)
            rows = exp.execute(progress, iteration_done, warn if root else None)
    except KeyboardInterrupt:  # the last checkpoint stays; Experiment.execute removed the lock file
        if root:  # under MPI the other ranks' files are private copies: resuming one would be the wrong advice
            click.echo(f"\ninterrupted; continue with: esprune resume {exp.run.name}", err=True)
        sys.exit(130)
    if not root:
        return
    click.echo("\n".join([table(rows), *report.notes(rows)]))
    click.echo(f"run file: {exp.run.name}", err=True)


class _Eta:
    """Seconds left, from the pace of this process's generations after its first one (the first carries the
    kernels' compilation and the set-up, so it is not counted), None until two generations have passed."""

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total
        self.counted, self.spent, self.last = 0, 0.0, None

    def step(self) -> float | None:
        now = time.monotonic()
        self.done += 1
        if self.last is not None:
            self.spent += now - self.last
            self.counted += 1
        self.last = now
        if not self.counted:
            return None
        return (self.total - self.done) * self.spent / self.counted

    def pause(self) -> None:
        self.last = None  # the next generation's time includes the iteration's end and the next set-up


@cli.command()
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the rows as a JSON list (keys iteration, sparsity, weights, final, best, test, threshold, "
                   "seconds; a threshold that does not exist is null; and the ticket's effective sparsity: effective "
                   "(%), effective_weights, empty_layers, disconnected, layers {layer: {size, kept, effective}}); "
                   "with --config or --curves, those as JSON.")
@click.option("--timing", is_flag=True,
              help="The per-iteration profile instead: seconds in ask, evaluate, tell and commit (run-file "
                   "writes), the env steps or images processed and the GFLOP/s of the evaluations.")
@click.option("--config", "as_config", is_flag=True,
              help="The config the run was made with, as TOML that `esprune run FILE.toml` reads back (None "
                   "values left out: they are the defaults).")
@click.option("--curves", is_flag=True,
              help="The training curves of every finished iteration: per generation the population's mean and "
                   "max training fitness, and the test score where it was measured. The text table shows the "
                   "measured generations; --json and --csv hold every generation.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False),
              help="With --curves: also write every generation's row to this CSV file (columns iteration, "
                   "generation, train_mean, train_max, test; an unmeasured test is empty).")
def show(run_file, as_json, timing, as_config, curves, csv_file):
    """The summary table of a run: row k is ticket k (iteration 0 dense, then one per pruning), its sparsity,
    the prunable weights it keeps (biases, never pruned, not counted) and its scores.

    effective: the % of prunable weights that lie on some input→output path of active weights (Vysogorets &
    Kempe 2023, effective sparsity; conv layers counted by channel, an upper bound); a line under the table
    names the iterations whose ticket is disconnected (no input reaches an output) and its empty layers.
    final: the final mean's training fitness; best: its best test score during training; test: the final
    mean's test score; threshold: the pruning score below which weights were cut to make this ticket ("—"
    where none exists: iteration 0, random masks).
    """
    from esprune import report
    from esprune.report import setting, table
    from esprune.store import RunFile

    if timing + as_config + curves > 1:
        raise UsageError("show takes one of --timing, --config, --curves")
    if csv_file is not None:
        if not curves:
            raise UsageError("--csv writes the curves: use it with --curves")
        from esprune.outputs import check_writable

        check_writable(csv_file, what="CSV")
    run = RunFile.open(run_file)
    if as_config:
        cfg = run.config
        click.echo(json.dumps(report.config_ordered(cfg), indent=2) if as_json else
                   f"# config of {run_file}; `esprune run THIS.toml --out NEW.h5` repeats the run\n"
                   + report.config_toml(cfg), nl=as_json)
        return
    if curves:
        rows = report.curve_rows(run.curves())
        if csv_file is not None:
            report.write_curves_csv(rows, csv_file)
            click.echo(f"wrote {csv_file} ({len(rows)} rows)", err=True)
        if not rows:
            click.echo(f"{run_file} has no finished iteration yet", err=True)
        click.echo(report.curves_json(rows) if as_json else report.curves_table(rows))
        return
    if timing:
        from esprune import timing as _timing

        profile = run.timing()
        click.echo(json.dumps(profile, indent=2) if as_json else
                   _timing.render(profile) if profile else f"{run_file} has no timing records")
        return
    rows = run.summary()
    if as_json:  # strict JSON: a threshold that does not exist (NaN: iteration 0, random masks) becomes null
        click.echo(json.dumps([{k: (None if v != v else v) for k, v in r.items()} for r in rows], indent=2))
        return
    cfg, ck = run.config, run.checkpoint()
    click.echo(f"{run_file}: {setting(cfg)} · keep {cfg['keep']} · {cfg['backend']}")
    click.echo("\n".join([table(rows), *report.notes(rows)]))
    if ck and not ck["finished"]:
        click.echo(f"unfinished: next is iteration {ck['iteration']} at generation {ck['generation']}; "
                   f"continue with: esprune resume {run_file}")


@cli.command()
@click.argument("run_files", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", default="report.png", show_default=True, type=click.Path(dir_okay=False),
              help="Figure file (png, pdf, svg); the table goes beside it as .json and .csv.")
@click.option("--metric", default="test", show_default=True, type=click.Choice(["test", "best", "final"]),
              help="Which summary column to plot.")
@click.option("--band", "band_kind", default="se", show_default=True, type=click.Choice(["se", "minmax"]),
              help="Band over seeds: mean ± standard error (std/√n, the paper's) or min–max.")
@click.option("--at", "at", default=None, metavar="PCT,PCT,...",
              help="Print the table only at these weights remaining (%), each at the nearest iteration; "
                   "'paper' = 100,32.8,10.7,3.5,1.44, the sparsities the paper reports (default: every iteration).")
def report(run_files, out, metric, band_kind, at):
    """Score vs. weights remaining of run files or sweep directories (needs the plot extra).

    Runs equal but for their seed form one curve: the seed mean with a ± standard-error band (SE = s/√n;
    --band minmax: lowest to highest seed);
    curves are named by the config keys that differ between them. The table of means and SEs is written to
    OUT's .json and .csv, with effective_remaining (seed mean % of the weights on some input→output path) and
    disconnected_seeds, and printed as mean ± SE per iteration (--at: at chosen sparsities). In the figure a
    dotted line draws the same scores against effective weights remaining and a cross marks an iteration whose
    ticket is disconnected in some seed. Over two or more tasks, a last panel shows the paper's aggregate: each
    task's curves min–max normalised, then each method (ticket maker, ES or GD) averaged over the tasks.
    """
    from esprune.outputs import FIGURE_FORMATS, check_all, check_writable
    from esprune.report_grid import PAPER_REMAINING, table_paths, text_table
    from esprune.report_grid import report as _report

    points = None
    if at is not None:
        try:
            points = PAPER_REMAINING if at == "paper" else tuple(float(x) for x in at.split(","))
        except ValueError:
            raise click.BadParameter(f"{at!r} is not 'paper' or a comma-separated list of percentages",
                                     param_hint="--at") from None
        if not all(0 < p <= 100 for p in points):
            raise click.BadParameter("percentages must lie in (0, 100]", param_hint="--at")
    check_writable(out, FIGURE_FORMATS, "figure")
    check_all(table_paths(out), "table")
    result = _report(run_files, out, metric, warn=lambda line: click.echo(line, err=True), band_kind=band_kind)
    click.echo(text_table(result["curves"], points))
    click.echo(f"wrote {out}, {result['json']}, {result['csv']}: " + ", ".join(
        f"{c['label']} ({c['seeds']} seed{'s' * (c['seeds'] > 1)})" for c in result["curves"]))


# ---------------------------------------------------------------------------------------------- sweeps
class _SweepGroup(Group):
    """``esprune sweep GRID.toml ...`` means ``esprune sweep start GRID.toml ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_SweepGroup)
def sweep():
    """Grids of runs: `esprune sweep GRID.toml` (or --preset NAME) runs them, `sweep status DIR` shows them.

    A grid is a TOML file: optional `preset = "NAME"`, an optional [base] table of config keys, and an [axes]
    table of config keys with lists of values (option keys dotted: "strategy_options.sigma_init" = [0.05, 0.1];
    an axis `preset` varies the starting preset). One run file per point, named from its axis values.

    Running takes --dir DIR (default sweeps/NAME), --jobs N (points at once), --scale F (cut the budget),
    --only AXIS=VALUE (a part of the grid), --list (check and list, run nothing), --quiet: see
    `esprune sweep start --help`.
    """


@sweep.command("start")
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="A named grid (see `esprune sweep presets`) instead of GRID_FILE.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where the run files go (default sweeps/<grid file's or preset's name>).")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1),
              help="Points run at once, each in its own process; numba's threads are split between them.")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Cut the training budget: generations, eval_every, checkpoint_every and the GD trainer's "
                   "epochs/timesteps times SCALE (at least 1); sparsity levels, population and hyperparameters "
                   "stay. E.g. 0.01 makes the paper's 2000 generations per iteration 20.")
@click.option("--only", multiple=True, metavar="AXIS=VALUE",
              help="Run only the points with this axis value (repeatable: one axis several times = any of those "
                   "values, several axes = all of them), e.g. --only prune=snr --only seed=0 --only seed=1. Numbers "
                   "match by value (sigma_init=.05 is 0.05). The sweep's status still lists the whole grid.")
@click.option("--list", "list_only", is_flag=True, help="Validate the grid and list its points; run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep_start(grid_file, preset, directory, jobs, scale, only, list_only, quiet):
    """Run every point of a grid (or those --only picks): finished points are skipped, partial ones resumed, so
    the same command continues a killed sweep. Every point's config is checked before any run starts.

    The same command run twice at once (two shells, or machines on a shared disk) shares the points: a point
    the other process is running is left to it and waited for (counted "done by another esprune process"), or
    continued here if that process stops first.

    Under MPI (`mpiexec -n R esprune sweep ...`) rank 0 hands the points out one at a time to ranks 1..R-1
    (a queue, so slow points do not stall the rest); --jobs is then ignored.
    """
    from pathlib import Path

    from esprune import distributed, grids
    from esprune import sweep as _sweep

    if bool(grid_file) == bool(preset):
        raise UsageError("give a GRID_FILE or --preset NAME (one of them)")
    grid = grids.get(preset) if preset else _sweep.load(grid_file)
    directory = directory or str(Path("sweeps") / (preset or Path(grid_file).stem))
    pairs = _pairs(only, "--only", "AXIS=VALUE, e.g. --only prune=snr;")
    _sweep.check_same_grid(directory, grid)
    grid_points = _sweep.expand(grid, directory, scale=scale, prepare=False, check_files=False)
    points = _sweep.select(grid_points, pairs)
    _sweep.prepare_tasks(points)  # the data and the files of the points that will run, not of the whole grid
    _sweep.check_existing(points)
    which = f"{len(points)} of {len(grid_points)} points (--only)" if only else f"{len(points)} points"
    if list_only:
        for p in points:
            click.echo(f"{p.path}  {'exists' if p.path.exists() else 'new'}")
        click.echo(f"{which}; nothing run (--list)", err=True)
        return
    if distributed.world_size() > 1:
        outcomes = distributed.sweep(points, directory, grid, progress=None if quiet else _echo_point,
                                     grid_points=grid_points)
        if outcomes is None:  # not rank 0
            return
    else:
        _sweep.write_manifest(grid_points, directory, grid)
        click.echo(f"esprune sweep: {which} → {directory} ({jobs} at a time)", err=True)
        try:
            outcomes = _run_sweep(points, jobs, quiet)
            outcomes.update(_wait_for_others([p for p in points if outcomes[p.name] == "busy"]))
        except KeyboardInterrupt:
            click.echo("\ninterrupted; continue with the same command (finished points are kept, partial ones "
                       "resume)", err=True)
            sys.exit(130)
    failed = {name: why for name, why in outcomes.items() if why.startswith("error")}
    counts = {what: sum(v == what for v in outcomes.values())
              for what in ("finished", "resumed", "skipped", "elsewhere", "busy")}
    elsewhere = f", {counts['elsewhere']} done by another esprune process" if counts["elsewhere"] else ""
    if counts["busy"]:  # under MPI only: the ranks do not wait for a process outside the job
        elsewhere += (f", {counts['busy']} being run by another esprune process (`esprune sweep status "
                      f"{directory}` shows when they finish)")
    click.echo(f"{directory}: {counts['finished']} run, {counts['resumed']} resumed, {counts['skipped']} already "
               f"done, {len(failed)} failed{elsewhere}")
    for name, why in failed.items():
        click.echo(f"  {name}: {why}", err=True)
    if failed:
        sys.exit(1)


_POLL_S = 5.0  # how often a sweep looks again at the points another esprune process is running


def _wait_for_others(points) -> dict:
    """Outcomes of the points another esprune process was running when this sweep reached them, looked at every
    _POLL_S seconds until each is done there ("elsewhere") or free again because that process stopped (then
    it is resumed here): two sweep starts of one grid both end only when the whole grid is done."""
    from esprune import sweep as _sweep

    if points:
        click.echo(f"waiting for {len(points)} point(s) another esprune process is running (continued here if it "
                   "stops first; Ctrl-C leaves them to it)", err=True)
    outcomes, left = {}, list(points)
    while left:
        time.sleep(_POLL_S)
        for point in list(left):
            outcome = _sweep.attempt(point)
            if outcome != "busy":
                outcomes[point.name] = "elsewhere" if outcome == "skipped" else outcome
                left.remove(point)
    return outcomes


def _echo_point(name, outcome):
    click.echo(f"{name}: {outcome}", err=True)


def _run_sweep(points, jobs, quiet):
    """The points with a progress bar over the grid (each point counts its generations as a fraction)."""
    from esprune import sweep as _sweep

    fraction = {p.name: 0.0 for p in points}
    per_point = 1000
    with click.progressbar(length=len(points) * per_point, label="sweep", file=sys.stderr, hidden=quiet,
                           item_show_func=lambda s: s) as bar:
        def progress(name, done, total):
            fraction[name] = done / total if total else 1.0
            finished = sum(f >= 1 for f in fraction.values())
            bar.update(int(sum(fraction.values()) * per_point) - bar.pos,
                       f"{finished}/{len(points)} done · {name} {100 * fraction[name]:.0f}%")
        return _sweep.run(points, jobs=jobs, progress=progress)


@sweep.command("status")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def sweep_status(directory, as_json):
    """One line per point of the sweep in DIRECTORY: done, partial (where it stopped) or not started, with the
    iterations finished and the last one's sparsity and test score."""
    from esprune import sweep as _sweep

    rows = _sweep.status(directory)
    click.echo(json.dumps(rows, indent=2) if as_json else _sweep.render_status(rows))


@sweep.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print every grid as JSON.")
def sweep_presets(as_json):
    """The paper's grids for `esprune sweep --preset NAME` (at the paper's budgets: see --scale)."""
    from esprune import grids

    if as_json:
        click.echo(json.dumps({name: grid for name, (_, grid) in grids.GRIDS.items()}, indent=2))
        return
    width = max(map(len, grids.GRIDS))  # the longest name (repro-pgpe-fashion-mnist) sets the column
    for name, (about, _) in grids.GRIDS.items():
        click.echo(f"{name:<{width}} {about}")


# ---------------------------------------------------------------------------------------------- analyses
def _analysis_prefix(prefix, run_file, analysis):
    """--out of an analysis (default: beside RUN_FILE, named after the analysis), with PREFIX.json and PREFIX.png
    checked before the work starts (missing directories are made, as the analyses always did)."""
    from esprune.analysis import output
    from esprune.outputs import check_all

    prefix = str(prefix or output.default_prefix(run_file, analysis))
    for suffix in (".json", ".png"):  # --out res.json means the prefix res, not res.json.json and res.json.png
        prefix = prefix[:-len(suffix)] if prefix.endswith(suffix) else prefix
    check_all([f"{prefix}.json", f"{prefix}.png", f"{prefix}.partial.json"], f"{analysis} output", make_dirs=True)
    return prefix


def _each(items, label, show):
    """The items of an analysis one at a time: under a progress bar in a terminal; sent to a file or pipe, a line
    "LABEL i/n: SHOW(ITEM) done" on stderr as each is done (click's bar would print only its bare label there,
    once, even before an error line)."""
    if _interactive(sys.stderr):
        with click.progressbar(items, label=label, file=sys.stderr, item_show_func=lambda x: x and show(x)) as bar:
            yield from bar
        return
    for i, item in enumerate(items, 1):
        yield item  # the caller's work on it runs here
        click.echo(f"{label} {i}/{len(items)}: {show(item)} done", err=True)


def _write_outputs(result, prefix, draw, what):
    """The numbers to PREFIX.json and, with the plot extra, the figure to PREFIX.png."""
    from esprune.analysis import output
    from esprune.outputs import writing

    with writing():
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
@click.option("--iteration", type=int, help="Compare the two runs at this iteration only (default: every common one); "
                                            "not with --consecutive.")
@click.option("--consecutive", is_flag=True,
              help="Compare consecutive iterations k, k+1 of RUN_A (not with --iteration).")
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

    Each pair's result is kept in PREFIX.partial.json as it finishes: stopped, the same command continues
    with the pairs left.
    """
    from esprune.analysis import connectivity, output
    from esprune.analysis.partial import item_key

    pairs = connectivity.pairs(run_a, run_b, iteration, consecutive)
    prefix = _analysis_prefix(prefix, run_a, "connect")
    keys = [f"{item_key(a.path, a.iteration)} {item_key(b.path, b.iteration)}" for a, b in pairs]
    partial = _partial(prefix, {"analysis": "connect", "points": points, "backend": backend}, keys)
    results = [partial.result(key, lambda: connectivity.connect(a, b, points, backend))
               for key, (a, b) in _each(list(zip(keys, pairs)), "connect", lambda p: f"{p[1][0].label} ↔ "
                                                                                    f"{p[1][1].label}")]
    click.echo(output.table(connectivity.rows(results), connectivity.COLUMNS))
    _write_outputs({"pairs": results}, prefix, lambda out, plt: connectivity.figure(results, out, plt),
                   "score and loss along each path")
    partial.done()


def _partial(prefix, settings, keys):
    """The analysis's ``Partial`` (its finished items kept as they finish), saying how much a stopped run of
    the same command had already done."""
    from esprune.analysis.partial import Partial

    partial = Partial(prefix, settings)
    if partial.notice:
        click.echo(f"warning: {partial.notice}", err=True)
    found = partial.found(keys)
    if found:
        click.echo(f"continuing: {found} of {len(keys)} items were finished by an earlier run of this command "
                   f"({partial.path})", err=True)
    return partial


@cli.command()
@click.argument("run_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--iteration", "iterations", multiple=True, type=int,
              help="Iterations to analyse (repeatable; default: every finished one).")
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1), help="Hessian eigenvalues to find.")
@click.option("--probes", default=20, show_default=True, type=click.IntRange(2),
              help="Hutchinson probes for the trace.")
@click.option("--batch", default=512, show_default=True, type=click.IntRange(1),
              help="Training images the loss, Hessian and sharpness of a classification solution are measured "
                   "on: one fixed seeded batch, the same for every solution (ES or GD, any seed).")
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
    profile only. Each solution's result is kept in PREFIX.partial.json as it finishes: stopped, the same
    command continues with the solutions left.
    """
    from esprune.analysis import flatness as _flatness
    from esprune.analysis import output
    from esprune.analysis.partial import item_key
    from esprune.analysis.solutions import finished_iterations, load

    for path in run_files:
        if not finished_iterations(path):
            raise UsageError(f"{path} has no finished iteration yet; continue it with `esprune resume {path}`")
    jobs = list(dict.fromkeys((os.path.normpath(path), k) for path in run_files
                              for k in (iterations or finished_iterations(path))))  # each solution once
    prefix = _analysis_prefix(prefix, run_files[0], "flatness")
    keys = [item_key(path, k) for path, k in jobs]
    partial = _partial(prefix, {"analysis": "flatness", "top_k": top_k, "probes": probes, "batch": batch,
                                "samples": samples, "backend": backend}, keys)
    results = [partial.result(key, lambda: _flatness.analyze(load(path, k), top_k, probes, batch, samples=samples,
                                                             backend=backend))
               for key, (path, k) in _each(list(zip(keys, jobs)), "flatness", lambda j: f"{j[1][0]}@{j[1][1]}")]
    click.echo(output.table(_flatness.rows(results), _flatness.columns(results)))
    notes = {r.get("note") for r in results} - {None}
    for note in notes:
        click.echo(note, err=True)
    _write_outputs({"solutions": results}, prefix, lambda out, plt: _flatness.figure(results, out, plt),
                   "top eigenvalue vs sparsity, sharpness profiles")
    partial.done()


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
    from esprune.analysis.solutions import finished_iterations

    finished_iterations(run_file)  # a missing or foreign run file is named before the output is checked
    prefix = _analysis_prefix(prefix, run_file, "snr")
    results = _snr.study(run_file)
    click.echo(output.table(results, _snr.COLUMNS))
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
    its content verifies against data/checksums.json. Names the places searched when a file is missing; exits 2
    when no file is found at all or one fails verification."""
    from esprune import datasets

    report = datasets.check(data_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for key, entry in report.items():
            click.echo(f"{entry['status']:<8} {key:<45} {entry['path'] or ''}")
            if entry["status"] == "bad":
                click.echo(f"         {entry['reason']}")
    missing = [key for key, entry in report.items() if entry["status"] == "missing"]
    if missing and not as_json:
        where = sorted({str(d) for name in datasets.NAMES for d in datasets.search_dirs(name, data_dir)})
        click.echo(f"{len(missing)} of {len(report)} file(s) missing; looked in {', '.join(where)}. Set ESPRUNE_DATA "
                   "to the folder holding mnist/, fashion-mnist/, kmnist/, or `esprune data fetch NAME`.")
    if len(missing) == len(report):
        raise UsageError("no dataset file found anywhere (see the places above, or --json); "
                         "set ESPRUNE_DATA or run `esprune data fetch NAME`")
    bad = [key for key, entry in report.items() if entry["status"] == "bad"]
    if bad:
        names = sorted({key.split("/")[0] for key in bad})
        raise UsageError(f"{len(bad)} file(s) fail verification ({', '.join(bad)}); replace them with "
                         + " and ".join(f"`esprune data fetch {n}`" for n in names))


@data.command("fetch")
@click.argument("name", type=click.Choice(["mnist", "fashion_mnist", "kmnist"]))
@click.option("--dir", "dest", default=None, type=click.Path(file_okay=False),
              help="Where to put the files (default: $ESPRUNE_DATA, else ~/.cache/esprune).")
@click.option("--url", default=None, help="Base URL to download from (default: the official site).")
def data_fetch(name, dest, url):
    """Download a dataset's official files; each is kept only once its content verifies (a corrupt copy
    already there is replaced)."""
    from pathlib import Path

    from esprune import datasets

    dest = dest or datasets.default_dir()
    kept = datasets.fetch(name, dest, url, progress=lambda f: click.echo(f"verified {f}", err=True))
    click.echo(f"{name}: {len(kept)} file(s) downloaded into {Path(dest) / datasets.folder(name)}")


def _bench_options(repeats: int | None, unit: str = ""):
    """--threads, --compare, --json and --out, which every bench suite takes, and --repeats where it has one."""
    def apply(fn):
        fn = click.option("--out", type=click.Path(dir_okay=False, writable=True),
                          help="Also write the JSON result here.")(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")(fn)
        fn = click.option("--compare", "compare_to", type=click.Path(exists=True, dir_okay=False),
                          help="An earlier result (--out of the same suite or of bench all): print each row's "
                               "old/new ratio and both machines.")(fn)
        fn = click.option("--threads", type=click.IntRange(1), default=None,
                          help="CPU threads for the kernels (and BLAS, with threadpoolctl); default every core.")(fn)
        if repeats is not None:
            fn = click.option("--repeats", default=repeats, show_default=True, type=click.IntRange(1),
                              help=f"Timed {unit}.")(fn)
        return fn
    return apply


@cli.group()
def bench():
    """Measure speed: medians over repeats, GFLOP/s against this machine's matmul peak, and ratios."""


@bench.command("forward")
@click.option("--backend", "backends", multiple=True, type=click.Choice(_backend.NAMES),
              help="Backends to measure (repeatable); default: every usable one.")
@click.option("--density", "densities", multiple=True, type=DENSITY,
              help="Weight densities to measure (repeatable); default 1.0 0.8 0.5 0.2 0.05 0.01.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["mlp-control", "mlp-wide", "cnn-mnist"]),
              help="Workloads to measure (repeatable); default: all three.")
@_bench_options(repeats=5, unit="calls per row")
def bench_forward(backends, densities, workloads, repeats, threads, compare_to, as_json, out):
    """Population forward passes: the paper's control MLP (P=100, B=8), a wide MLP and the paper's MNIST CNN
    (both P=128, B=1024). Dense and sparse paths per density, GFLOP/s against the matmul peak, speed-ups."""
    _check_bench_out(out)
    from esprune.bench import forward as suite

    kwargs = {"repeats": repeats, "backends": backends, "workloads": workloads}
    if densities:
        kwargs["densities"] = densities
    _run_suite("bench forward", lambda progress: suite.forward(progress=progress, **kwargs), suite.render,
               threads, compare_to, as_json, out)


@bench.command("tasks")
@_bench_options(repeats=5, unit="calls per row")
def bench_tasks(repeats, threads, compare_to, as_json, out):
    """CartPole-v1 environment steps per second: numpy reference vs the fused numba rollout."""
    _check_bench_out(out)
    from esprune.bench import rollouts as suite

    _run_suite("bench tasks", lambda progress: suite.task_rollouts(repeats=repeats, progress=progress), suite.render,
               threads, compare_to, as_json, out)


@bench.command("generation")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["numba", "cupy"]),
              help="Backends to measure (repeatable); default: numba and, when usable, cupy.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["W1", "W1-full", "W2", "W3"]),
              help="W1: CartPole-v1, 4-64-64-2 tanh, Sep-CMA-ES, P=100, 8 episodes, learning from the init; "
                   "W1-full: the same with a balancing policy, every episode 500 steps (constant work); W2: the "
                   "MNIST CNN, SNES, P=128, batch 1024 (synthetic images); W3: Ant-v5 on MuJoCo, Sep-CMA-ES, P=256, 8 "
                   "episodes of 50 steps, beside MuJoCo's raw batched stepping (needs esprune[mujoco]). Default "
                   "W1, W1-full, W2.")
@click.option("--density", "densities", multiple=True, type=DENSITY,
              help="Densities (repeatable); default 1.0 and 0.8**10 (W2 also 0.05). W3 runs dense only.")
@click.option("--physics", type=click.Choice(["auto", "mujoco", "warp"]), default="auto", show_default=True,
              help="W3's physics: auto = MuJoCo Warp on the cupy backend (esprune[gpu-physics]), C MuJoCo on "
                   "numba; warp = MuJoCo Warp on every backend (Warp's CPU device beside numba); mujoco = C MuJoCo.")
@_bench_options(repeats=5, unit="generations per row")
def bench_generation(backends, workloads, densities, physics, repeats, threads, compare_to, as_json, out):
    """Seconds per ES generation (ask → evaluate → tell), env steps/s or images/s, GFLOP/s and the fraction of
    the matmul peak, sparse/dense and GPU/CPU ratios."""
    _check_bench_out(out)
    if physics != "auto" and "W3" not in workloads:
        raise UserError(f"--physics {physics} applies to W3 only; add --workload W3")
    from esprune.bench import generation as suite

    _run_suite("bench generation",
               lambda progress: suite.generation(backends or None, repeats=repeats, progress=progress,
                                                 workloads=workloads or ("W1", "W1-full", "W2"),
                                                 densities=densities or None, physics=physics),
               suite.render, threads, compare_to, as_json, out)


@bench.command("imp")
@_bench_options(repeats=1, unit="runs")
def bench_imp(repeats, threads, compare_to, as_json, out):
    """The whole IMP loop: the demo preset cut to 3 iterations (checkpoints, test scores and pruning included)."""
    _check_bench_out(out)
    from esprune.bench import imp_loop as suite

    _run_suite("bench imp", lambda progress: suite.imp(repeats, progress=progress), suite.render,
               threads, compare_to, as_json, out)


@bench.command("mpi")
@click.option("--ranks", "ranks", multiple=True, type=click.IntRange(1), help="Rank counts (repeatable; default 1 2).")
@click.option("--generations", default=20, show_default=True, type=click.IntRange(1), help="Timed generations.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Also write the JSON result here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def bench_mpi(ranks, generations, out, as_json):
    """A generation of W1 (CartPole-v1, P=100) with the population split over R MPI ranks on this host
    (mpiexec -n R) against one process: seconds per generation and the bytes each rank sends and receives
    (needs the mpi extra)."""
    _check_bench_out(out)
    from esprune.bench import mpi as _bench

    with _bench_progress("bench mpi") as progress:
        result = _bench.run(ranks or (1, 2), generations, progress=progress)
    _emit_compared(result, _bench.render, as_json, out, None)


@bench.command("all")
@_bench_options(repeats=None)
def bench_all(threads, compare_to, as_json, out):
    """The whole suite with its default settings: forward, tasks, generation and imp, on every usable backend
    (what `make bench` runs); --out writes {forward, tasks, generation, imp}."""
    _check_bench_out(out)
    from esprune.bench import forward, generation, imp_loop, rollouts, set_threads

    set_threads(threads)
    old = _load_compare(compare_to)
    suites = {}
    for name, run_suite, render in (("forward", forward.forward, forward.render),
                                    ("tasks", rollouts.task_rollouts, rollouts.render),
                                    ("generation", generation.generation, generation.render),
                                    ("imp", imp_loop.imp, imp_loop.render)):
        with _bench_progress(f"bench {name}") as progress:
            suites[name] = run_suite(progress=progress)
        if not as_json:
            click.echo(f"\n== {name}\n{render(suites[name])}")
    _emit_compared(suites, None, as_json, out, compare_to, old)


def _run_suite(label, run_suite, render, threads, compare_to, as_json, out):
    from esprune.bench import set_threads

    set_threads(threads)
    old = _load_compare(compare_to)
    with _bench_progress(label) as progress:
        result = run_suite(progress)
    _emit_compared(result, render, as_json, out, compare_to, old)


def _load_compare(compare_to):
    """The --compare file, read before the benchmark runs: a bad file fails at once, and --out may name the same
    file (it is compared with what it held before this run overwrote it)."""
    from esprune.bench import compare

    return compare.load(compare_to) if compare_to else None


def _emit_compared(result, render, as_json, out, compare_to, old=None):
    """Print (table or JSON) and write the result; with an old file (``old``: its contents, read before the
    run), also the comparison (under "compare")."""
    from esprune.bench import compare
    from esprune.outputs import writing

    if out:
        with writing("benchmark result"), open(out, "w") as fh:
            fh.write(json.dumps(result, indent=2) + "\n")
    compared = compare.compare(result, old) if old is not None else None
    if as_json:
        click.echo(json.dumps({**result, "compare": compared} if compared else result, indent=2))
        return
    if render:
        click.echo(render(result))
    if compared:
        click.echo(f"\n== compared with {compare_to}\n{compare.render(compared)}")


def _check_bench_out(out):
    """--out is checked before the benchmark runs, so a result is never computed only to be lost."""
    if out is not None:
        from esprune.outputs import check_writable

        check_writable(out, what="benchmark result")


@contextlib.contextmanager
def _bench_progress(label):
    """A progress bar on stderr and the ``progress(done, total, row)`` callback the suites call."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
        def progress(done, total, row):
            bar.length = total
            bar.update(done - bar.pos)
        yield progress


def _one_line_warnings():
    """esprune's own notices (e.g. the cupy backend's fallback to C MuJoCo) print as one line "warning: ..." on
    stderr, not Python's two-line "file:line: Category: ..." followed by the source line."""
    import warnings

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if filename.startswith(os.path.dirname(esprune.__file__)):
            click.echo(f"warning: {message}", err=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main():
    _one_line_warnings()
    cli(prog_name="esprune")


if __name__ == "__main__":
    main()
