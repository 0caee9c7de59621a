"""Networks, built by name through the registry (``models.build("dual_crnn", ...)``)."""

from models import dual_branch as _dual_branch  # noqa: F401  (registers its architecture)
from models.registry import available, build, register

__all__ = ["available", "build", "register"]
