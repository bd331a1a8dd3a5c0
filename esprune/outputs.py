"""Output paths checked before the work that fills them (a benchmark or a figure is not computed only to find
that its file cannot be written)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

FIGURE_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff")


class OutputError(UserError):
    """An output path that cannot be written."""


def check_writable(path, formats: tuple[str, ...] | None = None, what: str = "output") -> Path:
    """``path`` as a Path once it is known to be writable: not empty, not a directory, its directory existing and
    writable, and (``formats``) its extension one of them. Raises OutputError saying which and what to do."""
    if path is None or not str(path).strip():
        raise OutputError(f"the {what} path is empty; give a file name")
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{path} is a directory; give a file name for the {what}")
    if formats is not None and path.suffix.lower().lstrip(".") not in formats:
        raise OutputError(f"{path}: unknown {what} format {path.suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(formats)}")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {path}: permission denied")
    return path
