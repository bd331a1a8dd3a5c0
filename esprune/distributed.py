"""Many processes through MPI (mpi4py, the optional extra ``esprune[mpi]``): one run's population split over
the ranks, or a sweep's points handed out by rank 0.

A sharded run (``mpiexec -n R esprune run ...``): rank r evaluates members [lo_r, hi_r) only — a contiguous
share, the first P mod R ranks one member more — drawing just those rows from the counter-based noise
(``Strategy.ask_members``). The ranks then allgather the P fitness values (8 bytes each: the only thing that
crosses the network per generation) and every rank applies the same ``tell``, so all ranks hold the same
search distribution and the run equals the single-process run bit for bit. Test scores and pruning are
computed on every rank alike (they are cheap and seeded). Rank 0 alone writes the run file; the others write
theirs to a private temporary directory, removed at exit. Nothing below ``imp`` knows about any of this: the
one hook is ``Experiment._fitness``.

A sweep (``mpiexec -n R esprune sweep ...``): rank 0 keeps the queue of points and hands the next one to
whichever rank asks (so slow points do not stall the rest); ranks 1..R-1 run them as ordinary single-process
runs. MPI is imported only when the launcher's environment says there is more than one rank.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, UserError, out_of_memory
from .imp import Experiment
from .store import RunFileError

_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")
_TAG = 17


def world_size() -> int:
    """Ranks of this MPI job as the launcher (mpiexec of MPICH/Open MPI, srun) announces it; 1 outside one.
    ``SLURM_STEP_NUM_TASKS`` counts only with a PMI/PMIx rank beside it (srun of a plain program sets it too)."""
    for var in _SIZE_VARS:
        if var in os.environ and (var != "SLURM_STEP_NUM_TASKS" or any(v in os.environ for v in _RANK_VARS)):
            return int(os.environ[var])
    return 1


def rank() -> int:
    """This process's rank from the launcher's environment (0 outside MPI), without starting MPI."""
    for var in _RANK_VARS:
        if var in os.environ:
            return int(os.environ[var])
    return 0


def comm():
    """MPI's world communicator, with numba's threads split between the ranks of each host and a hook that
    aborts the whole job when a rank dies of an unexpected exception (the others would wait for it forever)."""
    global _COMM
    if _COMM is None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise UserError("started under an MPI launcher, but mpi4py is missing: pip install 'esprune[mpi]'") from None
        _COMM = MPI.COMM_WORLD
        local = _COMM.Split_type(MPI.COMM_TYPE_SHARED)
        _LOCAL[:] = [local.rank, local.size]
        from .sweep import set_threads

        set_threads((os.cpu_count() or 1) // local.size)
        _install_abort(_COMM)
    return _COMM


_COMM = None
_LOCAL = [0, 1]  # this rank's index and the number of ranks on its host


def _install_abort(c):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        c.Abort(1)
    sys.excepthook = hook


def shares(popsize: int, ranks: int) -> list[tuple[int, int]]:
    """Each rank's members ``[lo, hi)``: contiguous, in rank order, the first ``popsize % ranks`` one longer."""
    base, extra = divmod(popsize, ranks)
    bounds = np.cumsum([0] + [base + (r < extra) for r in range(ranks)])
    return [(int(bounds[r]), int(bounds[r + 1])) for r in range(ranks)]


def gather_fitness(c, task, net, layout, es, seed: int, generation: int, backend: str):
    """All P fitness values ``(P,)`` float64, this rank having evaluated only its share; also returns the bytes
    this rank sent and received in the allgather."""
    from mpi4py import MPI

    spans = shares(es.popsize, c.size)
    lo, hi = spans[c.rank]
    part = np.ascontiguousarray(task.evaluate(net, layout, es.ask_members(lo, hi), seed=seed,
                                              generation=generation, backend=backend), dtype=np.float64)
    out = np.empty(es.popsize, dtype=np.float64)
    counts = [b - a for a, b in spans]
    c.Allgatherv(part, [out, counts, [a for a, _ in spans], MPI.DOUBLE])
    return out, part.nbytes, out.nbytes - part.nbytes


