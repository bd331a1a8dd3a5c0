"""An analysis's finished items, kept beside its output as each one finishes, so that the same command, killed or
stopped, continues where it stopped instead of starting over (``connect`` and ``flatness`` take minutes per item
on a CPU, and tens of items).

``PREFIX.partial.json`` holds the analysis's settings and ``{key: result}``. An item's key names what it was
computed from: the run file's path as given, its ``run_id`` (a run replaced with ``--overwrite`` gets a new one)
and the iteration. Items are reused only when the settings are equal; the file is removed once the final output
is written. Finished iterations of a run never change, so a reused item is the item the command would compute.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..store import RunFile


class Partial:
    """The finished items of one analysis run into ``prefix``, under ``settings`` (a JSON-able dict)."""

    def __init__(self, prefix, settings: dict):
        self.path = Path(f"{prefix}.partial.json")
        self.settings = _plain(settings)
        self.items: dict = {}
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or a torn or foreign file: start over
            stored = None
        if isinstance(stored, dict) and stored.get("settings") == self.settings \
                and isinstance(stored.get("items"), dict):
            self.items = stored["items"]

    def result(self, key: str, compute) -> dict:
        """The item ``key``: read back when a stopped run of the same analysis finished it, else ``compute()``d
        and kept at once (atomic replace). Both come back in the same form, the JSON one (arrays as lists), so
        that a continued analysis prints and draws exactly what an uninterrupted one does."""
        if key not in self.items:
            self.items[key] = _plain(compute())
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"settings": self.settings, "items": self.items}))
            os.replace(tmp, self.path)
        return self.items[key]

    def found(self, keys) -> int:
        """How many of ``keys`` a stopped run of this analysis has already finished."""
        return sum(key in self.items for key in keys)

    def done(self) -> None:
        """The final output is written: the kept items are not needed any more."""
        self.path.unlink(missing_ok=True)


def item_key(path, iteration: int) -> str:
    """``PATH#RUN_ID@K``: iteration ``iteration`` of this very run file."""
    return f"{path}#{RunFile.open(path)._run_id()}@{int(iteration)}"


def _plain(value):
    """``value`` as JSON gives it back (NaN kept: the partial file is esprune's own)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
