"""One HDF5 file per run, written atomically so that a crash never loses or corrupts what was stored.

Every change is a *commit*: copy the file aside, change the copy, flush it to disk, rename it over the
original. A killed process leaves either the old file or the new one (and perhaps a stale ``.tmp``).

Layout (plain h5py reads it; parameter vectors cover every tensor of the network in ``param_spec`` order):

    /                   attrs: format="esprune-run", format_version, esprune_version, config (JSON),
                        param_spec (JSON [[name, shape, prunable], ...]), created
    /summary            table, one row per finished iteration: iteration, sparsity, active, final, best,
                        test, threshold, seconds
    /iterations/003     init, mask (the ticket); final_mean, final_std, best_mean, best_std; train (G, 2:
                        mean and max fitness per generation); evals (n, 2: generation, test score);
                        attrs: sparsity, active, seed, threshold, final, best, test, seconds, best_generation,
                        timing (JSON: ask_s, evaluate_s, tell_s, commit_s, work, work_unit, generations, gflops)
    /checkpoint         where to continue: attrs iteration, generation, seconds, finished; when inside an
                        iteration also strategy/ (the live ES state), train, evals, best_mean, best_std
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .errors import UserError
from .params import ParamSpec, Tensor

FORMAT, FORMAT_VERSION = "esprune-run", 1
SUMMARY_FIELDS = (("iteration", "i4"), ("sparsity", "f8"), ("active", "i8"), ("final", "f8"), ("best", "f8"),
                  ("test", "f8"), ("threshold", "f8"), ("seconds", "f8"))


class RunFileError(UserError):
    """A run file that is missing, truncated, foreign or from an incompatible version."""


def spec_to_json(spec: ParamSpec) -> str:
    return json.dumps([[t.name, list(t.shape), t.prunable] for t in spec])


def spec_from_json(text: str) -> ParamSpec:
    return ParamSpec([Tensor(name, tuple(shape), prunable) for name, shape, prunable in json.loads(text)])


def to_vector(spec: ParamSpec, tensors: dict, dtype=None) -> np.ndarray:
    """Every tensor of the network, flattened in spec order (pruned entries as they are, usually 0)."""
    return np.concatenate([np.asarray(tensors[t.name], dtype=dtype).reshape(-1) for t in spec])


def from_vector(spec: ParamSpec, vector: np.ndarray) -> dict:
    out, start = {}, 0
    for t in spec:
        out[t.name] = np.asarray(vector[start:start + t.size]).reshape(t.shape)
        start += t.size
    return out


class RunFile:
    def __init__(self, path):
        self.path = Path(path)
        self._lock_fd = None

    # ------------------------------------------------------------------------------------------ one writer
    def lock(self) -> None:
        """Claim the run for this process (an advisory ``flock`` on ``RUN.lock``, dropped by the kernel when the
        process ends, even by SIGKILL): a second ``run --overwrite`` or ``resume`` of the same file would
        interleave its commits with ours, so it is refused instead."""
        if self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFileError(f"{self.path} is being written by another esprune process; wait for it to "
                               "finish (or stop it) first") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------------------------------ open / create
    @classmethod
    def create(cls, path, config: dict, spec: ParamSpec, overwrite: bool = False) -> RunFile:
        path = Path(path)
        if path.exists() and not overwrite:
            raise RunFileError(f"{path} already exists; continue it with `esprune resume {path}`, "
                               "or pass --overwrite to start again")
        path.parent.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.lock()

        def write(f):
            f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, esprune_version=__version__,
                           config=json.dumps(config, sort_keys=True), param_spec=spec_to_json(spec),
                           created=time.strftime("%Y-%m-%dT%H:%M:%S"))
            f.create_dataset("summary", shape=(0,), maxshape=(None,), dtype=np.dtype(list(SUMMARY_FIELDS)))
            f.create_group("iterations")

        run.commit(write, create=True)
        return run

    @classmethod
    def open(cls, path) -> RunFile:
        """A run file checked to be readable, esprune's, and of this format version."""
        path = Path(path)
        if not path.exists():
            raise RunFileError(f"{path} does not exist")
        try:
            with h5py.File(path, "r") as f:
                fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
                if fmt != FORMAT:
                    raise RunFileError(f"{path} is an HDF5 file but not an esprune run file")
                if version != FORMAT_VERSION:
                    raise RunFileError(f"{path} has run-file format version {version}; this esprune "
                                       f"({__version__}) reads version {FORMAT_VERSION} only")
                for key in ("config", "param_spec"):
                    if key not in f.attrs:
                        raise RunFileError(f"{path} lacks its {key}: the file is damaged")
                json.loads(f.attrs["config"])
        except OSError as err:
            raise RunFileError(f"{path} is not a readable HDF5 file (truncated or not HDF5): {err}") from None
        return cls(path)

    # ------------------------------------------------------------------------------------------ atomic writes
    def commit(self, change, create: bool = False) -> None:
        """Apply ``change(h5file)`` atomically: on a copy, flushed, then renamed over the file."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        if create:
            tmp.unlink(missing_ok=True)
        else:
            shutil.copyfile(self.path, tmp)
        with h5py.File(tmp, "w" if create else "r+") as f:
            change(f)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # ------------------------------------------------------------------------------------------ reading
    def _read(self, fn):
        with h5py.File(self.path, "r") as f:
            return fn(f)

    @property
    def config(self) -> dict:
        return self._read(lambda f: json.loads(f.attrs["config"]))

    @property
    def spec(self) -> ParamSpec:
        return self._read(lambda f: spec_from_json(f.attrs["param_spec"]))

    def summary(self) -> list[dict]:
        """The finished iterations, one dict per row with the keys of ``SUMMARY_FIELDS``."""
        rows = self._read(lambda f: f["summary"][()])
        return [{name: (int if kind[0] == "i" else float)(row[name]) for name, kind in SUMMARY_FIELDS}
                for row in rows]

    def iteration(self, k: int) -> dict:
        """Datasets and attributes of iteration ``k`` (whatever has been written so far)."""
        def read(f):
            g = f["iterations"].get(f"{k:03d}")
            if g is None:
                raise RunFileError(f"{self.path} has no iteration {k}")
            return {**{name: g[name][()] for name in g}, **dict(g.attrs)}
        return self._read(read)

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

    def checkpoint(self) -> dict | None:
        def read(f):
            if "checkpoint" not in f:
                return None
            g = f["checkpoint"]
            out = {**dict(g.attrs), **{n: g[n][()] for n in g if n != "strategy"}}
            if "strategy" in g:
                s = g["strategy"]
                out["strategy"] = {**json.loads(s.attrs["scalars"]), **{n: s[n][()] for n in s}}
            return out
        return self._read(read)


# ---------------------------------------------------------------------------------------------- writers
def write_group(parent, name: str, datasets: dict, attrs: dict | None = None):
    """Replace ``parent[name]`` by a group holding ``datasets`` (None values left out) and ``attrs``."""
    if name in parent:
        del parent[name]
    g = parent.create_group(name)
    for key, value in datasets.items():
        if value is not None:
            g.create_dataset(key, data=value)
    g.attrs.update(attrs or {})
    return g


def write_strategy_state(parent, state: dict) -> None:
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: (v.item() if hasattr(v, "item") else v) for k, v in state.items() if k not in arrays}
    write_group(parent, "strategy", arrays, {"scalars": json.dumps(scalars)})


def write_timing(group, record: dict) -> None:
    """An iteration's profile (``timing.PhaseTimer.record()``) as the JSON attribute ``timing`` of its group."""
    group.attrs["timing"] = json.dumps(record)


def append_summary(f, row: dict) -> None:
    table = f["summary"]
    table.resize((table.shape[0] + 1,))
    table[-1] = tuple(row[name] for name, _ in SUMMARY_FIELDS)
