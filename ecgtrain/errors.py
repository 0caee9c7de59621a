"""The errors a user can cause and fix, kept light so scripts can catch them without importing torch.

``train_model.py`` turns each into one ``error:`` line and a non-zero status; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from ecgserve.errors import ModelFolderError, SettingsError


class TrainingDataError(ValueError):
    """Training data a model cannot be learned from (no labels, one class); the message says why."""


class DistributedError(RuntimeError):
    """One rank of a torchrun training could not go on: another rank failed or stopped answering (its own
    messages say why), or torchrun's variables make no sense; the message names this rank and the step."""


#: What ``train_model.py`` reports as a user error rather than a crash.
USER_ERRORS = (ModelFolderError, TrainingDataError, SettingsError, DistributedError)
