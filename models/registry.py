"""A name -> network-class registry, so architectures plug in by name from settings and manifests.

A saved model folder records the architecture name and its keyword arguments; loading rebuilds the
network through :func:`build` and only then loads the weights, so a new architecture needs nothing
but ``@register("name")`` on its class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

_REGISTRY: dict[str, type[nn.Module]] = {}
M = TypeVar("M", bound=type[nn.Module])


def register(name: str) -> Callable[[M], M]:
    """Class decorator adding a network under ``name``; a second class under the same name is an error."""

    def add(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"architecture {name!r} is already registered to {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        return cls

    return add


def available() -> tuple[str, ...]:
    """Registered architecture names, sorted."""
    return tuple(sorted(_REGISTRY))


def architecture(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (to inspect its constructor); unknown names list what exists."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown architecture {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def build(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered architecture; unknown names list what exists."""
    return architecture(name)(**kwargs)
