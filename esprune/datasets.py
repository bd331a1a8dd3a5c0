"""The MNIST family from the standard files, found, read and verified; fetched where the machine has internet.

Files: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz`` (IDX, any gzip compression) and, for KMNIST, the upstream ``kmnist-*.npz`` in
their place. Content is verified against ``data/checksums.json`` (sha256 of the decompressed payload), so a
re-compressed copy such as Debian's Fashion-MNIST passes and a truncated or altered one is refused by name.

Where a dataset is looked for, in order: ``data_dir`` (the directory itself or its ``<name>/``), then
``$ESPRUNE_DATA``, then ``~/.cache/esprune``, and for Fashion-MNIST Debian's ``/usr/share/datasets/fashion-mnist``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError

NAMES = {"mnist": "mnist", "fashion_mnist": "fashion-mnist", "kmnist": "kmnist"}  # task name → folder
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
DEBIAN = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
CHECKSUMS = Path(__file__).resolve().parents[1] / "data" / "checksums.json"


class DataError(UserError):
    """A dataset file that is missing, unreadable or not the published content."""


def manifest() -> dict:
    return json.loads(CHECKSUMS.read_text())


def folder(name: str) -> str:
    if name in NAMES.values():
        return name
    if name not in NAMES:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return NAMES[name]


def search_dirs(name: str, data_dir=None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("ESPRUNE_DATA"):
        roots.append(Path(os.environ["ESPRUNE_DATA"]))
    roots.append(Path.home() / ".cache" / "esprune")
    dirs = [d for root in roots for d in (root / folder(name), root)]
    return dirs + ([DEBIAN[folder(name)]] if folder(name) in DEBIAN else [])


def locate(name: str, filename: str, data_dir=None) -> Path | None:
    """The first place holding ``filename`` (or, for KMNIST, its npz twin)."""
    twin = manifest()[folder(name)].get("npz", {}).get(filename)
    for d in search_dirs(name, data_dir):
        for candidate in (filename, twin):
            if candidate and (d / candidate).is_file():
                return d / candidate
    return None


def read_verified(name: str, filename: str, path: Path) -> np.ndarray:
    """The uint8 array in ``path`` (IDX gzip or npz), checked against the manifest entry of ``filename``."""
    digest, shape = manifest()[folder(name)]["files"][filename]
    try:
        array = _read_npz(path) if path.suffix == ".npz" else _read_idx(path)
    except (OSError, EOFError, ValueError, zlib.error, KeyError) as err:
        raise DataError(f"{path} is unreadable (truncated or not {filename}): {err}; {how_to_get(name)}") from None
    if list(array.shape) != shape:
        raise DataError(f"{path} holds shape {list(array.shape)}, {filename} has {shape}; {how_to_get(name)}")
    if digest and hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() != digest:
        raise DataError(f"{path} has the right shape but not the published content (checksum mismatch); "
                        f"{how_to_get(name)}")
    return array


def load_split(name: str, split: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of ``split`` ("train" or "test"), verified. DataError when
    a file is missing or damaged, or when ``data_dir`` is given but is not a directory."""
    _check_data_dir(data_dir)
    out = []
    for filename in SPLITS[split]:
        path = locate(name, filename, data_dir)
        if path is None:
            where = ", ".join(str(d) for d in search_dirs(name, data_dir))
            raise DataError(f"{name}: {filename} not found (looked in {where}); {how_to_get(name)}")
        out.append(read_verified(name, filename, path))
    return out[0], out[1]


def _check_data_dir(data_dir) -> None:
    """A data_dir the user gave must exist: a typo would otherwise fall through to the default places silently."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"{data_dir} is not a directory; give the folder that holds mnist/, fashion-mnist/, "
                        "kmnist/ (or leave it out to search the default places)")


def how_to_get(name: str) -> str:
    return (f"get the official files with `esprune data fetch {name}` (or download them from "
            f"{manifest()[folder(name)]['url']}) into $ESPRUNE_DATA/{folder(name)}/")


def default_dir() -> Path:
    """Where ``esprune data fetch`` puts files without --dir: $ESPRUNE_DATA, else ~/.cache/esprune."""
    return Path(os.environ.get("ESPRUNE_DATA") or Path.home() / ".cache" / "esprune")


def check(data_dir=None) -> dict:
    """For every dataset file: where it was found, its ``status`` ("ok", "missing" or "bad") and, when bad,
    the ``reason`` (``esprune data check``). A ``data_dir`` that is not a directory raises DataError."""
    _check_data_dir(data_dir)
    report = {}
    for name in NAMES:
        for filename in manifest()[folder(name)]["files"]:
            path = locate(name, filename, data_dir)
            entry = {"path": str(path) if path else None, "status": "missing"}
            if path is not None:
                try:
                    read_verified(name, filename, path)
                    entry["status"] = "ok"
                except DataError as err:
                    entry.update(status="bad", reason=str(err))
            report[f"{name}/{filename}"] = entry
    return report


def fetch(name: str, dest, base_url: str | None = None, progress=None) -> list[Path]:
    """Download the missing files of ``name`` into ``dest/<folder>/``, keeping each only once it verifies."""
    entry = manifest()[folder(name)]
    base = base_url or entry["url"]
    target = Path(dest) / folder(name)
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for filename in entry["files"]:
        final = target / filename
        if final.exists():
            try:
                read_verified(name, filename, final)
                continue
            except DataError:
                pass  # a corrupt copy is replaced below, once the download verifies
        url = base.rstrip("/") + "/" + filename
        with tempfile.NamedTemporaryFile(dir=target, suffix=".part", delete=False) as tmp:
            part = Path(tmp.name)
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    shutil.copyfileobj(response, tmp)
            except OSError as err:
                part.unlink(missing_ok=True)
                raise DataError(f"could not download {url}: {err}") from None
        try:
            read_verified(name, filename, part)
        except DataError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, final)
        kept.append(final)
        if progress:
            progress(filename)
    return kept


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("not an IDX uint8 file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    payload = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"IDX header says {dims} but {payload.size} bytes follow")
    return payload.reshape(dims)


def _read_npz(path: Path) -> np.ndarray:
    with np.load(path) as z:
        return np.asarray(z["arr_0"], dtype=np.uint8)