class Sharded(Experiment):
    """An IMP run whose generations are evaluated across the ranks of ``comm``."""

    comm = None
    bytes_sent = bytes_received = 0

    def _fitness(self, es, layout, seed, generation, timer, **train_kw):
        if self.comm is None or self.comm.size == 1:
            return super()._fitness(es, layout, seed, generation, timer, **train_kw)
        with timer.phase("evaluate"):  # this rank's ask, its members' evaluation and the allgather
            fitness, sent, received = gather_fitness(self.comm, self.task, self.net, layout, es, seed, generation,
                                                     self.cfg["backend"])
        self.bytes_sent += sent
        self.bytes_received += received
        return fitness

    @property
    def is_root(self) -> bool:
        return self.comm is None or self.comm.rank == 0

    def execute(self, *args, **kwargs):
        """``Experiment.execute``; an error that one rank can meet alone mid-run (out of memory, or its run file
        failing to be read or written) is marked ``abort_job``: the other ranks wait for this one in their next
        allgather, so the command that reports it must end the whole job (``abort_job``), not only this rank.
        The other one-line errors (a ticket that cannot be made, ...) come from state every rank shares: every
        rank meets them at the same point and ends as usual."""
        try:
            return super().execute(*args, **kwargs)
        except (UserError, MemoryError, ValueError) as err:
            alone = out_of_memory(err) or isinstance(err, RunFileError)
            if alone and self.comm is not None and self.comm.size > 1:
                err.abort_job = True
            raise


def start(config: dict, path, overwrite: bool = False) -> Sharded:
    """``Experiment.start`` on every rank: rank 0 creates ``path``, the others a private copy."""
    c = comm()
    _check(config, c.size)
    _bind_device(config)
    if c.rank == 0:
        exp = _agree(c, lambda: Sharded.start(config, path, overwrite=overwrite))
    else:
        _agree(c, None)
        exp = Sharded.start(config, _private(path, c.rank), overwrite=True)
    exp.comm = c
    return exp


def resume(path, iterations: int | None = None) -> Sharded:
    """``Experiment.resume`` on every rank: rank 0 opens ``path`` (extended to ``iterations``, if given) and sends
    its bytes to the others once."""
    c = comm()
    if c.rank == 0:
        def open_and_lock():
            exp = Sharded.resume(path, iterations)
            _check(exp.cfg, c.size)
            exp.run.lock()
            return exp
        exp = _agree(c, open_and_lock)
        side = exp.run.checkpoint_path  # the live state inside an iteration lives beside the run file
        c.bcast((exp.run.path.read_bytes(), side.read_bytes() if side.exists() else None), root=0)
    else:
        _agree(c, None)
        private = _private(path, c.rank)
        main, side = c.bcast(None, root=0)
        private.write_bytes(main)
        exp = Sharded.resume(private)
        if side is not None:
            exp.run.checkpoint_path.write_bytes(side)
    _bind_device(exp.cfg)
    exp.comm = c
    return exp


def _check(config: dict, ranks: int) -> None:
    if config.get("trainer", "es") != "es":
        raise ConfigError("MPI splits an ES population over ranks; a gradient-descent run (trainer gd) runs in "
                          "one process: start it without mpiexec")
    from . import tasks

    if hasattr(tasks.make(config["task"], **config["task_options"]), "state_dict"):
        raise ConfigError(f"{config['task']} keeps running observation statistics that every training rollout "
                          "updates; split over ranks, each rank would see only its members' rollouts and the "
                          "ranks would drift apart: run it without mpiexec (or sweep over ranks instead)")
    if config["popsize"] < ranks:
        raise ConfigError(f"popsize {config['popsize']} is smaller than the {ranks} MPI ranks: every rank needs "
                          "at least one member; use fewer ranks")


def _agree(c, fn):
    """Rank 0 runs ``fn``; a UserError there is raised on every rank, so that no rank waits for a dead one."""
    if c.rank == 0:
        try:
            result = fn()
        except UserError as err:
            c.bcast(str(err), root=0)
            raise
        c.bcast(None, root=0)
        return result
    message = c.bcast(None, root=0)
    if message is not None:
        raise UserError(message)
    return None


