"""The errors serving a saved model can meet, kept light so scripts can catch them without importing torch."""

from __future__ import annotations


class ModelFolderError(RuntimeError):
    """A model folder that cannot be used or written; the message names the folder and the problem."""


class SettingsError(ValueError):
    """A settings file or value that cannot be used; the message names the source and the key."""
