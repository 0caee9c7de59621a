"""The model folder: one weights file per lead set plus ``manifest.json``, every file written atomically.

Layout::

    MODEL/
      manifest.json                 format, classes, versions, seed, settings, signal config, and per lead set:
                                    leads, weights file + sha256, architecture + kwargs, tabular scaler,
                                    thresholds, validation metrics
      model_I-II-III-...-V6.pt      state_dict of the 12-lead network
      model_I-II.pt                 ... one per lead set

Why it never loads wrong: training first removes the manifest, so a folder mid-training has none
and is rejected with a clear message; each weights file and each manifest version is written to a
temporary name and renamed into place (atomic on POSIX); the manifest is rewritten after every
finished lead set and records each weights file's SHA-256, so a weights file that a later,
interrupted run replaced is detected at load time instead of silently mixing runs.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from ecgio.files import atomic_write

MANIFEST = "manifest.json"
FORMAT = "ecg-leads-model"
FORMAT_VERSION = 1


class ModelFolderError(RuntimeError):
    """A model folder that cannot be used; the message names the folder and the problem."""


def weights_name(leads: tuple[str, ...]) -> str:
    """File name of a lead set's weights, e.g. ``model_I-II.pt``."""
    return "model_" + "-".join(leads) + ".pt"


def begin(folder: str | Path) -> Path:
    """Prepare a folder for a new training run: create it and withdraw any previous manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    return folder


def save_weights(folder: Path, leads: tuple[str, ...], state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
    """Atomically save a network's weights; returns the manifest fields ``file`` and ``sha256``."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    data = buffer.getvalue()
    name = weights_name(leads)
    atomic_write(folder / name, data)
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Atomically (re)write the manifest."""
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}, indent=2, allow_nan=True)
    atomic_write(folder / MANIFEST, text.encode())


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished (or partly finished) training run, validated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: model folder does not exist")
    path = folder / MANIFEST
    if not path.exists():
        raise ModelFolderError(
            f"{folder}: no {MANIFEST}; this is not a trained model folder, or training did not finish a lead set"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"{path}: unreadable manifest ({error})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: incompatible model format {manifest.get('format')!r} v{manifest.get('format_version')!r}"
            f" (expected {FORMAT!r} v{FORMAT_VERSION})"
        )
    if not manifest.get("models"):
        raise ModelFolderError(f"{path}: manifest lists no trained lead sets")
    return manifest


def load_weights(folder: str | Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load a lead set's weights after checking the file against the manifest's SHA-256."""
    path = Path(folder) / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFolderError(f"{path}: weights file missing or unreadable ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ModelFolderError(f"{path}: weights file does not match the manifest (changed or from another run)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
