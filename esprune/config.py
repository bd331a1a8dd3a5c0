"""The experiment config: defaults, TOML files, flag overrides, and validation before any work starts.

``resolve`` merges preset → TOML file → flags (later wins) onto the defaults and returns a :class:`RunConfig`,
a frozen dataclass checked once, as a whole, before a file is touched: every type, every range (each strategy
hyperparameter included), every seed that any iteration will use, the backend (``auto`` is resolved and the
result stored), the memory the population needs, and that pruning leaves at least one weight. Run files store
it as JSON (``to_dict``); code reads it by attribute, or by key for the plain-dict readers of older code.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from . import backend as _backend
from . import prune, strategies, tasks
from .errors import ConfigError, written
from .strategies import hparams as _hparams

SEED_LIMIT = 2**32  # seeds key the Philox noise: every seed must be a uint32
OPTION_TABLES = ("task_options", "strategy_options", "gd_options", "prune_options")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's numbers. Build it with :func:`resolve` or :func:`validate`."""

    task: str = "CartPole-v1"
    task_options: Mapping = field(default_factory=dict)      # tasks.make options (episodes, batch_size, data_dir)
    strategy: str = "sep_cma_es"
    strategy_options: Mapping = field(default_factory=dict)  # hyperparameters, e.g. sigma_init, elite_ratio
    prune: str = "snr"            # ticket maker: magnitude, snr, random-reinit, magnitude-permute, ...
    prune_options: Mapping = field(default_factory=dict)  # ticket makers' options (prune.PRUNE_OPTIONS)
    snr_variance: bool = False    # rank SNR by |μ|/std² (the published Sep-CMA-ES code) instead of |μ|/std
    prune_from: str = "final"     # prune from the final or the best (highest test score) mean
    iterations: int = 20          # IMP iterations after the dense run: k = 0..iterations
    keep: float = 0.8             # fraction of active prunable weights kept per iteration
    generations: int = 2000       # per iteration
    popsize: int = 100
    seed: int = 0                 # ES seed (seed + k at iteration k unless fixed_seed) and test episodes
    fixed_seed: bool = False
    init_seed: int | None = None  # network init; default: seed
    backend: str = "numba"        # as resolved: "auto" is stored as the backend it chose
    eval_every: int = 50          # generations between test scores of the mean
    checkpoint_every: int = 50    # generations between checkpoints (also at every iteration's end)
    trainer: str = "es"           # es, or gd: gradient descent (Adam on classification, PPO on control)
    gd_options: Mapping = field(default_factory=dict)  # the GD trainer's options (epochs, lr, ...; PPO: timesteps)
    tickets_from: str | None = None  # transfer: train the tickets of this run file instead of pruning

    def __post_init__(self):
        for key in OPTION_TABLES:  # frozen all the way down
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))

    def __getitem__(self, key: str):
        """``cfg["keep"]``: the dict-style read of code written for the plain-dict config."""
        if key not in KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in KEYS else default

    def to_dict(self) -> dict:
        """Plain JSON-able dict (what run files store)."""
        return {k: (dict(v) if k in OPTION_TABLES else v) for k, v in
                ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))}

    def __reduce__(self):  # picklable (sweep workers) although the option tables are read-only proxies
        return (_from_dict, (self.to_dict(),))

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def seed_at(self, k: int) -> int:
        """The ES seed of IMP iteration ``k`` (PAPER.md: seed + iteration unless fixed)."""
        return self.seed if self.fixed_seed else self.seed + k

    @property
    def network_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed


def _from_dict(values: dict) -> RunConfig:
    return RunConfig(**values)


KEYS = tuple(f.name for f in dataclasses.fields(RunConfig))
# what older run files lacked meant
LATER_KEYS = {"trainer": "es", "gd_options": {}, "tickets_from": None, "prune_options": prune.LEGACY_PRUNE_OPTIONS}
DEFAULTS = RunConfig().to_dict()


def load_toml(path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def resolve(*layers: dict, prepare: bool = True) -> RunConfig:
    """Defaults, then each layer in turn (None values are skipped), validated (``prepare``: with the task's
    data loaded and verified, so a missing file stops the run before it starts)."""
    cfg = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in DEFAULTS.items()}
    for layer in layers:
        if isinstance(layer, RunConfig):
            layer = layer.to_dict()
        for key, value in (layer or {}).items():
            if value is None:
                continue
            if key in OPTION_TABLES and isinstance(value, Mapping) and isinstance(cfg.get(key), Mapping):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
    return validate(cfg, prepare)


