"""Writing files so that a reader never sees half of one.

Every file this package writes that someone else may read while it is being written (model
folder, feature cache, Challenge records, output CSVs, the dataset index) goes through
:func:`atomic_write`: the bytes go to a uniquely named temporary file in the same folder, are
flushed to disk, and the temporary file is renamed over the target (atomic on POSIX). A crash or a
full disk leaves either the old file or the new one, never a truncated mix, and two writers never
share a temporary name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

#: Mode of files we create: readable by others (mkstemp's default 0600 would hide shared records).
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_open(path: str | Path, sync: bool = True) -> Iterator[IO[bytes]]:
    """A binary stream whose content replaces ``path`` only when the ``with`` block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            if sync:
                os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_open(path, sync=sync) as stream:
        stream.write(payload)


def atomic_write_with(path: str | Path, write: Callable[[IO[bytes]], object], sync: bool = True) -> None:
    """Replace ``path`` with whatever ``write(stream)`` writes to a binary stream."""
    with atomic_open(path, sync=sync) as stream:
        write(stream)


def contained_file(folder: str | Path, name: str, max_bytes: int | None = None) -> Path:
    """The regular file ``name`` inside ``folder``, or a :class:`~ecgio.errors.RecordError` naming it.

    File names come from headers and manifests, which anyone can edit: ``../../etc/passwd``,
    ``/etc/passwd``, a link out of the folder, ``/dev/zero`` or a FIFO must never be opened (a
    device or a FIFO makes a reader hang or exhaust memory). ``max_bytes`` bounds the size.
    """
    from ecgio.errors import RecordError

    folder = Path(folder)
    candidate = Path(name)
    if not name or candidate.is_absolute() or ".." in candidate.parts:
        raise RecordError(folder / name, "file name must be a plain name inside the record's folder")
    path = folder / candidate
    try:
        resolved = path.resolve(strict=True)
        info = resolved.stat()
    except FileNotFoundError:
        raise RecordError(path, "file is missing") from None
    except OSError as error:
        raise RecordError(path, f"cannot read file ({error.strerror or error})") from None
    if not resolved.is_relative_to(folder.resolve()):
        raise RecordError(path, "file links outside the record's folder")
    if not stat.S_ISREG(info.st_mode):
        raise RecordError(path, "not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise RecordError(path, f"file has {info.st_size} bytes, more than the {max_bytes} allowed")
    return path


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` is its process id as it wrote it (or a phrase)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by process {holder}")
        self.path, self.holder = path, holder


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created) for the ``with`` block, or fail at once.

    Two runs writing one model or outputs folder must not wait for each other silently, nor mix
    their files: the second gets :class:`LockHeld` naming the first's process id, which the holder
    writes into the file. Closing the descriptor releases the lock, also when the process is killed.
    Creating or opening the file may raise ``OSError``.
    """
    path = Path(path)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(path, holder) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(handle)


__all__ = [
    "FILE_MODE",
    "LockHeld",
    "atomic_open",
    "atomic_write",
    "atomic_write_with",
    "contained_file",
    "exclusive_lock",
]
