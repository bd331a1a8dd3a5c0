"""The ``esprune`` command line: argument handling and printing only; the work is done by library calls."""
from __future__ import annotations

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
        click.echo(f"{name}: obs {shape}, {t['act_dim']} outputs, {t['actions']}, horizon {t['horizon']}, "
                   f"{t['default_net']}")


@cli.group()
def bench():
    """Measure speed: medians over repeats, GFLOP/s against this machine's matmul peak, and ratios."""


@bench.command("forward")
@click.option("--backend", "backends", multiple=True, type=click.Choice(_backend.NAMES),
              help="Backends to measure (repeatable); default: every usable one.")
@click.option("--density", "densities", multiple=True, type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Weight densities to measure (repeatable); default 1.0 0.8 0.5 0.2 0.05 0.01.")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1), help="Timed calls per row.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Also write the JSON result here.")
def bench_forward(backends, densities, repeats, as_json, out):
    """Population forward passes of the paper's control MLP (P=100, B=8) and a wide MLP (P=128, B=1024)."""
    from esprune import bench as _bench

    kwargs = {"repeats": repeats, "backends": backends}
    if densities:
        kwargs["densities"] = densities
    with click.progressbar(length=1, label="bench forward", file=sys.stderr) as bar:
        def progress(done, total, row):
            bar.length = total
            bar.update(done - bar.pos)
        result = _bench.forward(progress=progress, **kwargs)
    _emit(result, as_json, out, _bench.render)


@bench.command("tasks")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1), help="Timed calls per row.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Also write the JSON result here.")
def bench_tasks(repeats, as_json, out):
    """CartPole-v1 environment steps per second: numpy reference vs the fused numba rollout."""
    from esprune import bench as _bench

    with click.progressbar(length=2, label="bench tasks", file=sys.stderr) as bar:
        result = _bench.task_rollouts(repeats=repeats, progress=lambda done, total, row: bar.update(1))
    _emit(result, as_json, out, _bench.render_tasks)


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