def abort_job(message: str, status: int = 2) -> None:
    """Print ``message`` (one line, on stderr) and end every rank of the job with ``status``
    (``MPI_Abort``): for an error met by one rank while the others wait for it in a collective. This rank's
    private folders are removed first (``os._exit`` and the ranks the launcher kills run no ``atexit``)."""
    print(message, file=sys.stderr, flush=True)
    for folder in _PRIVATE:
        shutil.rmtree(folder, ignore_errors=True)
    time.sleep(1.0)  # MPICH's launcher forwards a rank's stderr asynchronously: an abort at once can lose the line
    comm().Abort(status)
    os._exit(status)  # MPICH's MPI_Abort may return to the caller before the launcher ends the job


def _private(path, r: int) -> Path:
    """Where rank ``r`` keeps its copy of the run file: a temporary directory removed when the process ends
    (``abort_job`` removes it too). A rank killed outright (SIGKILL, the launcher ending the job) cannot remove
    its own: the folder names the process, and the next rank to start removes those of processes gone."""
    _remove_orphans()
    folder = tempfile.mkdtemp(prefix=f"esprune-rank{r}-pid{os.getpid()}-")
    _PRIVATE.append(folder)
    atexit.register(shutil.rmtree, folder, True)
    return Path(folder) / Path(path).name


_PRIVATE: list[str] = []  # this process's private folders


def _remove_orphans() -> None:
    for folder in Path(tempfile.gettempdir()).glob("esprune-rank*-pid*-*"):
        found = re.match(r"esprune-rank\d+-pid(\d+)-", folder.name)
        if found and not _alive(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def _bind_device(config: dict) -> None:
    """One GPU per rank, chosen by the rank's index on its host (only for the cupy/auto backends)."""
    if config["backend"] not in ("cupy", "auto"):
        return
    from . import backend

    if backend.probe()["cupy"][0]:
        import cupy

        cupy.cuda.Device(_LOCAL[0] % cupy.cuda.runtime.getDeviceCount()).use()


# ---------------------------------------------------------------------------------------------- sweeps
def sweep(points, directory, grid, progress=None, grid_points=None):
    """Run a sweep's points over the ranks. Rank 0 writes the manifest of ``grid_points`` (the whole grid's;
    default ``points``) and hands out ``points``; returns {name: outcome} on rank 0 and None elsewhere.
    ``progress(name, outcome)`` on rank 0 as points end."""
    from . import sweep as _sweep

    c = comm()
    c.Barrier()  # every rank has checked the grid and the files already there before any point starts
    if c.rank == 0:
        _sweep.write_manifest(points if grid_points is None else grid_points, directory, grid)
    if c.size == 1:
        return {p.name: _sweep.attempt(p) for p in points}
    if c.rank == 0:
        return _dispatch(c, points, progress)
    _work(c, points)
    return None


def _dispatch(c, points, progress):
    from mpi4py import MPI

    queue, outcomes, active = list(range(len(points))), {}, c.size - 1
    while active:
        while not c.iprobe(source=MPI.ANY_SOURCE, tag=_TAG):  # poll: rank 0 does not spin a core meanwhile
            time.sleep(0.05)
        worker, name, outcome = c.recv(source=MPI.ANY_SOURCE, tag=_TAG)
        if name is not None:
            outcomes[name] = outcome
            if progress:
                progress(name, outcome)
        if queue:
            c.send(queue.pop(0), dest=worker, tag=_TAG)
        else:
            c.send(None, dest=worker, tag=_TAG)
            active -= 1
    return {p.name: outcomes[p.name] for p in points}


def _work(c, points):
    from . import sweep as _sweep

    message = (c.rank, None, None)
    while True:
        c.send(message, dest=0, tag=_TAG)
        index = c.recv(source=0, tag=_TAG)
        if index is None:
            return
        point = points[index]
        message = (c.rank, point.name, _sweep.attempt(point))
