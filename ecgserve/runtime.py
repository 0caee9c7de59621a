"""Where a saved model runs: the device and the threads, read from the same places training reads them.

Serving needs only these two of the settings, so it reads only these two: the JSON file named by
``ECG_SETTINGS`` (its ``device`` and ``threads`` keys; the training keys are training's to check), then
``ECG_DEVICE`` and ``ECG_THREADS``. :meth:`ecgtrain.settings.Settings.from_env` applies the same
overrides through :func:`env_overrides`, so training and serving never disagree about them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgserve.device import check_device
from ecgserve.errors import SettingsError

SETTINGS_ENV = "ECG_SETTINGS"


@dataclass(frozen=True)
class Runtime:
    """The device (``auto``, ``cpu``, ``cuda``, ``cuda:N``) and the torch threads (0: automatic)."""

    device: str = "auto"
    threads: int = 0


def settings_file() -> tuple[str | None, dict[str, Any]]:
    """(path, the JSON object) of ``ECG_SETTINGS``, or (None, {}) when it is not set."""
    path = os.environ.get(SETTINGS_ENV)
    if not path:
        return None, {}
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SettingsError(f"{path}: cannot read settings ({error})") from None
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: settings must be a JSON object")
    return path, values


def env_overrides(device: Any, threads: int, path: str | None) -> Runtime:
    """``device`` and ``threads`` (from defaults or the settings file at ``path``) with ``ECG_DEVICE`` and
    ``ECG_THREADS`` applied, the device checked against this machine."""
    device = os.environ.get("ECG_DEVICE") or device
    text = os.environ.get("ECG_THREADS", "").strip()
    if text:
        if not text.isdigit():
            raise SettingsError(f"ECG_THREADS={text!r}: expected a whole number of threads (0: automatic)")
        threads = int(text)
    try:
        check_device(device)
    except ValueError as error:
        origin = "ECG_DEVICE" if os.environ.get("ECG_DEVICE") else f"{path or 'settings'}: setting 'device'"
        raise SettingsError(f"{origin}: {error}") from None
    return Runtime(device=device, threads=threads)


def runtime_from_env() -> Runtime:
    """The device and threads a model is served with (module docstring)."""
    path, values = settings_file()
    threads = values.get("threads", 0)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise SettingsError(f"{path}: setting 'threads' is {threads!r}; expected a whole number >= 0")
    return env_overrides(values.get("device", "auto"), threads, path)
