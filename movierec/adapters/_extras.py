"""Clear ImportErrors for adapters whose optional dependencies are missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the ``movierec[extra]`` to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module} is needed for this model but is not installed: pip install 'movierec[{extra}]'"
        ) from err
