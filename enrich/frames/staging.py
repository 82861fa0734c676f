"""Files that appear whole or not at all: atomic replace, staged outputs, stale temps.

``atomic_path`` publishes one file (temp beside it, fsync, ``os.replace``).
``staged_outputs`` publishes several together: each is written to a staging
file beside its target, and all are renamed only once every one is whole, inside
the caller's ``commit`` context (where a run stops being interruptible).
Temp names carry the writer's PID, so ``remove_stale_temps`` can clear what a
killed run left without touching a live run's files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Final

from enrich.errors import OutputError
from enrich.frames._common import is_stdio, reason

__all__ = ["atomic_path", "remove_stale_temps", "staged_outputs", "staging_path"]


@contextmanager
def atomic_path(path: Path, *, shown_as: Path | None = None) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path``; publish it there on a clean exit.

    On a clean exit the temp file is fsynced and moved over ``path`` with
    ``os.replace`` (then the folder is fsynced, best effort). On any error the
    temp file is removed and an older ``path`` is left untouched. The temp
    file gets the usual permissions (0666 less the umask).

    Raises:
        OutputError: an ``OSError`` while creating, writing or publishing
            (one line: ``cannot write out.csv: Permission denied``). Other
            exceptions from the body propagate unchanged. Messages name
            ``shown_as`` (default ``path``).
    """
    folder = path.parent
    shown = shown_as or path
    tmp = _create_temp(path, shown)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise OutputError(f"cannot write {shown}: {reason(exc)}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _create_temp(path: Path, shown: Path) -> Path:
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"cannot write {shown}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {shown}: {folder} is not a folder")
    while True:
        tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as exc:
            raise OutputError(f"cannot write {shown}: {reason(exc)}") from None
        os.close(fd)
        return tmp


#: What standard output (``-``) is staged as, in the current folder.
_STDOUT_STAGE: Final = Path("enrich-stdout")


def _staged_as(target: Path) -> Path:
    return _STDOUT_STAGE if is_stdio(target) else target


def staging_path(target: Path) -> Path:
    """Where ``target`` is staged by this process: ``.out.csv.<pid>.tmp`` beside it.

    Standard output (``-``) is staged as ``.enrich-stdout.<pid>.tmp`` in the current folder.
    """
    target = _staged_as(target)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


@contextmanager
def staged_outputs(
    targets: Sequence[Path],
    *,
    commit: AbstractContextManager[None] | None = None,
    stdout: BinaryIO | None = None,
) -> Iterator[list[Path]]:
    """Yield a staging path per target; rename them all into place on a clean exit.

    Staged files that a killed run left beside the targets are removed first.
    The body writes each staging file (through ``atomic_path`` or ``write_table``,
    so each is whole once written). On a clean exit the staging files are renamed
    over their targets, in order, all inside ``commit`` (default: nothing), so no
    signal splits the renames. On any error no rename is attempted; staging files
    still present at the end, renamed or not, are removed. A target ``-`` is
    standard output (``stdout``, default ``sys.stdout``'s bytes): its staged file
    is copied there at the commit, in its turn, instead of renamed.

    Raises:
        OutputError: a rename failed (``cannot write out.csv: Permission denied``).
    """
    for target in targets:
        remove_stale_temps(target)
    staged = [staging_path(target) for target in targets]
    try:
        yield staged
        with commit or contextlib.nullcontext():
            for tmp, target in zip(staged, targets, strict=True):
                if is_stdio(target):
                    _copy_to_stdout(tmp, stdout)
                    continue
                try:
                    os.replace(tmp, target)
                except OSError as exc:
                    raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        for tmp in staged:
            _unlink_quietly(tmp)


def _copy_to_stdout(staged: Path, stdout: BinaryIO | None) -> None:
    try:
        stream = stdout if stdout is not None else sys.stdout.buffer
        with staged.open("rb") as handle:
            shutil.copyfileobj(handle, stream)
        stream.flush()
    except (OSError, ValueError, AttributeError) as exc:
        why = reason(exc) if isinstance(exc, OSError) else "it is closed"
        raise OutputError(f"cannot write the output to standard output: {why}") from None


def remove_stale_temps(target: Path) -> None:
    """Remove the temp files beside ``target`` that a killed run left (its process gone).

    Temp names carry the writer's PID (``.out.csv.<pid>-<hex>.tmp``, and a staged
    ``.out.csv.<pid>.tmp`` with its own temp ``..out.csv.<pid>.tmp.<pid>-<hex>.tmp``);
    a file whose process still runs is left alone.
    """
    target = _staged_as(target)
    pattern = re.compile(rf"\.\.?{re.escape(target.name)}\.(\d+)(?:[.-].*)?\.tmp")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and not _running(int(m.group(1))):
            _unlink_quietly(target.parent / name)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
