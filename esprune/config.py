"""The experiment config: defaults, TOML files, flag overrides, and validation before any work starts.

A config is a plain dict (it is stored as JSON in every run file). ``resolve`` merges preset → TOML file →
flags (later wins) onto the defaults and rejects unknown keys and impossible values with the reason.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from . import backend as _backend
from . import gd, prune, strategies, tasks
from .errors import ConfigError

DEFAULTS = {
    "task": "CartPole-v1",
    "task_options": {},        # passed to tasks.make (e.g. episodes, batch_size, data_dir)
    "strategy": "sep_cma_es",
    "strategy_options": {},    # hyperparameters, e.g. sigma_init, elite_ratio, mean_decay
    "prune": "snr",            # ticket maker: magnitude, snr, random-reinit, magnitude-permute, ...
    "prune_options": {},       # ticket makers' options (prune.PRUNE_OPTIONS): rescore (snip), nested (random-reinit)
    "snr_variance": False,     # rank SNR by |μ|/std² (the published Sep-CMA-ES code) instead of |μ|/std
    "prune_from": "final",     # prune from the final or the best (highest test score) mean
    "iterations": 20,          # IMP iterations after the dense run: k = 0..iterations
    "keep": 0.8,               # fraction of active prunable weights kept per iteration
    "generations": 2000,       # per iteration
    "popsize": 100,
    "seed": 0,                 # ES seed (seed + k at iteration k unless fixed_seed) and test episodes
    "fixed_seed": False,
    "init_seed": None,         # network init; default: seed
    "backend": "numba",
    "eval_every": 50,          # generations between test scores of the mean
    "checkpoint_every": 50,    # generations between checkpoints (also at every iteration's end)
    "trainer": "es",           # es, or gd: gradient descent (Adam on classification, PPO on control)
    "gd_options": {},          # the GD trainer's options, e.g. epochs, lr, batch_size (PPO: timesteps, ...)
    "tickets_from": None,      # transfer: train the tickets of this run file instead of pruning
}
KEYS = tuple(DEFAULTS)
OPTION_TABLES = ("task_options", "strategy_options", "gd_options", "prune_options")


def load_toml(path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


def resolve(*layers: dict, prepare: bool = True) -> dict:
    """Defaults, then each layer in turn (None values are skipped), validated (``prepare``: with the task's
    data loaded and verified, so a missing file stops the run before it starts)."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is None:
                continue
            if key in OPTION_TABLES and isinstance(value, dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
    return validate(cfg, prepare)  # also rejects unknown keys


def validate(cfg: dict, prepare: bool = True) -> dict:
    """``cfg`` with canonical names; raises ConfigError naming the first bad value."""
    cfg = dict(cfg)
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    for key in ("iterations", "generations", "popsize", "seed", "eval_every", "checkpoint_every"):
        _integer(cfg, key)
    for key in ("snr_variance", "fixed_seed"):
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"{key} must be true or false, got {cfg[key]!r}")
    if cfg["init_seed"] is not None:
        _integer(cfg, "init_seed")
    if cfg["iterations"] < 0:
        raise ConfigError(f"iterations must be >= 0, got {cfg['iterations']}")
    for key in ("generations", "eval_every", "checkpoint_every"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {cfg[key]}")
    if isinstance(cfg["keep"], bool) or not isinstance(cfg["keep"], (int, float)) or not 0 < cfg["keep"] < 1:
        raise ConfigError(f"keep must be a fraction strictly between 0 and 1, got {cfg['keep']!r}")
    cfg["keep"] = float(cfg["keep"])
    if cfg["prune_from"] not in ("final", "best"):
        raise ConfigError(f"prune_from must be 'final' or 'best', got {cfg['prune_from']!r}")
    if cfg["backend"] not in _backend.CHOICES:
        raise ConfigError(f"unknown backend {cfg['backend']!r}; choose one of {', '.join(_backend.CHOICES)}")
    for key in OPTION_TABLES:
        if not isinstance(cfg[key], dict):
            raise ConfigError(f"{key} must be a table of options, got {cfg[key]!r}")
    cfg["prune"] = prune.canonical(cfg["prune"])
    cfg["strategy"] = strategies.canonical(cfg["strategy"])
    cfg["prune_options"] = prune.check_options(cfg["prune_options"], cfg["prune"])
    prune.check_snr_variance(cfg["snr_variance"], cfg["strategy"])
    task = tasks.make(cfg["task"], **cfg["task_options"])  # unknown task or option → ConfigError
    if prepare and hasattr(task, "prepare"):
        task.prepare()
    strategies.make(cfg["strategy"], 2, cfg["popsize"], **cfg["strategy_options"])  # popsize rule, option names
    _check_trainer(cfg, task)
    if cfg["tickets_from"] is not None:
        _check_source(cfg, task)
    return cfg


def _check_trainer(cfg, task):
    if cfg["trainer"] not in ("es", "gd"):
        raise ConfigError(f"trainer must be 'es' or 'gd', got {cfg['trainer']!r}")
    if cfg["trainer"] == "gd":
        gd.make_trainer(task, **cfg["gd_options"])  # option names and values
        if cfg["prune"] == "snr":
            raise ConfigError("prune=snr ranks weights by the ES search std, which gradient descent does not have; "
                              "use magnitude (the paper's GD baseline) or another method")
    elif cfg["gd_options"]:
        raise ConfigError("gd_options are given but trainer is 'es'; add trainer = 'gd' (--trainer gd)")
    if cfg["prune"] in prune.GRADIENT and task.kind != "classify":
        raise ConfigError(f"prune={cfg['prune']} needs a supervised loss: use it on a classification task")


def _check_source(cfg, task):
    """A transfer source must be a readable run file of the same network with tickets for every iteration."""
    from .store import RunFile

    source = RunFile.open(cfg["tickets_from"])
    if source.spec != task.default_net().spec:
        raise ConfigError(f"{cfg['tickets_from']} holds tickets of another network than {cfg['task']}'s "
                          "default one; transfer needs the same network shape")
    available = source.tickets()
    if available < cfg["iterations"] + 1:
        raise ConfigError(f"{cfg['tickets_from']} has tickets for iterations 0..{available - 1} only; "
                          f"ask for --iterations {max(available - 1, 0)} or fewer")


def _integer(cfg, key):
    if isinstance(cfg[key], bool) or not isinstance(cfg[key], int):
        raise ConfigError(f"{key} must be an integer, got {cfg[key]!r}")
