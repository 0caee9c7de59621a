"""The model folder: one weights file per lead set plus ``manifest.json``, replaced as a whole or not at all.

Layout::

    MODEL/
      manifest.json                 format, classes, task, versions, seed, settings, signal config,
                                    ``content_sha256`` (the hash of everything else in it, checked at load),
                                    ``complete``, and per lead set: leads, weights file + sha256,
                                    architecture + kwargs, tabular scaler, thresholds, validation metrics
      model_I-II-...-V6.<hash>.pt   state_dict of the 12-lead network (name ends in its content's hash)
      model_I-II.<hash>.pt          ... one per lead set
      gbm_<leads>.<hash>.npz        ``features_member: gbm`` only: the lead set's trees as plain arrays
                                    (ecgtrain.gbm), named in its entry's ``features_member``
      .lock                         held (``flock``) by the training writing this folder

Why retraining never leaves a folder that does not load, or loads wrong: a run holds the lock
(a second run into the folder fails at once), writes its weights and manifest into a staging
folder ``MODEL/.partial-<pid>``, re-reads every weights file against its hash there, moves the
weights in under names that no manifest of the old model uses, and only then replaces
``manifest.json`` in one rename: the commit. Until that rename the old manifest and its weights are
untouched and keep loading; after it, the old weights are removed. A run that fails removes its
staging folder; one killed leaves it (and maybe unreferenced weights), which the next run, holding
the lock, removes. Working inside MODEL rather than beside it keeps every rename on one file
system, also where MODEL is a mount point (the Challenge's Docker layout).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ecgio.errors import RecordError
from ecgio.files import LockHeld, atomic_write, contained_file, exclusive_lock
from ecgserve.errors import ModelFolderError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "ecg-leads-model"
#: 2: a lead set's weights file holds an ensemble (``members`` networks, ecgserve.ensemble); 1 held one network.
FORMAT_VERSION = 2
LOCK = ".lock"
#: Manifest key holding the SHA-256 of the rest of the manifest (thresholds, classes, leads...), checked at load:
#: the weights files are hashed in their entries, this covers what the manifest itself says.
CONTENT_HASH = "content_sha256"
STAGING_PREFIX = ".partial-"
#: No network of this package comes near this; a manifest naming a bigger file (a device, a disk image) is wrong.
MAX_WEIGHTS_BYTES = 1 << 30

__all__ = [
    "MANIFEST",
    "ModelFolderError",
    "commit",
    "content_hash",
    "incomplete_reason",
    "load_member",
    "load_weights",
    "locked",
    "read_manifest",
    "save_member",
    "save_weights",
    "staging_folder",
    "write_manifest",
]


def weights_name(leads: tuple[str, ...], sha256: str) -> str:
    """File name of a lead set's weights, e.g. ``model_I-II.3268d2cd7274.pt`` (content-addressed, so a new
    run's file never replaces one the old manifest names)."""
    return "model_" + "-".join(leads) + f".{sha256[:12]}.pt"


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[Path]:
    """Create ``folder`` if needed and hold its lock for the ``with`` block; a clear error when another
    process holds it or the folder cannot be written.

    When the block fails and this call created the folder, the folder is removed if it holds nothing but
    the lock (a run that wrote no model leaves no empty folder), while the lock is still held. A run that
    did not create the folder, or did not get its lock, never removes it: two runs into one new folder
    both see it absent, and the one that loses the lock must not delete the winner's folder."""
    folder = Path(folder)
    with contextlib.ExitStack() as stack:
        try:
            created = _make_folder(folder)
            stack.enter_context(exclusive_lock(folder / LOCK))
        except LockHeld as held:
            raise ModelFolderError(
                f"{folder}: another training (process {held.holder}) is writing this model folder; wait for it to"
                " finish or train into another folder"
            ) from None
        except OSError as error:
            raise ModelFolderError(f"{folder}: cannot create or write the model folder ({error.strerror})") from None
        try:
            yield folder
        except BaseException:
            if created:
                _remove_if_only_lock(folder)
            raise


def _make_folder(folder: Path) -> bool:
    """Create ``folder`` (and its parents); True when this call created it, False when it existed."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return False
    return True


def _remove_if_only_lock(folder: Path) -> None:
    try:
        if [path.name for path in folder.iterdir()] in ([], [LOCK]):
            shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass


def staging_folder(folder: Path) -> Path:
    """A fresh staging folder inside ``folder`` (call with the lock held); stale ones of killed runs are
    removed first, with the weights files no manifest names."""
    for stale in folder.glob(STAGING_PREFIX + "*"):
        log.info("removing %s, left by an interrupted training run", stale)
        shutil.rmtree(stale, ignore_errors=True)
    _remove_unreferenced_weights(folder)
    staging = folder / f"{STAGING_PREFIX}{os.getpid()}"
    try:
        staging.mkdir()
    except OSError as error:
        raise ModelFolderError(f"{folder}: cannot write in the model folder ({error.strerror})") from None
    return staging


def _entry_files(entry: dict[str, Any]) -> list[str]:
    """The files a lead set's entry names: its weights, and its features member's trees if it has one."""
    member = entry.get("features_member")
    return [str(entry.get("file"))] + ([str(member.get("file"))] if isinstance(member, dict) else [])


def _referenced(folder: Path) -> set[str]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        return {name for entry in manifest.get("models", {}).values() for name in _entry_files(entry)}
    except (OSError, ValueError, AttributeError):
        return set()


def _remove_unreferenced_weights(folder: Path) -> None:
    """Weights and tree files the current manifest does not name: an earlier model's, or a killed commit's."""
    keep = _referenced(folder)
    for path in [*folder.glob("model_*.pt"), *folder.glob("gbm_*.npz")]:
        if path.name not in keep:
            path.unlink(missing_ok=True)


def save_weights(folder: Path, leads: tuple[str, ...], state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
    """Atomically save a network's weights; returns the manifest fields ``file`` and ``sha256``."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = weights_name(leads, digest)
    atomic_write(folder / name, data)
    return {"file": name, "sha256": digest}


