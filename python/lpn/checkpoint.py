"""Checkpoint files on disk: atomic writes, step-numbered series, finding the newest.

The bytes themselves come from the engine (`src/checkpoint.rs`, a safetensors file); this module
only decides where they go and makes sure a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import string
import tempfile
import threading
import warnings
from typing import TYPE_CHECKING, List, Tuple, Union

if TYPE_CHECKING:  # pragma: no cover
    from .network import Network

PathLike = Union[str, "os.PathLike[str]"]

#: File name used inside a directory given to `checkpoint_every` / `load_latest`.
DEFAULT_NAME = "lpn-{step:012d}.safetensors"


def atomic_write(path: PathLike, data: bytes) -> str:
    """Write `data` to `path` so that `path` holds either its old content or all of `data`.

    The bytes go to a temporary file in the same directory (a rename is only atomic within one
    file system), are flushed and fsynced, and the file is renamed over `path`; the directory
    is fsynced too where the platform allows, so the rename itself survives a power cut.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return path


def _fsync_dir(folder: str) -> None:
    # Not possible on Windows (directories cannot be opened) and optional elsewhere; the file
    # itself is already durable, only the name might be lost on a power cut.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def series_pattern(dir_or_pattern: PathLike) -> str:
    """A `str.format` pattern with one `{step}` field for a series of checkpoints.

    A path containing `{step}` (optionally with a format spec, e.g. `run/net-{step:08d}.lpn`)
    is used as given; anything else is taken as a directory holding `DEFAULT_NAME` files.
    """
    p = os.fspath(dir_or_pattern)
    fields = [f for _, f, _, _ in string.Formatter().parse(p) if f is not None]
    if fields:
        if fields != ["step"]:
            raise ValueError(f"a checkpoint pattern may contain only one {{step}} field, got {p!r}")
        if "{step" in os.path.dirname(p):
            raise ValueError(f"{{step}} must be in the file name, not the directory: {p!r}")
        return p
    return os.path.join(p, DEFAULT_NAME)


def _matcher(pattern: str) -> Tuple[str, "re.Pattern[str]"]:
    folder, name = os.path.split(pattern)
    parts = []
    for literal, field, _, _ in string.Formatter().parse(name):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(r"(\d+)")
    return folder or ".", re.compile("".join(parts))


def list_checkpoints(dir_or_pattern: PathLike) -> List[Tuple[int, str]]:
    """`(step, path)` of every file of the series, oldest first."""
    folder, rx = _matcher(series_pattern(dir_or_pattern))
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = []
    for n in names:
        m = rx.fullmatch(n)
        if m:
            found.append((int(m.group(1)), os.path.join(folder, n)))
    return sorted(found)


def prune(dir_or_pattern: PathLike, keep: int) -> None:
    """Delete all but the newest `keep` files of the series."""
    files = list_checkpoints(dir_or_pattern)
    for _, path in files[: max(0, len(files) - keep)]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def latest_loadable(cls: "type[Network]", dir_or_pattern: PathLike) -> "Network":
    """The newest checkpoint of the series that loads; damaged newer ones are skipped with a
    warning (the file system, not lpn, can leave those behind)."""
    files = list_checkpoints(dir_or_pattern)
    if not files:
        raise FileNotFoundError(f"no checkpoints matching {series_pattern(dir_or_pattern)!r}")
    errors = []
    for _, path in reversed(files):
        try:
            net = cls.load(path)
        except (ValueError, OSError) as exc:
            errors.append(f"{path}: {exc}")
            warnings.warn(f"skipping unreadable checkpoint {path}: {exc}", RuntimeWarning,
                          stacklevel=3)
            continue
        return net
    raise ValueError("no checkpoint of the series could be loaded:\n" + "\n".join(errors))


class Checkpointer:
    """State of `Network.checkpoint_every`: write when the sample counter crosses a multiple
    of `every`, keep the newest `keep` files."""

    def __init__(self, every: int, pattern: str, keep: int, samples_now: int) -> None:
        self.every = every
        self.pattern = pattern
        self.keep = keep
        self.last = samples_now // every
        self.lock = threading.Lock()

    def after_learn(self, net: "Network") -> None:
        """Save if the network's sample counter crossed a new multiple of `every`; prune old files."""
        samples = net._engine.samples
        if samples // self.every <= self.last:
            return
        with self.lock:
            # Another learning thread may have written this multiple while we waited.
            samples = net._engine.samples
            if samples // self.every <= self.last:
                return
            self.last = samples // self.every
            path = self.pattern.format(step=samples)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            net.save(path)
            if self.keep > 0:
                prune(self.pattern, self.keep)
