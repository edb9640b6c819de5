"""Optional dependencies: import one, or raise an ImportError naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, *, purpose: str = "this model") -> ModuleType:
    """Import ``module`` or raise ImportError naming the ``movierec[extra]`` to install.

    ``purpose`` says what needs it ("this model", "the HTML report") in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module} is needed for {purpose} but is not installed: pip install 'movierec[{extra}]'"
        ) from err