def save_member(folder: Path, leads: tuple[str, ...], data: bytes) -> dict[str, str]:
    """Atomically save a lead set's features-member file (``gbm_<leads>.<hash>.npz``); returns ``file`` and
    ``sha256`` for its manifest entry."""
    digest = hashlib.sha256(data).hexdigest()
    name = "gbm_" + "-".join(leads) + f".{digest[:12]}.npz"
    atomic_write(folder / name, data)
    return {"file": name, "sha256": digest}


def content_hash(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's content (every key but :data:`CONTENT_HASH`, in a canonical JSON form)."""
    body = {key: value for key, value in manifest.items() if key != CONTENT_HASH}
    canonical = json.dumps(body, sort_keys=True, allow_nan=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Atomically (re)write the manifest, sealed with the hash of its own content."""
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    body.pop(CONTENT_HASH, None)
    text = json.dumps({**body, CONTENT_HASH: content_hash(body)}, indent=2, allow_nan=True)
    atomic_write(folder / MANIFEST, text.encode())


def commit(staging: Path, folder: Path) -> dict[str, Any]:
    """Verify the staged model (every weights file re-read against its hash), move it into ``folder`` and
    make it the folder's model in one rename of the manifest; returns the manifest."""
    manifest = read_manifest(staging)
    if incomplete_reason(manifest):
        raise ModelFolderError(f"{staging}: {incomplete_reason(manifest)}; not committed")
    for entry in manifest["models"].values():
        load_weights(staging, entry)
        if isinstance(entry.get("features_member"), dict):
            load_member(staging, entry["features_member"])
    for entry in manifest["models"].values():
        for name in _entry_files(entry):
            os.replace(staging / name, folder / name)
    _fsync_folder(folder)
    os.replace(staging / MANIFEST, folder / MANIFEST)  # the commit
    _fsync_folder(folder)
    shutil.rmtree(staging, ignore_errors=True)
    _remove_unreferenced_weights(folder)
    return manifest


def _fsync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable before the next step depends on them."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems cannot sync a folder; the renames are still atomic
    finally:
        os.close(handle)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a trained model folder, validated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: model folder does not exist")
    path = folder / MANIFEST
    if not path.exists():
        raise ModelFolderError(
            f"{folder}: no {MANIFEST}; this is not a trained model folder, or its first training did not finish"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise ModelFolderError(f"{path}: manifest is not a JSON object")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: incompatible model format {manifest.get('format')!r} v{manifest.get('format_version')!r}"
            f" (expected {FORMAT!r} v{FORMAT_VERSION}); it was written by another version of this package:"
            " retrain it with this one"
        )
    if manifest.get(CONTENT_HASH) != content_hash(manifest):
        reason = "has no content hash" if CONTENT_HASH not in manifest else "does not match its content hash"
        raise ModelFolderError(
            f"{path}: manifest {reason} (edited after training, or not written by this version of the package):"
            " its thresholds, classes or leads cannot be trusted; retrain the model"
        )
    models = manifest.get("models")
    if not models or not isinstance(models, dict) or not all(isinstance(e, dict) for e in models.values()):
        raise ModelFolderError(f"{path}: manifest lists no trained lead sets")
    return manifest


def incomplete_reason(manifest: dict[str, Any]) -> str | None:
    """Why the manifest's run did not finish (None when it did). Folders of this version say so in
    ``complete``; older ones were rewritten after each lead set, so a missing planned lead set tells."""
    if "complete" in manifest:
        return None if manifest["complete"] is True else "training did not finish (manifest says incomplete)"
    planned = ["-".join(leads) for leads in manifest.get("settings", {}).get("lead_sets", [])]
    missing = [key for key in planned if key not in manifest["models"]]
    if missing:
        return f"training was interrupted before lead set(s) {', '.join(missing)}"
    return None


def _verified_bytes(folder: Path, entry: dict[str, Any], what: str) -> tuple[str, bytes]:
    """(name, content) of the file an entry names: a regular file inside the folder, of bounded size,
    matching its SHA-256."""
    name, digest = entry.get("file"), entry.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str):
        raise ModelFolderError(f"{folder / MANIFEST}: a lead set's entry lacks its {what} 'file' or 'sha256'")
    try:
        path = contained_file(folder, name, max_bytes=MAX_WEIGHTS_BYTES)
        data = path.read_bytes()
    except RecordError as error:
        raise ModelFolderError(f"{folder / MANIFEST}: {what} file {name!r} unusable: {error}") from None
    except OSError as error:
        raise ModelFolderError(f"{folder / name}: {what} file unreadable ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ModelFolderError(
            f"{folder / name}: {what} file does not match the manifest's sha256 (changed or from another run)"
        )
    return name, data


def load_member(folder: str | Path, member: dict[str, Any]) -> bytes:
    """The verified content of a lead set's features-member file (its entry's ``features_member``)."""
    return _verified_bytes(Path(folder), member, "features member")[1]


def load_weights(folder: str | Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load a lead set's weights: a regular file inside the folder, of bounded size, matching its SHA-256."""
    folder = Path(folder)
    name, data = _verified_bytes(folder, entry, "weights")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the same thing here
        raise ModelFolderError(f"{folder / name}: weights file cannot be read by torch ({error})") from None
