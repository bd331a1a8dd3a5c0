"""Iterative magnitude/SNR pruning with rewinding for evolution strategies: the paper's main experiment.

For k = 0..K: train the ticket ``init ⊙ mask`` (the ES searches over the active weights only; with
``trainer = "gd"``, gradient descent trains them instead) for G generations, score the mean on held-out
episodes/data every ``eval_every`` generations, keep the final and the best search distribution, then make the
next ticket from them (``prune.next_ticket``) and start again. A transfer run (``tickets_from``) takes every
ticket from a source run file instead of pruning.

This module is the loop only; the run file's format belongs to ``store``, the config to ``config.RunConfig``.
Everything that decides the numbers is in the run file: the config (with the backend it resolved to), each
ticket, and a checkpoint of the live ES state every ``checkpoint_every`` generations and at each iteration's
end. ``resume`` continues from the last checkpoint, on the run's own backend, and reaches exactly the numbers
of an uninterrupted run.
"""
from __future__ import annotations

import time

import numpy as np

from . import config as _config
from . import effective, gd, prune, strategies, tasks, timing
from .errors import BackendUnavailable, ConfigError, UserError, out_of_memory
from .params import Layout, Mask
from .store import RunFile, RunFileError, real_path
from .testing import kill_point


class Experiment:
    """One IMP run bound to its run file."""

    def __init__(self, config: _config.RunConfig, run: RunFile):
        self.cfg, self.run = config, run
        self.task = tasks.make(config.task, **config.task_options)
        self.net = gd.network(self.task, config)  # the task's, or the GD trainer's own (PPO policy="paper")
        self.spec = self.net.spec
        self.K, self.G = config.iterations, config.generations
        self.trainer = None
        if config.trainer == "gd":
            self.trainer = gd.make_trainer(self.task, **config.gd_options)
            self.G = self.trainer.budget(self.task)  # optimizer steps (PPO: updates) per iteration

    # ------------------------------------------------------------------------------------------ entry points
    @classmethod
    def start(cls, config, path, overwrite: bool = False) -> Experiment:
        """A new run at ``path``. Everything is checked and built (config, output path, task, network, first
        ticket) before the file is written; with ``overwrite`` an existing file is replaced only by the new
        run's first commit."""
        cfg = config if isinstance(config, _config.RunConfig) else _config.validate(config)
        run = RunFile.check_new(path, overwrite)
        if cfg.tickets_from is not None and real_path(cfg.tickets_from) == run.path:
            raise RunFileError(f"{path} is the transfer's source (tickets_from); write the new run to another "
                               "file")
        exp = cls(cfg, run)
        if cfg.tickets_from is not None:
            first = exp._source_ticket(0)
        else:
            first = prune.Ticket(exp.net.init(cfg.network_seed), Mask.dense(exp.spec))
        exp.run = RunFile.create(path, cfg.to_dict(), exp.spec, first, overwrite=overwrite)
        return exp

    @classmethod
    def resume(cls, path, iterations: int | None = None) -> Experiment:
        """The run in ``path``, ready to continue; its stored config is checked like a new one, and it
        continues on the backend it started with (or is refused, with the reason). ``iterations``: continue to
        iteration ``iterations`` instead of the stored config's (``extend``)."""
        run = RunFile.open(path)
        stored = run.config
        try:
            cfg = _config.validate(stored)
        except BackendUnavailable as err:
            raise BackendUnavailable(f"{path} runs on backend {stored.get('backend')!r}, which cannot be used "
                                     f"here ({err}); a run continues on its own backend only (its numbers "
                                     "depend on it)") from None
        except ConfigError as err:
            raise RunFileError(f"{path} stores a config that is not valid: {err}") from None
        exp = cls(cfg, run)
        if run.spec != exp.spec:
            raise RunFileError(f"{path} was written for another network than this esprune builds for "
                               f"{cfg.task}; it cannot be continued with this version")
        if iterations is not None and iterations != cfg.iterations:
            exp = exp.extend(iterations)
        return exp

    def extend(self, iterations: int) -> Experiment:
        """This run with ``iterations`` prunings in all instead of the stored config's: the stored config says so
        and, when the run had finished, the next ticket is made from the last iteration's stored results exactly
        as an uninterrupted run with ``iterations`` made it (same seeds, schedule and pruning), so the extended
        run equals one started with ``iterations``. A run may also be cut short to an iteration it has not made
        a ticket for yet. Raises ConfigError for fewer iterations than the run has tickets for, or a config
        that ``iterations`` makes invalid (keep too small, seeds out of range, a transfer source too short)."""
        reached = self.run.tickets() - 1
        if iterations < reached:
            raise ConfigError(f"{self.run.name} already has tickets for iterations 0..{reached}; --iterations "
                              f"must be at least {reached}")
        cfg = _config.validate({**self.run.config, "iterations": iterations})
        exp = type(self)(cfg, self.run)
        nxt = None
        if self.run.finished and iterations > reached:  # the ticket the last iteration did not make
            k, it = reached, self.run.iteration(reached)
            nxt = exp._next_ticket(k, self.run.ticket(k), it["final_mean"], it.get("final_std"),
                                   it.get("best_mean"), it.get("best_std"))
        self.run.lock()
        try:
            self.run.extend(cfg.to_dict(), reached + 1 if nxt is not None else None, nxt)
        finally:
            self.run.unlock(remove=True)
        return exp

    @property
    def finished(self) -> bool:
        return self.run.finished

    def execute(self, progress=None, iteration_done=None, warn=None) -> list[dict]:
        """Run (or continue) to the end; ``progress(k, generation, best_score, sparsity)`` after each step,
        ``iteration_done(row)`` with an iteration's summary row (``RunFile.summary``) once it is committed,
        ``warn(line)`` once, before training the first ticket that is disconnected (``effective.warning``)."""
        if self.run.finished:
            return self.run.summary()
        self.run.lock()
        try:
            ck = self.run.checkpoint()
            while not ck["finished"]:
                if warn is not None:  # said once: later tickets of a nested schedule stay disconnected
                    eff = self.run.effective(int(ck["iteration"]))
                    if eff["disconnected"]:
                        warn(effective.warning(int(ck["iteration"]), eff))
                        warn = None
                self._iteration(int(ck["iteration"]), ck, progress)
                if iteration_done:
                    iteration_done(self.run.summary()[-1])
                ck = self.run.checkpoint()
        except BaseException as err:  # one-line errors (out of memory too) and Ctrl-C end cleanly: the run file
            # holds its last commit (commits replace the file whole), no lock file; a crash leaves the lock file
            # (harmless, the kernel dropped the lock)
            self.run.unlock(remove=isinstance(err, (UserError, KeyboardInterrupt)) or out_of_memory(err))
            raise
        self.run.unlock(remove=True)  # no stale RUN.h5.lock in the output folder
        return self.run.summary()

    def progress_start(self) -> tuple[int, int]:
        """(steps done, steps in all) of the whole run, for a progress bar: G per iteration."""
        total = (self.K + 1) * self.G
        ck = self.run.checkpoint()
        return (total if ck["finished"] else int(ck["iteration"]) * self.G + int(ck["generation"])), total

    # ------------------------------------------------------------------------------------------ one iteration
    def _iteration(self, k: int, ck: dict, progress):
        cfg = self.cfg
        ticket = self.run.ticket(k)
        layout = Layout(self.spec, ticket.mask)
        seed = cfg.seed_at(k)
        if self.trainer is not None:
            return self._gd_iteration(k, layout, ticket, seed, progress)
        es = strategies.make(cfg.strategy, layout.dim, cfg.popsize, seed=seed, backend=cfg.backend,
                             **cfg.strategy_options)
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
            es.mean = layout.flatten({n: np.asarray(v, dtype=np.float64) for n, v in ticket.init.items()})
            train, evals, best = [], [], {"mean": None, "std": None, "score": -np.inf, "generation": -1}
        if stateful:  # the task's state at the best test score: stored with the best mean
            best["task"] = _prefixed(ck, "best_task_") if g0 else None
        train_kw = {"update_norm": True} if stateful else {}
        seconds, clock = float(ck["seconds"]), time.perf_counter()
        sparsity = ticket.mask.sparsity()
        timer = timing.PhaseTimer()
        for g in range(g0, self.G):
            fitness = self._fitness(es, layout, seed, g, timer, **train_kw)
            timer.unit, units, flops = timing.work_of(self.task, self.net, layout, cfg.popsize)
            timer.add_work(units, flops)
            with timer.phase("tell"):
                es.tell(fitness)
            finite = fitness[np.isfinite(fitness)]
            train.append((finite.mean(), finite.max()) if finite.size else (np.nan, np.nan))
            done = g + 1
            if done == 1 or done % cfg.eval_every == 0 or done == self.G:  # the paper also tests generation 1
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
            if done % cfg.checkpoint_every == 0 and done < self.G:
                with timer.phase("commit"):
                    task_state = None if not stateful else {**_with_prefix(self.task.state_dict(), "task_"),
                                                            **_with_prefix(best.get("task") or {}, "best_task_")}
                    self.run.write_checkpoint(k, done, seconds + time.perf_counter() - clock, es.state_dict(),
                                              train, evals, best, task_state)
            kill_point(k, done)
        seconds += time.perf_counter() - clock
        self._finish(k, layout, ticket, es.be.to_numpy(es.mean), es.be.to_numpy(es.std), seed, train, evals, best,
                     seconds, timer.record())

    def _fitness(self, es, layout, seed, generation, timer, **train_kw) -> np.ndarray:
        """This generation's fitness ``(P,)`` float64: ask, evaluate every member, each timed by ``timer``
        (``train_kw``: ``update_norm=True`` for a task whose training rollouts update its own state). (The one
        hook of distributed runs: ``distributed.Sharded`` evaluates one rank's members and gathers the rest.)"""
        with timer.phase("ask"):
            pop = es.ask()
        with timer.phase("evaluate"):
            return np.asarray(self.task.evaluate(self.net, layout, pop, seed=seed, generation=generation,
                                                 backend=self.cfg.backend, **train_kw), dtype=np.float64)

    def _gd_iteration(self, k, layout, ticket, seed, progress):
        """Train the ticket by gradient descent. No checkpoints inside: a crash repeats the iteration from
        its start, which reaches the same numbers (every draw is seeded)."""
        clock = time.perf_counter()
        sparsity = ticket.mask.sparsity()

        def report(step, total, best):
            if progress:
                progress(k, step, best, sparsity)
            kill_point(k, step)

        theta = layout.flatten({n: np.asarray(v, dtype=np.float32) for n, v in ticket.init.items()})
        res = self.trainer.train(self.task, self.net, layout, theta, seed, backend=self.cfg.backend,
                                 progress=report)
        best = {"mean": self._full(layout, res.best), "std": None, "score": res.best_score,
                "generation": res.best_step}
        self._finish(k, layout, ticket, res.final, None, seed, res.train, res.evals, best,
                     time.perf_counter() - clock)

    def _finish(self, k, layout, ticket, mean, std, seed, train, evals, best, seconds, profile=None):
        """Store iteration k's results, the next ticket and the checkpoint in one commit. ``mean`` and ``std``
        are host vectors over the active parameters (``std`` is None for gradient descent); ``profile`` is the
        iteration's ``PhaseTimer.record()`` (this process's generations; the final commit is not in it)."""
        cfg, mask = self.cfg, ticket.mask
        final_mean = self._full(layout, mean)
        final_std = None if std is None else self._full(layout, std)
        final = float(self.task.evaluate(self.net, layout, self._member(mean), seed=seed,
                                         generation=self.G - 1, backend=cfg.backend)[0])
        counts = mask.summary()
        row = {"iteration": k, "sparsity": counts["sparsity"], "weights": counts["kept"], "final": final,
               "best": best["score"], "test": evals[-1][1], "threshold": ticket.threshold, "seconds": seconds}
        nxt = None
        if k < self.K:
            nxt = self._next_ticket(k, ticket, final_mean, final_std, best["mean"], best["std"])
        results = {"final_mean": final_mean, "final_std": final_std, "best_mean": best["mean"],
                   "best_std": best["std"], "train": np.asarray(train, dtype=np.float64).reshape(-1, 2),
                   "evals": np.asarray(evals, dtype=np.float64).reshape(-1, 2)}
        if hasattr(self.task, "state_dict") and self.trainer is None:  # observation statistics, final and best
            results.update(_with_prefix(self.task.state_dict(), "final_task_"))
            results.update(_with_prefix(best.get("task") or {}, "best_task_"))
        attrs = {**{n: v for n, v in row.items() if n not in ("iteration", "threshold")}, "seed": seed,
                 "best_generation": best["generation"]}
        self.run.finish_iteration(k, results, attrs, row, nxt, timing=profile)

    def _next_ticket(self, k, ticket, final_mean, final_std, best_mean, best_std) -> prune.Ticket:
        """Ticket k + 1, from iteration k's ``ticket`` and its trained vectors over all parameters (the stds None
        for gradient descent), or the transfer source's ticket k + 1."""
        cfg = self.cfg
        if cfg.tickets_from is not None:
            return self._source_ticket(k + 1)
        src_mean, src_std = (final_mean, final_std) if cfg.prune_from == "final" else (best_mean, best_std)
        return prune.next_ticket(cfg.prune, self.net, init=self._original_init(ticket.init, k),
                                 mean=self.spec.from_vector(src_mean),
                                 std=None if src_std is None else self.spec.from_vector(src_std),
                                 mask=ticket.mask, iteration=k + 1, keep=cfg.keep, seed=cfg.seed,
                                 snr_variance=cfg.snr_variance, task=self.task, options=dict(cfg.prune_options))

    # ------------------------------------------------------------------------------------------ helpers
    def _source_ticket(self, k) -> prune.Ticket:
        """Iteration k's ticket of the transfer source run, as it was stored there."""
        return RunFile.open(self.cfg.tickets_from).ticket(k)

    def _original_init(self, init, k):
        """Rewinding goes to iteration 0's init (later tickets of the reinit/permute baselines differ)."""
        return init if k == 0 else self.run.ticket(0).init

    def _full(self, layout, flat: np.ndarray) -> np.ndarray:
        """A host vector over the active parameters as a vector over all of them (pruned entries 0)."""
        return self.spec.to_vector(layout.unflatten(np.asarray(flat, dtype=np.float64)))

    @staticmethod
    def _member(mean: np.ndarray) -> np.ndarray:
        return np.asarray(mean, dtype=np.float32)[None]

    def _score(self, layout, mean) -> float:
        return float(self.task.score(self.net, layout, self._member(mean), seed=self.cfg.seed,
                                     backend=self.cfg.backend)[0])


def _with_prefix(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


def _prefixed(stored: dict, prefix: str) -> dict | None:
    """The entries of ``stored`` named ``prefix + key``, as ``{key: value}`` (None when there are none)."""
    found = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}
    return found or None
