"""Output paths checked before the work that fills them (a benchmark, an analysis or a figure is not computed only
to find that its file cannot be written), and a write that fails anyway reported in one line."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import UserError

FIGURE_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff")


class OutputError(UserError):
    """An output path that cannot be written."""


def check_writable(path, formats: tuple[str, ...] | None = None, what: str = "output",
                   make_dirs: bool = False) -> Path:
    """``path`` as a Path once it is known to be writable: not empty, not a directory, its directory existing
    (``make_dirs``: created here when missing) and writable, and (``formats``) its extension one of them.
    Writability is tried, not inferred from permission bits (root passes every ``os.access`` test, yet cannot
    create /proc/x): a missing file is created and removed again, an existing one opened for appending, which
    leaves it as it was. Raises OutputError saying which and what to do."""
    if path is None or not str(path).strip():
        raise OutputError(f"the {what} path is empty; give a file name")
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{path} is a directory; give a file name for the {what}")
    if formats is not None:
        check_format(path, formats, what)
    parent = path.parent
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        kind = "a file, not a directory" if blocking.is_file() else "not a directory"  # e.g. /dev/null
        raise OutputError(f"cannot write {path}: {blocking} is {kind}")
    if not parent.is_dir():
        if not make_dirs:
            raise OutputError(f"cannot write {path}: directory {parent} does not exist (create it first)")
        with _one_line(path):
            parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {path}: permission denied")
    with _one_line(path):
        if path.exists():
            open(path, "ab").close()
        else:
            open(path, "xb").close()
            path.unlink()
    return path


def check_all(paths, what: str = "output", make_dirs: bool = False) -> list[Path]:
    """``check_writable`` for every file a command will write (a figure and its tables, say), before its work."""
    return [check_writable(p, what=what, make_dirs=make_dirs) for p in paths]


def check_format(path, formats: tuple[str, ...], what: str = "output") -> None:
    """Raises OutputError unless ``path``'s extension is one of ``formats`` (case-insensitive, without the dot)."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in formats:
        raise OutputError(f"{path}: unknown {what} format {path.suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(formats)}")


@contextlib.contextmanager
def writing(what: str = "output"):
    """Around the writes at a command's end: an OSError there (a disk that filled, a directory removed since the
    check) becomes one OutputError line naming the file, not a traceback."""
    try:
        yield
    except OSError as err:
        name = err.filename if err.filename is not None else "the " + what
        raise OutputError(f"cannot write {name}: {err.strerror or err}") from None


@contextlib.contextmanager
def _one_line(path):
    try:
        yield
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
