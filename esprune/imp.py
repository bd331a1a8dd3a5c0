"""Iterative magnitude/SNR pruning with rewinding for evolution strategies: the paper's main experiment.

For k = 0..K: train the ticket ``init ⊙ mask`` (the ES searches over the active weights only; with
``trainer = "gd"``, gradient descent trains them instead) for G generations, score the mean on held-out
episodes/data every ``eval_every`` generations, keep the final and the best search distribution, then make the
next ticket from them (``prune.next_ticket``) and start again. A transfer run (``tickets_from``) takes every
ticket from a source run file instead of pruning.

Everything that decides the numbers is in the run file: the config, each ticket, and a checkpoint of the live
ES state every ``checkpoint_every`` generations and at each iteration's end. ``resume`` continues from the
last checkpoint and reaches exactly the numbers of an uninterrupted run on the same backend.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from . import gd, prune, strategies, tasks
from .params import Layout, Mask
from .store import (RunFile, RunFileError, append_summary, from_vector, to_vector, write_group,
                    write_strategy_state)


class Experiment:
    """One IMP run bound to its run file."""

    def __init__(self, config: dict, run: RunFile):
        self.cfg, self.run = config, run
        self.task = tasks.make(config["task"], **config["task_options"])
        self.net = self.task.default_net()
        self.spec = self.net.spec
        self.K, self.G = config["iterations"], config["generations"]
        self.trainer = None
        if config.get("trainer", "es") == "gd":
            self.trainer = gd.make_trainer(self.task, **config["gd_options"])
            self.G = self.trainer.budget(self.task)  # optimizer steps (PPO: updates) per iteration

    # ------------------------------------------------------------------------------------------ entry points
    @classmethod
    def start(cls, config: dict, path, overwrite: bool = False) -> Experiment:
        net = tasks.make(config["task"], **config["task_options"]).default_net()
        run = RunFile.create(path, config, net.spec, overwrite=overwrite)
        exp = cls(config, run)
        if config.get("tickets_from"):
            first = exp._source_ticket(0)
        else:
            init_seed = config["seed"] if config["init_seed"] is None else config["init_seed"]
            first = prune.Ticket(exp.net.init(init_seed), Mask.dense(exp.spec))
        run.commit(lambda f: exp._write_ticket(f, 0, first.init, first.mask, first.threshold))
        return exp

    @classmethod
    def resume(cls, path) -> Experiment:
        run = RunFile.open(path)
        exp = cls(run.config, run)
        if run.spec != exp.spec:
            raise RunFileError(f"{path} was written for another network than this esprune builds for "
                               f"{exp.cfg['task']}; it cannot be continued with this version")
        return exp

    @property
    def finished(self) -> bool:
        ck = self.run.checkpoint()
        return bool(ck and ck["finished"])

    def execute(self, progress=None) -> list[dict]:
        """Run (or continue) to the end; ``progress(k, generation, best_score, sparsity)`` after each step."""
        self.run.lock()
        ck = self.run.checkpoint()
        while not ck["finished"]:
            self._iteration(int(ck["iteration"]), ck, progress)
            ck = self.run.checkpoint()
        return self.run.summary()

    # ------------------------------------------------------------------------------------------ one iteration
    def _iteration(self, k: int, ck: dict, progress):
        cfg = self.cfg
        ticket = self.run.iteration(k)
        init, mask = from_vector(self.spec, ticket["init"]), self._mask(ticket["mask"])
        layout = Layout(self.spec, mask)
        seed = cfg["seed"] if cfg["fixed_seed"] else cfg["seed"] + k
        if self.trainer is not None:
            return self._gd_iteration(k, layout, mask, init, float(ticket["threshold"]), seed, progress)
        es = strategies.make(cfg["strategy"], layout.dim, cfg["popsize"], seed=seed, backend=cfg["backend"],
                             **cfg["strategy_options"])
        g0 = int(ck["generation"])
        stateful = hasattr(self.task, "state_dict")  # a task with state of its own (observation statistics)
        if stateful:
            self.task.reset_state()
        if g0:  # continue inside the iteration
            es.load_state_dict(ck["strategy"])
            if stateful:
                self.task.load_state_dict(_prefixed(ck, "task_"))
            train, evals = list(map(tuple, ck["train"])), list(map(tuple, ck["evals"]))
            best = {"mean": ck.get("best_mean"), "std": ck.get("best_std"), "score": float(ck["best_score"]),
                    "generation": int(ck["best_generation"])}
        else:
            es.mean = layout.flatten({n: np.asarray(v, dtype=np.float64) for n, v in init.items()})
            train, evals, best = [], [], {"mean": None, "std": None, "score": -np.inf, "generation": -1}
        if stateful:  # the task's state at the best test score: stored with the best mean
            best["task"] = _prefixed(ck, "best_task_") if g0 else None
        train_kw = {"update_norm": True} if stateful else {}
        seconds, clock = float(ck["seconds"]), time.perf_counter()
        sparsity = mask.sparsity()
        for g in range(g0, self.G):
            fitness = np.asarray(self.task.evaluate(self.net, layout, es.ask(), seed=seed, generation=g,
                                                    backend=cfg["backend"], **train_kw), dtype=np.float64)
            es.tell(fitness)
            finite = fitness[np.isfinite(fitness)]
            train.append((finite.mean(), finite.max()) if finite.size else (np.nan, np.nan))
            done = g + 1
            if done % cfg["eval_every"] == 0 or done == self.G:
                mean = es.be.to_numpy(es.mean)
                score = self._score(layout, mean)
                evals.append((done, score))
                if score > best["score"] or best["mean"] is None:
                    best = {"mean": self._full(layout, mean), "std": self._full(layout, es.be.to_numpy(es.std)),
                            "score": score, "generation": done}
                    if stateful:
                        best["task"] = self.task.state_dict()
            if progress:
                progress(k, done, best["score"], sparsity)
            if done % cfg["checkpoint_every"] == 0 and done < self.G:
                elapsed = seconds + time.perf_counter() - clock
                self.run.commit(lambda f: self._write_checkpoint(f, k, done, elapsed, es, train, evals, best))
            _test_kill_hook(k, done)
        seconds += time.perf_counter() - clock
        self._finish(k, layout, mask, init, float(ticket["threshold"]), es.be.to_numpy(es.mean),
                     es.be.to_numpy(es.std), seed, train, evals, best, seconds)

    def _gd_iteration(self, k, layout, mask, init, threshold, seed, progress):
        """Train the ticket by gradient descent. No checkpoints inside: a crash repeats the iteration from
        its start, which reaches the same numbers (every draw is seeded)."""
        clock = time.perf_counter()
        sparsity = mask.sparsity()
        def report(step, total, best):
            if progress:
                progress(k, step, best, sparsity)
            _test_kill_hook(k, step)

        theta = layout.flatten({n: np.asarray(v, dtype=np.float32) for n, v in init.items()})
        res = self.trainer.train(self.task, self.net, layout, theta, seed, backend=self.cfg["backend"],
                                 progress=report)
        best = {"mean": self._full(layout, res.best), "std": None, "score": res.best_score,
                "generation": res.best_step}
        self._finish(k, layout, mask, init, threshold, res.final, None, seed, res.train, res.evals, best,
                     time.perf_counter() - clock)

    def _finish(self, k, layout, mask, init, threshold, mean, std, seed, train, evals, best, seconds):
        """Store iteration k's results, the next ticket and the checkpoint in one commit. ``mean`` and ``std``
        are host vectors over the active parameters (``std`` is None for gradient descent)."""
        cfg = self.cfg
        final_mean = self._full(layout, mean)
        final_std = None if std is None else self._full(layout, std)
        final = float(self.task.evaluate(self.net, layout, self._member(mean), seed=seed,
                                         generation=self.G - 1, backend=cfg["backend"])[0])
        test = evals[-1][1]
        counts = mask.summary()
        row = {"iteration": k, "sparsity": counts["sparsity"], "active": counts["active"], "final": final,
               "best": best["score"], "test": test, "threshold": threshold,
               "seconds": seconds}
        nxt = None
        if k < self.K and cfg.get("tickets_from"):
            nxt = self._source_ticket(k + 1)
        elif k < self.K:
            src_mean, src_std = (final_mean, final_std) if cfg["prune_from"] == "final" else (best["mean"], best["std"])
            nxt = prune.next_ticket(cfg["prune"], self.net, init=self._original_init(init, k),
                                    mean=from_vector(self.spec, src_mean),
                                    std=None if src_std is None else from_vector(self.spec, src_std),
                                    mask=mask, iteration=k + 1, keep=cfg["keep"], seed=cfg["seed"],
                                    snr_variance=cfg["snr_variance"], task=self.task)

        def write(f):
            g = f["iterations"][f"{k:03d}"]
            results = {"final_mean": final_mean, "final_std": final_std, "best_mean": best["mean"],
                       "best_std": best["std"], "train": np.asarray(train, dtype=np.float64).reshape(-1, 2),
                       "evals": np.asarray(evals, dtype=np.float64).reshape(-1, 2)}
            if hasattr(self.task, "state_dict") and self.trainer is None:  # observation statistics, final and best
                results.update(_with_prefix(self.task.state_dict(), "final_task_"))
                results.update(_with_prefix(best.get("task") or {}, "best_task_"))
            for name, value in results.items():
                if name in g:
                    del g[name]
                if value is not None:  # gradient descent has no search std
                    g.create_dataset(name, data=value)
            g.attrs.update({**{n: v for n, v in row.items() if n not in ("iteration", "threshold")},
                            "seed": seed, "best_generation": best["generation"]})
            append_summary(f, row)
            if nxt is not None:
                self._write_ticket(f, k + 1, nxt.init, nxt.mask, nxt.threshold)
            else:
                write_group(f, "checkpoint", {}, {"iteration": k + 1, "generation": 0, "seconds": 0.0,
                                                  "finished": True})

        self.run.commit(write)

    # ------------------------------------------------------------------------------------------ helpers
    def _write_ticket(self, f, k, init, mask, threshold):
        """Iteration k's ticket and a checkpoint at its first generation."""
        write_group(f["iterations"], f"{k:03d}",
                    {"init": to_vector(self.spec, init, np.float32), "mask": self._mask_vector(mask)},
                    {"threshold": threshold, "sparsity": mask.sparsity(), "active": mask.summary()["active"]})
        write_group(f, "checkpoint", {}, {"iteration": k, "generation": 0, "seconds": 0.0, "finished": False})

    def _write_checkpoint(self, f, k, generation, seconds, es, train, evals, best):
        write_group(f, "checkpoint",
                    {"train": np.asarray(train, dtype=np.float64).reshape(-1, 2),
                     "evals": np.asarray(evals, dtype=np.float64).reshape(-1, 2),
                     "best_mean": best["mean"], "best_std": best["std"]},
                    {"iteration": k, "generation": generation, "seconds": seconds, "finished": False,
                     "best_score": best["score"], "best_generation": best["generation"]})
        write_strategy_state(f["checkpoint"], es.state_dict())
        if hasattr(self.task, "state_dict"):
            for name, value in {**_with_prefix(self.task.state_dict(), "task_"),
                                **_with_prefix(best.get("task") or {}, "best_task_")}.items():
                f["checkpoint"].create_dataset(name, data=value)

    def _source_ticket(self, k) -> prune.Ticket:
        """Iteration k's ticket of the transfer source run, as it was stored there."""
        ticket = RunFile.open(self.cfg["tickets_from"]).iteration(k)
        return prune.Ticket(from_vector(self.spec, ticket["init"]), self._mask(ticket["mask"]),
                            float(ticket["threshold"]))

    def _original_init(self, init, k):
        """Rewinding goes to iteration 0's init (later tickets of the reinit/permute baselines differ)."""
        return init if k == 0 else from_vector(self.spec, self.run.iteration(0)["init"])

    def _mask_vector(self, mask: Mask) -> np.ndarray:
        return np.concatenate([mask[t.name].reshape(-1) if t.prunable else np.ones(t.size, dtype=bool)
                               for t in self.spec])

    def _mask(self, vector) -> Mask:
        full = from_vector(self.spec, np.asarray(vector, dtype=bool))
        return Mask({n: full[n] for n in self.spec.prunable_names}, self.spec)

    def _full(self, layout, flat: np.ndarray) -> np.ndarray:
        """A host vector over the active parameters as a vector over all of them (pruned entries 0)."""
        return to_vector(self.spec, layout.unflatten(np.asarray(flat, dtype=np.float64)))

    @staticmethod
    def _member(mean: np.ndarray) -> np.ndarray:
        return np.asarray(mean, dtype=np.float32)[None]

    def _score(self, layout, mean) -> float:
        return float(self.task.score(self.net, layout, self._member(mean), seed=self.cfg["seed"],
                                     backend=self.cfg["backend"])[0])


def _with_prefix(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


def _prefixed(stored: dict, prefix: str) -> dict | None:
    """The entries of ``stored`` named ``prefix + key``, as ``{key: value}`` (None when there are none)."""
    found = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}
    return found or None


def _test_kill_hook(k: int, generation: int) -> None:
    """``ESPRUNE_KILL_AT=k:g`` SIGKILLs this process when iteration k finishes generation g (GD: optimizer step
    or PPO update g): the crash tests' way to die mid-iteration at a known point. Unset, it does nothing."""
    at = os.environ.get("ESPRUNE_KILL_AT")
    if at and at == f"{k}:{generation}":
        os.kill(os.getpid(), signal.SIGKILL)

