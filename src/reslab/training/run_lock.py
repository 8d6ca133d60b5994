"""The advisory lock a training run holds on its run directory, so that no second run writes into it.

A run takes ``RUN_DIR/.reslab-lock`` (``fcntl.flock``, exclusive, non-blocking) before it writes anything
there and holds it until training ends: a new run into the directory (``--overwrite`` included) and a
``--resume`` of it are refused while it is held, in one line naming the process (the file holds its PID and
host). The operating system drops the lock when its process dies, so a killed run's lock is stale and the
next run simply takes it over (the file it left is rewritten). A finished run removes the file.

The file is removed while still locked, and a process that locked a file which has since been removed (or
replaced) tries again, so two runs can never both hold a lock. Under torchrun only rank 0 (the writer)
takes it. Where the file system has no ``flock`` (some network mounts) the run goes on unlocked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from pathlib import Path

from ..errors import ConfigError

logger = logging.getLogger(__name__)

#: the lock file in a run directory (not one of the run's own files: ``--overwrite`` never moves it)
LOCK = ".reslab-lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs go on unlocked
    fcntl = None  # type: ignore[assignment]


def _describe(record: dict | None) -> str:
    if not record:
        return "another process"
    return f"PID {record.get('pid', '?')} on {record.get('host', '?')}"


def _read(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "null")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def lock_holder(run_dir: str | Path) -> str | None:
    """Who holds ``run_dir``'s lock (``"PID N on HOST"``), or None when no live process does."""
    path = Path(run_dir) / LOCK
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(_read(fd))
        except OSError:  # no flock here (a network mount): nothing to say
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def in_use_error(run_dir: str | Path, holder: str, hint: str) -> ConfigError:
    """The one-line refusal for a run directory a live run holds."""
    return ConfigError(f"run directory {run_dir} in use by {holder}; {hint}")


def check_not_in_use(run_dir: str | Path, hint: str) -> None:
    """Refuse ``run_dir`` while a live run holds its lock.

    Raises:
        ConfigError: "run directory DIR in use by PID N on HOST; ``hint``".
    """
    holder = lock_holder(run_dir)
    if holder is not None:
        raise in_use_error(run_dir, holder, hint)


class RunLock:
    """The held lock of one run directory (:meth:`acquire`; :meth:`release` when training ends)."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, run_dir: str | Path, hint: str) -> RunLock:
        """Lock ``run_dir`` for this process (recovering the stale lock of a process that died).

        Raises:
            ConfigError: a live process holds it (see :func:`check_not_in_use`).
        """
        path = Path(run_dir) / LOCK
        if fcntl is None:
            return cls(path, None)
        for _ in range(100):  # another process removed or replaced the file meanwhile: lock the new one
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read(fd))
                os.close(fd)
                raise in_use_error(run_dir, holder, hint) from None
            except OSError as e:
                os.close(fd)
                logger.debug("no advisory lock on %s (%s): the run goes on unlocked", path, e)
                return cls(path, None)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            stale = _read(fd)
            if stale and stale.get("pid") != os.getpid():
                logger.debug("took over the stale lock of %s (no longer running)", _describe(stale))
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n").encode())
            return cls(path, fd)
        raise ConfigError(f"could not lock {path}: it keeps being replaced; is another program writing there?")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(fd)
