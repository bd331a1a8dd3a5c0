"""Named configs: the paper's settings (PAPER.md, "Budgets of the published configs") and a quick demo.

A preset is only a starting layer: a TOML file and flags override it (``esprune run --preset NAME ...``).
"""
from __future__ import annotations

from .errors import ConfigError

_GYM_SEP_CMA = {"strategy": "sep_cma_es", "popsize": 100, "generations": 2000, "eval_every": 50,
                "iterations": 20, "keep": 0.8, "strategy_options": {"sigma_init": 0.1, "elite_ratio": 0.5,
                                                                    "mean_decay": 1e-4, "ties": "index"}}

PRESETS = {
    "demo": ("CartPole-v1, Sep-CMA-ES, SNR pruning to 99.3% sparsity in a few minutes on 2 cores",
             {"task": "CartPole-v1", "strategy": "sep_cma_es", "prune": "snr", "popsize": 32, "generations": 50,
              "eval_every": 10, "checkpoint_every": 10, "iterations": 14, "keep": 0.7,
              "task_options": {"episodes": 4},
              "strategy_options": {"sigma_init": 0.1, "elite_ratio": 0.5, "mean_decay": 1e-4}}),
    "cartpole": ("the paper's CartPole-v1 setting: Sep-CMA-ES, P=100, 2000 generations, 20 iterations × 0.8",
                 {"task": "CartPole-v1", **_GYM_SEP_CMA}),
    "pendulum": ("the paper's Pendulum-v1 setting: Sep-CMA-ES, P=100, 2000 generations, 20 iterations × 0.8",
                 {"task": "Pendulum-v1", **_GYM_SEP_CMA}),
    "mnist": ("the paper's MNIST setting: Sep-CMA-ES, P=128, batch 1024, 4000 generations, σ_init 0.025",
              {"task": "mnist", "strategy": "sep_cma_es", "popsize": 128, "generations": 4000, "eval_every": 100,
               "iterations": 20, "keep": 0.8,
               "strategy_options": {"sigma_init": 0.025, "elite_ratio": 0.5, "mean_decay": 1e-4,
                                    "ties": "index"}}),
    "fashion-mnist": ("the paper's Fashion-MNIST setting: SNES (temperature 12), P=128, 4000 generations",
                      {"task": "fashion_mnist", "strategy": "snes", "popsize": 128, "generations": 4000,
                       "eval_every": 100, "iterations": 20, "keep": 0.8,
                       "strategy_options": {"sigma_init": 0.025, "temperature": 12.0, "mean_decay": 1e-4,
                                            "ties": "index"}}),
    "kmnist": ("the paper's K-MNIST setting: PGPE (Adam 0.01→0.001, σ 0.05→0.01, evosax 0.1.4's σ rule), P=128, "
               "4000 generations",
               {"task": "kmnist", "strategy": "pgpe", "popsize": 128, "generations": 4000, "eval_every": 100,
                "iterations": 20, "keep": 0.8,
                "strategy_options": {"centered_rank": True, "lrate_init": 0.01, "lrate_decay": 0.999,
                                     "lrate_limit": 0.001, "sigma_init": 0.05, "sigma_decay": 0.999,
                                     "sigma_limit": 0.01, "mean_decay": 1e-4, "ties": "index",
                                     "sigma_rule": "evosax-0.1.4"}}),  # the published runs' σ update (PAPER.md)
    "gd-fashion-mnist": ("the paper's GD baseline on Fashion-MNIST: Adam lr 3e-4, batch 128, 2 epochs per "
                         "iteration, magnitude IMP",
                         {"task": "fashion_mnist", "trainer": "gd", "prune": "magnitude", "iterations": 20,
                          "keep": 0.8, "gd_options": {"epochs": 2, "lr": 3e-4, "batch_size": 128}}),
    "gd-cartpole": ("PPO on CartPole-v1 with magnitude IMP (200k steps per iteration, stops at a test return "
                    "of 475)",
                    {"task": "CartPole-v1", "trainer": "gd", "prune": "magnitude", "iterations": 20, "keep": 0.8,
                     "gd_options": {"timesteps": 200_000, "target": 475.0}}),
}


def get(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)} (see `esprune presets`)")
    return PRESETS[name][1]
