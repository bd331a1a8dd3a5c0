"""One HDF5 file per run, written atomically so that a crash never loses or corrupts what was stored; this
module is the only one that knows the layout (others call its typed methods).

Two kinds of commit, each a write to a temporary file renamed over its target (a killed process leaves either
the old file or the new one, and perhaps a stale ``.tmp``):

* the run file itself changes once per IMP iteration (its ticket, its results, the next ticket) and at
  creation. It is rebuilt object by object, so deleted or replaced data leaves no dead space behind, and an
  existing file is replaced only when the new one is complete (``run --overwrite`` loses nothing if it fails).
* checkpoints inside an iteration go to a small side file ``RUN.h5.checkpoint`` (the live ES state and the
  curves so far): their cost follows the ES state, not the run. It counts only while it belongs to the run's
  current iteration (same ``run_id`` and iteration); the iteration's final commit makes it stale.

A run file reached through a symbolic link is written where the link points (the link stays); its lock and
side file sit beside the real file, so two names for one run share one lock. The lock file ``RUN.h5.lock`` is
removed when its writer ends cleanly or with a one-line error; a crash or Ctrl-C may leave it (harmless).

Layout (plain h5py reads it; parameter vectors cover every tensor of the network in ``param_spec`` order):

    /                   attrs: format="esprune-run", format_version, esprune_version, config (JSON),
                        param_spec (JSON [[name, shape, prunable], ...]), created, run_id
    /summary            table, one row per finished iteration k (the row of ticket k): iteration, sparsity,
                        weights (prunable weights remaining), final, best, test, threshold (the score that made
                        ticket k; NaN for k = 0 and for random masks), seconds
    /iterations/003     init, mask (the ticket); final_mean, final_std, best_mean, best_std; train (G, 2:
                        mean and max fitness per generation); evals (n, 2: generation, test score);
                        attrs: sparsity, weights, seed, threshold, final, best, test, seconds, best_generation,
                        timing (JSON: ask_s, evaluate_s, tell_s, commit_s, work, work_unit, generations, gflops),
                        effective (JSON, written with the ticket: ``effective.Effective.to_dict()`` of its mask;
                        for files written before it existed, computed from the stored mask when read)
    /checkpoint         where to continue: attrs iteration, generation, seconds, finished
    RUN.h5.checkpoint   (side file) attrs run_id, iteration, generation, seconds, best_score,
                        best_generation; strategy/ (the live ES state), train, evals, best_mean, best_std;
                        task_state/ (a task's own state, e.g. task_obs_mean, best_task_obs_mean)
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from . import config as _config
from .effective import effective as _effective
from .errors import UserError, out_of_memory
from .params import Mask, ParamSpec, Tensor

FORMAT, FORMAT_VERSION = "esprune-run", 1
# weights: the ticket's prunable weights remaining (biases, never pruned, are not counted; files of esprune
# before this field stored "active", weights + biases, and are read as weights)
SUMMARY_FIELDS = (("iteration", "i4"), ("sparsity", "f8"), ("weights", "i8"), ("final", "f8"), ("best", "f8"),
                  ("test", "f8"), ("threshold", "f8"), ("seconds", "f8"))
REQUIRED = ("summary", "iterations", "checkpoint")


class RunFileError(UserError):
    """A run file that is missing, truncated, foreign, in use, unwritable or from an incompatible version."""


class RunFileBusy(RunFileError):
    """A run file that another esprune process is writing (it holds ``RUN.lock``)."""


def spec_to_json(spec: ParamSpec) -> str:
    return json.dumps(spec.to_json())


def spec_from_json(text: str) -> ParamSpec:
    return ParamSpec([Tensor(name, tuple(shape), prunable) for name, shape, prunable in json.loads(text)])


def to_vector(spec: ParamSpec, tensors: dict, dtype=None) -> np.ndarray:
    """Kept for older callers: :meth:`ParamSpec.to_vector`."""
    return spec.to_vector(tensors, dtype)


def from_vector(spec: ParamSpec, vector: np.ndarray) -> dict:
    """Kept for older callers: :meth:`ParamSpec.from_vector`."""
    return spec.from_vector(vector)


def real_path(path) -> Path:
    """``path`` with every symbolic link resolved (the file that is read and replaced); refuses an empty path."""
    if not str(path).strip():
        raise RunFileError("the run file path is empty; give a file name such as runs/a.h5")
    return Path(os.path.realpath(Path(path).expanduser()))


class RunFile:
    def __init__(self, path):
        self.name = str(path)            # as the user gave it, for messages
        self.path = real_path(path)      # resolved once: commits, lock and side file all use it
        self._lock_fd = None

    @property
    def checkpoint_path(self) -> Path:
        return self.path.with_name(self.path.name + ".checkpoint")

    # ------------------------------------------------------------------------------------------ one writer
    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> None:
        """Claim the run for this process (an advisory ``flock`` on ``RUN.lock`` beside the real file, dropped by
        the kernel when the process ends, even by SIGKILL): a second writer of the same run is refused.

        A holder that ends cleanly removes the lock file while it still holds the lock (``unlock(remove=True)``),
        so a process that opened the old file just before may lock a file no longer on disk: the lock counts
        only when the file locked is still the one at ``RUN.lock``, else this takes the new one."""
        if self._lock_fd is not None:
            return
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise RunFileError(f"cannot write in {self.path.parent} ({err.strerror}); choose another --out "
                                   "or fix the directory's permissions") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFileBusy(f"{self.name} is being written by another esprune process; wait for it to "
                                   "finish (or stop it) first") from None
            if _same_file(fd, self.lock_path):
                break
            os.close(fd)  # its holder removed it after we opened it: lock the file that is there now
        self._lock_fd = fd

    def unlock(self, remove: bool = False) -> None:
        """Release the run; ``remove``: also delete ``RUN.lock`` (at a clean end, so no stale file stays behind).
        The file is removed while the lock is still held, so no other process can hold it then (see ``lock``)."""
        if self._lock_fd is None:
            return
        try:
            if remove and _same_file(self._lock_fd, self.lock_path):
                self.lock_path.unlink(missing_ok=True)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------------------------------ open / create
    @classmethod
    def check_new(cls, path, overwrite: bool = False) -> RunFile:
        """A RunFile for a new run at ``path``, checked before any work: not a directory, not an existing run
        unless ``overwrite``, and its directory writable. Nothing is written."""
        run = cls(path)
        if run.path.is_dir():
            raise RunFileError(f"{run.name} is a directory; give a file name such as {run.name}/run.h5")
        if run.path.exists() and not overwrite:
            raise RunFileError(f"{run.name} already exists; continue it with `esprune resume {run.name}`, "
                               "or pass --overwrite to start again")
        parent = _existing_parent(run.path)
        if not parent.is_dir():
            raise RunFileError(f"cannot write {run.name}: {parent} is a file, not a directory; choose another --out")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise RunFileError(f"cannot write in {parent} (permission denied); choose another --out")
        return run

    @classmethod
    def create(cls, path, config: dict, spec: ParamSpec, ticket, overwrite: bool = False) -> RunFile:
        """A new run file holding the config and iteration 0's ``ticket`` (a ``prune.Ticket``), in one commit:
        an existing file (``overwrite``) is replaced only once the new one is complete."""
        run = cls.check_new(path, overwrite)
        run.lock()
        run_id = uuid.uuid4().hex

        def write(f):
            f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, esprune_version=__version__,
                           config=_dumps_config(config, run.path), param_spec=spec_to_json(spec),
                           created=time.strftime("%Y-%m-%dT%H:%M:%S"), run_id=run_id)
            f.create_dataset("summary", shape=(0,), maxshape=(None,), dtype=np.dtype(list(SUMMARY_FIELDS)))
            f.create_group("iterations")
            _write_ticket(f, spec, 0, ticket)

        try:
            run.commit(write, create=True)
        except BaseException as err:
            run.unlock(remove=isinstance(err, UserError) or out_of_memory(err))  # a one-line error: no lock file
            raise
        run.checkpoint_path.unlink(missing_ok=True)  # a previous run's side file (its run_id differs anyway)
        return run

    @classmethod
    def open(cls, path) -> RunFile:
        """A run file checked to be readable, esprune's, of this format version, and complete in its parts."""
        run = cls(path)
        name = run.name
        if not run.path.exists():
            raise RunFileError(f"{name} does not exist")
        if run.path.is_dir():
            raise RunFileError(f"{name} is a directory, not a run file")
        try:
            with h5py.File(run.path, "r") as f:
                _check_header(f, name)
        except OSError as err:
            if _held_by_another(err):
                raise RunFileError(f"{name} is open for writing in another process; wait for it to finish (or "
                                   "close it) first") from None
            if isinstance(err, PermissionError) or err.errno == errno.EACCES:
                raise RunFileError(f"{name} is not readable (permission denied)") from None
            raise RunFileError(f"{name} is not a readable HDF5 file (truncated or not HDF5): {err}") from None
        return run

    # ------------------------------------------------------------------------------------------ atomic writes
    def commit(self, change, create: bool = False) -> None:
        """Apply ``change(h5file)`` atomically to the run file: on a fresh copy (live objects only), flushed, then
        renamed over the file. On failure (a full disk, ...) the file is unchanged and the copy removed."""
        def write(f):
            if not create:
                with h5py.File(self.path, "r") as old:
                    f.attrs.update(old.attrs)
                    for key in old:
                        old.copy(old[key], f, name=key)
            change(f)
        _atomic_h5(self.path, write, self.name)

    def _commit_side(self, change) -> None:
        _atomic_h5(self.checkpoint_path, change, self.name)

    # ------------------------------------------------------------------------------------------ typed writers
    def write_checkpoint(self, k: int, generation: int, seconds: float, strategy_state: dict, train, evals,
                         best: dict, task_state: dict | None = None) -> None:
        """The live state inside iteration ``k`` after ``generation`` generations (the side file); ``task_state``:
        named arrays of a task's own state (observation statistics), read back by ``checkpoint()`` by name."""
        run_id = self.run_id

        def write(f):
            f.attrs.update(run_id=run_id, iteration=k, generation=generation, seconds=seconds, finished=False,
                           best_score=best["score"], best_generation=best["generation"])
            _write_group(f, "curves", {"train": _rows(train), "evals": _rows(evals), "best_mean": best["mean"],
                                       "best_std": best["std"]})
            arrays = {key: v for key, v in strategy_state.items() if isinstance(v, np.ndarray)}
            scalars = {key: (v.item() if hasattr(v, "item") else v) for key, v in strategy_state.items()
                       if key not in arrays}
            _write_group(f, "strategy", arrays, {"scalars": json.dumps(scalars)})
            if task_state:
                _write_group(f, "task_state", {name: np.asarray(v) for name, v in task_state.items()})

        self._commit_side(write)

    def finish_iteration(self, k: int, results: dict, attrs: dict, row: dict, next_ticket=None,
                         timing: dict | None = None) -> None:
        """Iteration ``k``'s results (vectors over all parameters; None values left out), its summary row, its
        profile (``timing.PhaseTimer.record()``, kept as the JSON attribute ``timing``) and the next ticket
        (None: the run is finished), in one commit."""
        spec = self.spec

        def write(f):
            g = f["iterations"][f"{k:03d}"]
            for key, value in results.items():
                if key in g:
                    del g[key]
                if value is not None:
                    g.create_dataset(key, data=value)
            g.attrs.update(attrs)
            if timing is not None:
                g.attrs["timing"] = json.dumps(timing)
            table = f["summary"]
            table.resize((table.shape[0] + 1,))
            table[-1] = tuple(row[key] for key, _ in SUMMARY_FIELDS)
            if next_ticket is not None:
                _write_ticket(f, spec, k + 1, next_ticket)
            else:
                _write_group(f, "checkpoint", {}, {"iteration": k + 1, "generation": 0, "seconds": 0.0,
                                                   "finished": True})

        self.commit(write)
        self.checkpoint_path.unlink(missing_ok=True)  # stale now (its iteration is over)

    def extend(self, config: dict, k: int | None = None, ticket=None) -> None:
        """Store ``config`` (the run's config with another ``iterations``) and, for a finished run that now goes
        on, iteration ``k``'s ``ticket`` with a checkpoint at its start, in one commit."""
        spec = self.spec

        def write(f):
            f.attrs["config"] = _dumps_config(config, self.path)
            if ticket is not None:
                _write_ticket(f, spec, k, ticket)

        self.commit(write)

    # ------------------------------------------------------------------------------------------ reading
    def _read(self, fn):
        try:
            with h5py.File(self.path, "r") as f:
                return fn(f)
        except OSError as err:
            if _held_by_another(err):
                raise RunFileError(f"{self.name} is open for writing in another process") from None
            raise RunFileError(f"{self.name} could not be read: {err}") from None

    @property
    def config(self) -> dict:
        """The stored config as a plain dict (keys added after a file was written take their old values)."""
        cfg = {**_config.LATER_KEYS, **self._read(lambda f: json.loads(f.attrs["config"]))}
        if cfg.get("tickets_from"):
            cfg["tickets_from"] = _source_from_here(cfg["tickets_from"], self.path)
        return cfg

    @property
    def spec(self) -> ParamSpec:
        return self._read(lambda f: spec_from_json(f.attrs["param_spec"]))

    @property
    def run_id(self) -> str:
        """This run's identity: a new one for every new run at a path (``--overwrite`` too); older files: their
        creation time."""
        return self._read(lambda f: str(f.attrs.get("run_id", f.attrs.get("created", ""))))

    def summary(self) -> list[dict]:
        """The finished iterations, one dict per row with the keys of ``SUMMARY_FIELDS`` and of
        ``effective_fields`` (the effective sparsity of the iteration's ticket). A file written before the
        ``weights`` field has ``active`` = weights + biases: the biases are subtracted."""
        def read(f):
            spec = spec_from_json(f.attrs["param_spec"])
            table = f["summary"][()]
            biases = sum(t.size for t in spec if not t.prunable)
            old = bool(table.dtype.names) and "weights" not in table.dtype.names

            def value(row, name, kind):
                raw = row["active"] - biases if old and name == "weights" else row[name]
                return (int if kind[0] == "i" else float)(raw)
            rows = [{name: value(row, name, kind) for name, kind in SUMMARY_FIELDS} for row in table]
            return [{**row, **effective_fields(_effective_of(f, spec, row["iteration"]))} for row in rows]
        return self._read(read)

    def effective(self, k: int) -> dict:
        """The effective sparsity of iteration ``k``'s ticket: ``effective.Effective.to_dict()`` (stored with
        the ticket, or computed from its stored mask in files written before esprune stored it)."""
        return self._read(lambda f: _effective_of(f, spec_from_json(f.attrs["param_spec"]), k))

    def iteration(self, k: int) -> dict:
        """Datasets and attributes of iteration ``k`` (whatever has been written so far)."""
        def read(f):
            g = f["iterations"].get(f"{k:03d}")
            if g is None:
                raise RunFileError(f"{self.name} has no iteration {k}")
            return {**{name: g[name][()] for name in g}, **dict(g.attrs)}
        return self._read(read)

    def curves(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(k, train, evals)`` of every finished iteration, in order: ``train`` (G, 2) float64, the mean and max
        fitness of generation 1..G; ``evals`` (n, 2) float64, (generation, test score of the mean). Only these
        two datasets are read (not the parameter vectors)."""
        def read(f):
            return [(int(name), g["train"][()], g["evals"][()])
                    for name, g in sorted(f["iterations"].items()) if "train" in g and "evals" in g]
        return self._read(read)

    def ticket(self, k: int):
        """Iteration ``k``'s ticket as a ``prune.Ticket`` (init tensors, Mask, threshold)."""
        from .prune import Ticket

        spec, it = self.spec, self.iteration(k)
        if "init" not in it or "mask" not in it:
            raise RunFileError(f"{self.name} has no ticket for iteration {k}")
        return Ticket(spec.from_vector(it["init"]), Mask.from_vector(spec, it["mask"]),
                      float(it.get("threshold", np.nan)))

    def timing(self) -> list[dict]:
        """The profile of every iteration that has one: ``{"iteration": k, **PhaseTimer.record()}``."""
        def read(f):
            return [{"iteration": int(name), **json.loads(g.attrs["timing"])}
                    for name, g in sorted(f["iterations"].items()) if "timing" in g.attrs]
        return self._read(read)

    def tickets(self) -> int:
        """How many consecutive iterations, from 0, have a ticket (init and mask) stored."""
        def count(f):
            n = 0
            while f"{n:03d}" in f["iterations"] and "mask" in f["iterations"][f"{n:03d}"]:
                n += 1
            return n
        return self._read(count)

    def checkpoint(self) -> dict:
        """Where to continue: attrs iteration, generation, seconds, finished; inside an iteration also
        ``strategy`` (the ES state dict), train, evals, best_mean, best_std, best_score, best_generation."""
        out, run_id = self._read(_main_checkpoint)
        side = self._read_side()
        if side and not out["finished"] and side["run_id"] == run_id and side["iteration"] == out["iteration"]:
            out = {key: v for key, v in side.items() if key != "run_id"}
        return out

    @property
    def finished(self) -> bool:
        return bool(self.checkpoint()["finished"])

    def _read_side(self) -> dict | None:
        if not self.checkpoint_path.exists():
            return None
        try:
            with h5py.File(self.checkpoint_path, "r") as f:
                out = {**dict(f.attrs), **{n: f["curves"][n][()] for n in f["curves"]}}
                s = f["strategy"]
                out["strategy"] = {**json.loads(s.attrs["scalars"]), **{n: s[n][()] for n in s}}
                if "task_state" in f:
                    out.update({n: f["task_state"][n][()] for n in f["task_state"]})
                out["run_id"] = str(out["run_id"])
                return out
        except (OSError, KeyError, ValueError):
            return None  # a damaged side file only costs the progress inside the iteration


# ---------------------------------------------------------------------------------------------- helpers
def _check_header(f, name):
    fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    if fmt != FORMAT:
        raise RunFileError(f"{name} is an HDF5 file but not an esprune run file")
    if isinstance(version, (bytes, str)) or not isinstance(version, (int, np.integer)):
        raise RunFileError(f"{name} stores its format_version as {type(version).__name__} {version!r}, not an "
                           f"integer: the file was not written by esprune or was edited; this esprune reads "
                           f"integer version {FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise RunFileError(f"{name} has run-file format version {version}; this esprune "
                           f"({__version__}) reads version {FORMAT_VERSION} only")
    for key in ("config", "param_spec"):
        if key not in f.attrs:
            raise RunFileError(f"{name} lacks its {key}: the file is damaged")
    try:
        cfg = json.loads(f.attrs["config"])
        spec_from_json(f.attrs["param_spec"])
    except (ValueError, TypeError) as err:
        raise RunFileError(f"{name} has a damaged config or param_spec attribute (not valid JSON: {err})") from None
    if not isinstance(cfg, dict):
        raise RunFileError(f"{name} has a damaged config attribute (not a JSON object)")
    lacking = sorted(set(_config.KEYS) - set(cfg) - set(_config.LATER_KEYS))
    if lacking:
        raise RunFileError(f"{name} has a damaged config attribute: config lacks key(s) {', '.join(lacking)}")
    missing = [key for key in REQUIRED if key not in f]
    if missing:
        raise RunFileError(f"{name} lacks /{', /'.join(missing)}: it was never completely written (or was "
                           "damaged); start the run again with `esprune run ... --overwrite`")


def _main_checkpoint(f):
    """The run file's own checkpoint (files of earlier esprune versions keep the live state there too)."""
    g = f["checkpoint"]
    out = {**dict(g.attrs), **{n: g[n][()] for n in g if n != "strategy"}}
    if "strategy" in g:
        s = g["strategy"]
        out["strategy"] = {**json.loads(s.attrs["scalars"]), **{n: s[n][()] for n in s}}
    return out, str(f.attrs.get("run_id", f.attrs.get("created", "")))


def effective_fields(eff: dict) -> dict:
    """A summary row's effective-sparsity keys from ``Effective.to_dict()``: ``effective`` (% of the prunable
    weights on some input→output path), ``effective_weights`` (their count), ``empty_layers`` (layers with no
    active weight), ``disconnected`` (no input reaches an output), ``layers`` ({layer: {size, kept,
    effective}})."""
    return {"effective": 100.0 * eff["remaining"], "effective_weights": eff["effective"],
            "empty_layers": list(eff["empty"]), "disconnected": bool(eff["disconnected"]),
            "layers": eff["layers"]}


def _effective_of(f, spec: ParamSpec, k: int) -> dict:
    g = f["iterations"].get(f"{k:03d}")
    if g is None or "mask" not in g:
        raise RunFileError(f"iteration {k} has no ticket stored: the file is damaged")
    if "effective" in g.attrs:
        return json.loads(g.attrs["effective"])
    return _effective(spec, Mask.from_vector(spec, g["mask"][()])).to_dict()  # a file from before it was stored


def _write_ticket(f, spec: ParamSpec, k: int, ticket) -> None:
    """Iteration k's ticket (with its effective sparsity) and a checkpoint at its first generation."""
    mask = ticket.mask
    _write_group(f["iterations"], f"{k:03d}",
                 {"init": spec.to_vector(ticket.init, np.float32), "mask": mask.to_vector()},
                 {"threshold": ticket.threshold, "sparsity": mask.sparsity(), "weights": mask.kept,
                  "effective": json.dumps(_effective(spec, mask).to_dict())})
    _write_group(f, "checkpoint", {}, {"iteration": k, "generation": 0, "seconds": 0.0, "finished": False})


def _write_group(parent, name: str, datasets: dict, attrs: dict | None = None):
    """Replace ``parent[name]`` by a group holding ``datasets`` (None values left out) and ``attrs``."""
    if name in parent:
        del parent[name]
    g = parent.create_group(name)
    for key, value in datasets.items():
        if value is not None:
            g.create_dataset(key, data=value)
    g.attrs.update(attrs or {})
    return g


def _rows(pairs) -> np.ndarray:
    return np.asarray(pairs, dtype=np.float64).reshape(-1, 2)


def _atomic_h5(path: Path, write, name: str) -> None:
    """Write a new HDF5 file with ``write(f)`` beside ``path``, fsync it, rename it over ``path``, fsync the
    directory. Any OSError (ENOSPC, EACCES, ...) removes the temporary file and leaves ``path`` as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        with h5py.File(tmp, "w") as f:
            write(f)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        why = err.strerror or str(err)
        if err.errno == errno.ENOSPC or "No space" in str(err):
            why = "no space left on the device"
        raise RunFileError(f"could not write {name}: {why}; the run file is unchanged (its last commit stands): "
                           f"free space or fix the directory, then `esprune resume {name}`") from None


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the file now at ``path`` (False when ``path`` is gone)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _held_by_another(err: OSError) -> bool:
    """HDF5 refuses to open a file another process holds open for writing (its file locking, errno 11)."""
    text = str(err)
    return "unable to lock file" in text or "errno = 11" in text or err.errno == errno.EAGAIN


# ---------------------------------------------------------------------------------------------- transfer sources
# A transfer's source (config key ``tickets_from``) is stored relative to the transfer's own directory, so the
# pair of files can be read (report, resume, show --config) from any working directory and moved together.
def _dumps_config(config: dict, path: Path) -> str:
    if config.get("tickets_from"):
        source = os.path.relpath(os.path.realpath(config["tickets_from"]), path.parent)  # path: a real path too
        config = {**config, "tickets_from": source}
    return json.dumps(config, sort_keys=True)


def _source_from_here(stored: str, path: Path) -> str:
    """The stored source path as one that opens from the working directory. Files written before sources were
    stored relative to the run file hold a path relative to the directory they were made in: kept when the
    run-relative reading does not exist and that one does."""
    beside = path.parent / stored
    if os.path.isabs(stored) or (not beside.exists() and Path(stored).exists()):
        return stored
    here = os.path.relpath(beside)  # as short as the user would type it, when it lies below the working directory
    return os.path.abspath(beside) if here.startswith("..") else here

