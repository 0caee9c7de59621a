"""The errors a user can cause and fix, kept light so scripts can catch them without importing torch.

``train_model.py`` turns each into one ``error:`` line and a non-zero status; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class ModelFolderError(RuntimeError):
    """A model folder that cannot be used or written; the message names the folder and the problem."""


class TrainingDataError(ValueError):
    """Training data a model cannot be learned from (no labels, one class); the message says why."""


class SettingsError(ValueError):
    """A settings file or value that cannot be used; the message names the source and the key."""


class DistributedError(RuntimeError):
    """One rank of a torchrun training could not go on: another rank failed or stopped answering (its own
    messages say why), or torchrun's variables make no sense; the message names this rank and the step."""


#: What ``train_model.py`` reports as a user error rather than a crash.
USER_ERRORS = (ModelFolderError, TrainingDataError, SettingsError, DistributedError)
