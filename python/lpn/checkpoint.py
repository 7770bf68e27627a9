"""Checkpoint files on disk: atomic writes, step-numbered series, finding the newest.

The bytes themselves come from the engine (`src/checkpoint.rs`, a safetensors file); this module
only decides where they go and makes sure a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import stat
import string
import tempfile
import threading
import warnings
from typing import TYPE_CHECKING, List, Tuple, Union

if TYPE_CHECKING:  # pragma: no cover
    from .network import Network

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class CheckpointWarning(RuntimeWarning):
    """An automatic checkpoint (`Network.checkpoint_every`) could not be written. The sample
    that triggered it stays learned; the save is retried after the next `learn` call."""


def fspath(path: PathLike) -> str:
    """`path` as a str: str, bytes and os.PathLike (of either) are accepted."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"a path must be str, bytes or os.PathLike, got {type(path).__name__}") \
            from None
    return os.fsdecode(p)


def read_file(path: PathLike) -> bytes:
    """The bytes of a regular file, read without blocking on a FIFO or reading a device without
    end: anything that is not a regular file is a `ValueError`."""
    p = fspath(path)
    st = os.stat(p)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p}: not a regular file (an lpn checkpoint is a file written by save)")
    # O_NONBLOCK: if the path was swapped for a FIFO after the stat, open does not wait for a
    # writer (fstat below then refuses it).
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{p}: not a regular file")
        # At most the size seen now (+1 to notice a file that grows while read).
        data = f.read(st.st_size + 1)
    return data

#: File name used inside a directory given to `checkpoint_every` / `load_latest`.
DEFAULT_NAME = "lpn-{step:012d}.safetensors"


def atomic_write(path: PathLike, data: bytes) -> str:
    """Write `data` to `path` so that `path` holds either its old content or all of `data`.

    The bytes go to a temporary file in the same directory (a rename is only atomic within one
    file system), are flushed and fsynced, and the file is renamed over `path`; the directory
    is fsynced too where the platform allows, so the rename itself survives a power cut.
    """
    path = fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    remove_stale_temporaries(folder, base)
    # The writer's pid in the name lets a later save tell a killed writer's file from a live one.
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".tmp", dir=folder)
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell: keep its file
    return True


def remove_stale_temporaries(folder: str, base: str) -> None:
    """Delete temporary files that saves of `base` in `folder` left when their process was
    killed mid-save (a live writer's temporary is never touched)."""
    rx = re.compile(r"\." + re.escape(base) + r"\.(\d+)\.[^/]*\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for n in names:
        m = rx.fullmatch(n)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(folder, n))
            except OSError:
                pass


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
    p = fspath(dir_or_pattern)
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
        except (ValueError, OSError, RuntimeError) as exc:
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
        #: Saves that failed (each was retried after the next learn call).
        self.failures = 0

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
            path = self.pattern.format(step=samples)
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                net.save(path)
            except OSError as exc:
                # The samples are learned whatever happens to the file: raising here would make
                # a caller that retries learn them twice. Warn, and try again after the next
                # learn call (self.last is not advanced).
                self.failures += 1
                warnings.warn(
                    f"automatic checkpoint to {path} failed ({exc}); the samples are learned, "
                    "the save is retried after the next learn call",
                    CheckpointWarning, stacklevel=3)
                return
            self.last = samples // self.every
            if self.keep > 0:
                prune(self.pattern, self.keep)
