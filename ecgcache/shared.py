"""What processes sharing one cache folder need: a lock, small JSON files updated under it, a write probe.

Several trainings may use one cache at once (two lead sets, two experiments, a cross-validation
beside a training). Every small file they share is replaced whole through
:func:`ecgio.files.atomic_write`, so a reader sees the old or the new content, never half; an
update that reads, changes and writes a file back holds :func:`locked` on a lock file beside it,
so two writers never lose each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecgio.files import atomic_write

log = logging.getLogger(__name__)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``path`` (created if absent) for the ``with`` block."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, content: Any) -> None:
    """Replace ``path`` with ``content`` as compact JSON (atomic: a reader never sees half a file)."""
    atomic_write(path, json.dumps(content, separators=(",", ":")), sync=False)


def read_json(path: Path, default: Any) -> Any:
    """The JSON content of ``path``; ``default`` when it is absent, or unreadable (with a warning naming it)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable cache file %s (%s)", path, error)
        return default


def usable_cache_dir(path: str) -> str | None:
    """The cache folder if it can be created and written, else None (a temporary cache, with a warning).

    The probe is a uniquely named temporary file, so processes starting at once never delete
    each other's probe (a fixed name made concurrent trainings give up on a good cache).
    """
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(handle)
        os.unlink(probe)
        return path
    except OSError as error:
        log.warning("feature cache %s is not writable (%s); using a temporary cache for this run", path, error)
        return None


__all__ = ["locked", "read_json", "usable_cache_dir", "write_json"]