def validate(cfg, prepare: bool = True) -> RunConfig:
    """``cfg`` (a dict or a RunConfig) checked as a whole; raises ConfigError (BackendUnavailable for a backend
    this machine lacks) naming the first bad value and how to fix it."""
    cfg = cfg.to_dict() if isinstance(cfg, RunConfig) else dict(cfg)
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(map(str, unknown))}; known: {', '.join(KEYS)}")
    missing = sorted(set(KEYS) - set(cfg))
    if missing:
        raise ConfigError(f"config lacks key(s) {', '.join(missing)}")
    _check_types(cfg)
    _check_ranges(cfg)
    cfg["keep"] = float(cfg["keep"])
    cfg["prune"] = prune.canonical(cfg["prune"])
    cfg["strategy"] = strategies.canonical(cfg["strategy"])
    cfg["prune_options"] = prune.check_options(cfg["prune_options"], cfg["prune"])  # every option, stored
    prune.check_snr_variance(cfg["snr_variance"], cfg["strategy"])
    cfg["backend"] = _backend.get(cfg["backend"]).name  # "auto" → what it is here; unusable → one line
    factory = tasks.TASKS.get(cfg["task"])
    if factory is not None:
        _check_options(f"task_options of {cfg['task']}", factory, cfg["task_options"])
    task = tasks.make(cfg["task"], **cfg["task_options"])  # unknown task or option → ConfigError
    if getattr(task, "physics", None) == "warp":  # before any file is touched: MuJoCo Warp runs here, for this body
        task.physics_for(cfg["backend"])
    _check_trainer(cfg, task)  # before the network: PPO's options choose its policy
    from . import gd

    net = gd.network(task, cfg)  # the task's network, or the GD trainer's own (PPO policy="paper")
    spec = net.spec
    _check_keep(cfg, spec)
    _check_memory(cfg, spec)
    _check_strategy(cfg, spec)
    if cfg["tickets_from"] is not None:
        _check_source(cfg, net)
    if prepare and hasattr(task, "prepare"):
        task.prepare()
    return RunConfig(**cfg)


# ---------------------------------------------------------------------------------------------- the checks
_TYPES = {"task": str, "strategy": str, "prune": str, "prune_from": str, "backend": str, "trainer": str,
          "snr_variance": bool, "fixed_seed": bool, "keep": float, "tickets_from": (str, type(None)),
          "init_seed": (int, type(None))}
_INTEGERS = ("iterations", "generations", "popsize", "seed", "eval_every", "checkpoint_every")


def _check_types(cfg):
    for key in _INTEGERS:
        _integer(key, cfg[key])
    if cfg["init_seed"] is not None:
        _integer("init_seed", cfg["init_seed"])
    for key, kind in _TYPES.items():
        value = cfg[key]
        if kind is bool and not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {written(value)}")
        if kind is str and not isinstance(value, str):
            raise ConfigError(f"{key} must be a name (text), got {written(value)}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{key} must be a number, got {written(value)}")
    if not isinstance(cfg["tickets_from"], (str, type(None))) or cfg["tickets_from"] == "":
        raise ConfigError(f"tickets_from must be the path of a run file, got {cfg['tickets_from']!r}")
    for key in OPTION_TABLES:
        if not isinstance(cfg[key], Mapping) or not all(isinstance(k, str) for k in cfg[key]):
            raise ConfigError(f"{key} must be a table of options, got {cfg[key]!r}")


