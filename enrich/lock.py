"""One run at a time per output path: an advisory ``flock`` on ``.<output>.lock``.

The kernel drops the lock when the holder dies (kill -9 included), so a lock
file left by a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from enrich.errors import LockedError, OutputError

__all__ = ["lock_path_for", "output_lock"]


def lock_path_for(output: Path) -> Path:
    """The lock file beside ``output``."""
    return output.with_name(f".{output.name}.lock")


def _open_locked(path: Path, output: Path) -> int:
    """Open and flock the lock file; retry if a finishing run unlinked it meanwhile."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write beside {output}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise LockedError(
                f"another enrich run (PID {holder}) is writing {output}; "
                "wait for it to finish or stop it"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold the lock for ``output``; LockedError naming the holder's PID if taken."""
    path = lock_path_for(output)
    fd = _open_locked(path, output)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # unlink while still holding the lock: a waiter re-checks the inode
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
