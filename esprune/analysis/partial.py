"""An analysis's finished items, kept beside its output as each one finishes, so that the same command, killed or
stopped, continues where it stopped instead of starting over (``connect`` and ``flatness`` take minutes per item
on a CPU, and tens of items).

``PREFIX.partial.json`` holds the analysis's settings and ``{key: result}``. An item's key names what it was
computed from: the run file's path (normalized), its ``run_id`` (a run replaced with ``--overwrite`` gets a new
one) and the iteration. Items are reused only under equal settings (a file of other settings is refused, not
overwritten); the file is removed once the final output is written. Finished iterations of a run never change,
so a reused item is the item the command would compute.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import UserError
from ..outputs import writing
from ..store import RunFile


class Partial:
    """The finished items of one analysis run into ``prefix``, under ``settings`` (a JSON-able dict).

    Raises UserError when ``PREFIX.partial.json`` holds items computed with other settings: they are hours of
    work, so they are neither reused nor overwritten; the message says how to continue them or start over. A
    file that is damaged (truncated, edited: its items no longer match their checksum) is set aside with a
    ``notice`` and the analysis starts over."""

    def __init__(self, prefix, settings: dict):
        self.path = Path(f"{prefix}.partial.json")
        self.settings = _plain(settings)
        self.items: dict = {}
        self.notice = None
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as err:
            raise UserError(f"cannot read {self.path}: {err.strerror or err}") from None
        try:
            stored = json.loads(text)
            items, digest = stored["items"], stored["sha256"]
            ok = isinstance(items, dict) and digest == _digest(items)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            self.notice = f"{self.path} is damaged (not the file esprune wrote); starting over"
            return
        if stored.get("settings") != self.settings:
            theirs = ", ".join(f"{k} {v}" for k, v in sorted(stored.get("settings", {}).items())
                               if self.settings.get(k) != v)
            raise UserError(f"{self.path} holds {len(items)} finished items of this analysis with other settings "
                            f"({theirs}); run it again with those to continue them, or remove the file to start "
                            "over with these")
        self.items = items

    def result(self, key: str, compute) -> dict:
        """The item ``key``: read back when a stopped run of the same analysis finished it, else ``compute()``d
        and kept at once (atomic replace). Both come back in the same form, the JSON one (arrays as lists), so
        that a continued analysis prints and draws exactly what an uninterrupted one does."""
        if key not in self.items:
            self.items[key] = _plain(compute())
            tmp = self.path.with_name(self.path.name + ".tmp")
            with writing("analysis's partial results"):
                tmp.write_text(json.dumps({"settings": self.settings, "items": self.items,
                                           "sha256": _digest(self.items)}))
                os.replace(tmp, self.path)
        return self.items[key]

    def found(self, keys) -> int:
        """How many of ``keys`` a stopped run of this analysis has already finished."""
        return sum(key in self.items for key in keys)

    def done(self) -> None:
        """The final output is written: the kept items are not needed any more."""
        self.path.unlink(missing_ok=True)


def item_key(path, iteration: int) -> str:
    """``PATH#RUN_ID@K``: iteration ``iteration`` of this very run file (the path normalized: ``./r//a.h5`` is
    ``r/a.h5``)."""
    return f"{os.path.normpath(path)}#{RunFile.open(path).run_id}@{int(iteration)}"


def _digest(items: dict) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def _plain(value):
    """``value`` as JSON gives it back (NaN kept: the partial file is esprune's own)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