def _check_ranges(cfg):
    if cfg["iterations"] < 0:
        raise ConfigError(f"iterations must be >= 0, got {cfg['iterations']}")
    for key in ("generations", "eval_every", "checkpoint_every"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {cfg[key]}")
    if not (math.isfinite(cfg["keep"]) and 0 < cfg["keep"] < 1):
        raise ConfigError(f"keep must be a fraction strictly between 0 and 1, got {cfg['keep']!r}")
    last = cfg["seed"] + (0 if cfg["fixed_seed"] else cfg["iterations"])
    if not 0 <= cfg["seed"] or last >= SEED_LIMIT:
        top = SEED_LIMIT - 1 - (0 if cfg["fixed_seed"] else cfg["iterations"])
        raise ConfigError(f"seed must lie in [0, {top}] so that every iteration's seed (seed + iteration, up to "
                          f"seed + {cfg['iterations']}) is a 32-bit unsigned integer, got {cfg['seed']}")
    if cfg["init_seed"] is not None and not 0 <= cfg["init_seed"] < SEED_LIMIT:
        raise ConfigError(f"init_seed must lie in [0, {SEED_LIMIT - 1}], got {cfg['init_seed']}")
    if cfg["prune_from"] not in ("final", "best"):
        raise ConfigError(f"prune_from must be 'final' or 'best', got {cfg['prune_from']!r}")
    if cfg["backend"] not in _backend.CHOICES:
        raise ConfigError(f"unknown backend {cfg['backend']!r}; choose one of {', '.join(_backend.CHOICES)}")
    if cfg["trainer"] not in ("es", "gd"):
        raise ConfigError(f"trainer must be 'es' or 'gd', got {cfg['trainer']!r}")


def _check_keep(cfg, spec):
    """Every iteration must leave at least one prunable weight (``keep**K · n`` rounds to >= 1)."""
    n, keep, K = spec.prunable_size, cfg["keep"], cfg["iterations"]
    if cfg["tickets_from"] is None and K and prune.kept_after(n, keep, K) < 1:
        most = max(k for k in range(K + 1) if prune.kept_after(n, keep, k) >= 1)
        raise ConfigError(f"keep {keep} with {K} iterations prunes all {n} weights of {cfg['task']}'s network "
                          f"(from iteration {most + 1} on); raise keep or ask for --iterations {most} or fewer")


def _check_memory(cfg, spec):
    """Refuse a population that cannot fit: P members × d parameters in float32, plus the strategy's per-member
    vectors (a population is sampled whole every generation)."""
    need = cfg["popsize"] * (spec.size * 4 + 64)
    have = available_memory()
    if have and spec.size * 4 > have:  # no popsize helps: the network's size comes from the task's options
        raise ConfigError(f"{cfg['task']}'s network has {spec.size} parameters, {spec.size * 4 / 2**30:.1f} GiB "
                          f"for one member alone; this machine has {have / 2**30:.1f} GiB: use a smaller network "
                          "(task options such as hidden)")
    if have and need > have:
        raise ConfigError(f"popsize {cfg['popsize']} needs about {need / 2**30:.1f} GiB for the population "
                          f"alone ({cfg['popsize']} × {spec.size} parameters × 4 bytes); this machine has "
                          f"{have / 2**30:.1f} GiB: use a smaller --popsize")


def available_memory() -> int | None:
    """Physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_strategy(cfg, spec):
    name, options = cfg["strategy"], cfg["strategy_options"]
    _hparams.check(name, options, strategies.hyperparameters(name))
    # option names, popsize rule and each strategy's own checks, at the real dimension
    strategies.make(name, spec.size, cfg["popsize"], **options)
    cfg["strategy_options"] = strategies.resolved_options(name, options)  # the variant that ran, stored


def _check_trainer(cfg, task):
    if cfg["trainer"] == "gd":
        from . import gd

        _check_options("gd_options", gd.trainer_class(task), cfg["gd_options"])
        gd.make_trainer(task, **cfg["gd_options"])  # option names and values
        if cfg["prune"] == "snr":
            raise ConfigError("prune=snr ranks weights by the ES search std, which gradient descent does not have; "
                              "use magnitude (the paper's GD baseline) or another method")
    elif cfg["gd_options"]:
        raise ConfigError("gd_options are given but trainer is 'es'; add trainer = 'gd' (--trainer gd)")
    if cfg["prune"] in prune.GRADIENT and task.kind != "classify":
        raise ConfigError(f"prune={cfg['prune']} needs a supervised loss: use it on a classification task")


def _check_source(cfg, net):
    """A transfer source must be a readable run file of the same network with tickets for every iteration."""
    from .store import RunFile

    source = RunFile.open(cfg["tickets_from"])
    if source.spec != net.spec:
        given = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg["task_options"].items())
        made = f"with task options {given}" if given else "with its default options"
        raise ConfigError(f"{cfg['tickets_from']} holds tickets of another network (weights "
                          f"{_weight_shapes(source.spec)}) than the one {cfg['task']} makes {made} ({net!r}: "
                          f"weights {_weight_shapes(net.spec)}); transfer needs the same network shape")
    available = source.tickets()
    if available < cfg["iterations"] + 1:
        raise ConfigError(f"{cfg['tickets_from']} has tickets for iterations 0..{available - 1} only; "
                          f"ask for --iterations {max(available - 1, 0)} or fewer")


def _weight_shapes(spec) -> str:
    """The prunable tensors' shapes, e.g. ``4×64, 64×64, 64×2``."""
    return ", ".join("×".join(map(str, t.shape)) for t in spec if t.prunable)


def _check_options(what, factory, options):
    """Each option's type against the factory's signature (annotation, else its default's type): an integer
    option takes integers only (2.5 episodes is refused, not truncated), a float option finite numbers."""
    params = inspect.signature(factory).parameters
    for key, value in options.items():
        p = params.get(key)
        if p is None:
            continue  # the factory's own check names unknown options
        kind = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        if kind in ("", "_empty") and p.default is not inspect.Parameter.empty and p.default is not None:
            kind = type(p.default).__name__
        optional = "None" in kind or p.default is None
        if value is None and optional:
            continue
        kind = kind.replace("| None", "").replace("None |", "").strip()
        if kind == "int":
            _integer(f"{what}: {key}", value)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{what}: {key} must be a finite number, got {written(value)}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{what}: {key} must be true or false, got {written(value)}")
        elif kind == "str" or (p.default is None and key.endswith("dir")):
            if not isinstance(value, str):
                raise ConfigError(f"{what}: {key} must be text, got {written(value)}")
        elif kind == "tuple":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                               and v > 0 for v in value):
                raise ConfigError(f"{what}: {key} must be a list of positive integers, got {written(value)}")


