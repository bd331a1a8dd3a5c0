"""Named grids: the paper's experiment grids at its budgets (PAPER.md), for ``esprune sweep --preset NAME``.

Each is a grid as ``sweep.expand`` reads it. The paper's figures use 5 seeds and, per task, the ticket makers
SNR, magnitude ("final ticket") and random reinitialisation (Fig. 1 aggregates them over tasks, Fig. 2 per task);
Fig. 3 sets ES-SNR against GD-IMP (magnitude). At the paper's budgets a point is hours to days of CPU: pass
``--scale`` (e.g. 0.01: 2000 → 20 generations per iteration) to try a grid on a laptop.
"""
from __future__ import annotations

from .errors import ConfigError

SEEDS = [0, 1, 2, 3, 4]
TICKET_MAKERS = ["snr", "magnitude", "random-reinit"]
_TASKS = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
          "kmnist": "K-MNIST"}

GRIDS = {
    **{f"fig1-{preset}": (f"{task}: SNR vs magnitude vs random-reinit tickets, 5 seeds (Figs. 1-2), paper budget",
                          {"preset": preset, "axes": {"seed": SEEDS, "prune": TICKET_MAKERS}})
       for preset, task in _TASKS.items()},
    "fig1-all": ("the five tasks above in one grid: 5 tasks × 3 ticket makers × 5 seeds (Fig. 1's aggregate)",
                 {"axes": {"preset": list(_TASKS), "seed": SEEDS, "prune": TICKET_MAKERS}}),
    "fig3-fashion-mnist": ("Fashion-MNIST: ES (SNES, SNR) vs GD (Adam, magnitude IMP), 5 seeds (Fig. 3)",
                           {"axes": {"preset": ["fashion-mnist", "gd-fashion-mnist"], "seed": SEEDS}}),
    "fig3-cartpole": ("CartPole-v1: ES (Sep-CMA-ES, SNR) vs GD (PPO, magnitude IMP), 5 seeds (Fig. 3)",
                      {"axes": {"preset": ["cartpole", "gd-cartpole"], "seed": SEEDS}}),
}

# The grids of docs/REPRODUCTION.md (`make reproduce`): the paper's experiments at budgets a 2-core machine affords,
# 3 seeds. Each states its cut in its [base]; the paper-budget grids above are the same points without it.
REPRO_SEEDS = [0, 1, 2]
_REPRO_MNIST_BUDGET = {"generations": 100, "eval_every": 10, "checkpoint_every": 25,
                       "task_options": {"batch_size": 256}}
REPRO = {
    "repro-pendulum": ("Pendulum-v1 at 25% of the paper's budget (500 generations per iteration), 3 seeds: SNR vs "
                       "magnitude vs random-reinit (REPRODUCTION.md finding 1)",
                       {"preset": "pendulum", "base": {"generations": 500, "eval_every": 25, "checkpoint_every": 100},
                        "axes": {"seed": REPRO_SEEDS, "prune": TICKET_MAKERS}}),
    "repro-pendulum-baselines": ("Pendulum-v1 as repro-pendulum: the magnitude-permute, permute-permute and "
                                 "mask-reinit baselines (REPRODUCTION.md finding 1)",
                                 {"preset": "pendulum",
                                  "base": {"generations": 500, "eval_every": 25, "checkpoint_every": 100},
                                  "axes": {"seed": REPRO_SEEDS,
                                           "prune": ["magnitude-permute", "permute-permute", "mask-reinit"]}}),
    "repro-fashion-mnist": ("Fashion-MNIST (SNES) at 2.5% of the paper's generations (100 per iteration) and batch 256 "
                            "(the paper: 1024), 3 seeds: SNR vs magnitude vs random-reinit (REPRODUCTION.md finding 1)",
                            {"preset": "fashion-mnist", "base": _REPRO_MNIST_BUDGET,
                             "axes": {"seed": REPRO_SEEDS, "prune": TICKET_MAKERS}}),
    "repro-pgpe-fashion-mnist": ("Fashion-MNIST with PGPE (the fashion-mnist-pgpe preset) at repro-fashion-mnist's "
                                 "budget, 3 seeds: SNR vs magnitude vs random-reinit, the target curves of the SNES → PGPE "
                                 "transfer (REPRODUCTION.md findings 1 and 3)",
                                 {"preset": "fashion-mnist-pgpe", "base": _REPRO_MNIST_BUDGET,
                                  "axes": {"seed": REPRO_SEEDS, "prune": TICKET_MAKERS}}),
    "repro-mnist": ("MNIST with SNES (the mnist-snes preset) at repro-fashion-mnist's budget, 3 seeds: SNR vs "
                    "random-reinit, the target curves of the Fashion-MNIST → MNIST transfer "
                    "(REPRODUCTION.md finding 3)",
                    {"preset": "mnist-snes", "base": _REPRO_MNIST_BUDGET,
                     "axes": {"seed": REPRO_SEEDS, "prune": ["snr", "random-reinit"]}}),
    "repro-fashion-mnist-400": ("Fashion-MNIST (SNES) as repro-fashion-mnist with 4x its generations (400 per "
                                "iteration, 10% of the paper's), 3 seeds: SNR vs magnitude, the test of whether a "
                                "longer budget, in which SNES's sigma spreads further per weight, parts them "
                                "(REPRODUCTION.md finding 1)",
                                {"preset": "fashion-mnist",
                                 "base": {**_REPRO_MNIST_BUDGET, "generations": 400, "eval_every": 40,
                                          "checkpoint_every": 50},
                                 "axes": {"seed": REPRO_SEEDS, "prune": ["snr", "magnitude"]}}),
    "repro-gd-fashion-mnist": ("Fashion-MNIST, the paper's GD baseline at its full budget (Adam 3e-4, batch 128, 2 epochs "
                               "per iteration, the same CNN and init): magnitude IMP and random-reinit, 3 seeds "
                               "(REPRODUCTION.md findings 2-4)",
                               {"preset": "gd-fashion-mnist",
                                "axes": {"seed": REPRO_SEEDS, "prune": ["magnitude", "random-reinit"]}}),
}
GRIDS.update(REPRO)

# `make demo`: the paper's point in one figure (README "Quick start": its times, the settings tried, robustness).
# Here snr and magnitude tickets keep CartPole's full return of 500 down to 2.8% of the weights, and random-reinit
# tickets are below 500 at 8.2% and about 10 at 2.8%, in each of 5 seeds (demo-5seeds).
GRIDS["demo"] = ("`make demo`: the demo preset (CartPole-v1, Sep-CMA-ES, P=32, 50 generations, 10 iterations × 0.7) "
                 "with SNR vs magnitude vs random-reinit, 2 seeds",
                 {"preset": "demo", "axes": {"seed": [0, 1], "prune": TICKET_MAKERS}})
GRIDS["demo-5seeds"] = ("the demo grid with 5 seeds: how robust the demo's difference is (15 runs, 2.5× the demo)",
                        {"preset": "demo", "axes": {"seed": SEEDS, "prune": TICKET_MAKERS}})


def get(name: str) -> dict:
    if name not in GRIDS:
        raise ConfigError(f"unknown grid preset {name!r}; available: {', '.join(GRIDS)} (see `esprune sweep presets`)")
    return GRIDS[name][1]