def _integer(key, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {written(value)}")


# ---------------------------------------------------------------------------------------------- derived configs
def default_path(cfg: RunConfig, preset: str | None = None) -> str:
    """Where ``esprune run`` writes without --out: runs/<preset|task>-<prune>[-gd]-s<seed>.h5."""
    trainer = "" if cfg.trainer == "es" else "-gd"
    return f"runs/{preset or cfg.task}-{cfg.prune}{trainer}-s{cfg.seed}.h5"


def check_es_flags(trainer: str, flags: dict) -> None:
    """ConfigError when command-line ``flags`` (config keys, None = not given) set the evolution strategy of a
    run that ``trainer`` "gd" trains by gradient descent: stored, they would claim a setting that never ran."""
    es_only = [flag for key, flag in (("strategy", "--strategy"), ("strategy_options", "--strategy-option"),
                                      ("generations", "--generations"), ("popsize", "--popsize"))
               if flags.get(key) is not None]
    if trainer == "gd" and es_only:
        raise ConfigError(f"{', '.join(es_only)} set the evolution strategy, which gradient descent (trainer gd) "
                          "does not use; leave them out, or train by ES (--trainer es)")


def transfer_config(source, changes: dict, prepare: bool = True) -> RunConfig:
    """The config of a transfer run: the source run's config with ``changes`` (None values are kept from the
    source) and ``tickets_from = source``; every ticket of the source unless ``iterations`` is given.

    A new task drops the source task's options (e.g. data_dir) and GD options (supervised vs PPO); a new
    strategy drops the source strategy's hyperparameters (they belong to it: the new one starts from its own
    defaults, or from ``changes["strategy_options"]``); a GD transfer of an SNR run is labelled magnitude (no
    pruning happens in a transfer)."""
    from .store import RunFile

    run = RunFile.open(source)
    base = dict(run.config)
    changes = dict(changes)
    if changes.get("task") and changes["task"] != base.get("task"):
        base["task_options"], base["gd_options"] = {}, {}
    if changes.get("strategy") and strategies.canonical(changes["strategy"]) != base.get("strategy"):
        base["strategy_options"] = {}
    if changes.get("trainer") == "gd" and base.get("prune") == "snr":
        base["prune"] = "magnitude"
    if changes.get("trainer") == "es" and base.get("trainer") == "gd":  # the source's GD options mean nothing now
        base["gd_options"] = {}
    check_es_flags(changes.get("trainer") or base.get("trainer", "es"), changes)
    available = run.tickets()
    if changes.get("iterations") is None:
        if not run.finished:  # a run still going (or stopped) has fewer tickets now than it will have
            raise ConfigError(f"{source} is unfinished: it has tickets 0..{available - 1} of 0..{base['iterations']} "
                              f"so far; finish it first (`esprune resume {source}`), or transfer the tickets it has "
                              f"with --iterations {available - 1}")
        changes["iterations"] = available - 1
    return resolve(base, changes, {"tickets_from": str(source)}, prepare=prepare)
