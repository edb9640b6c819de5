"""``python -m movierec``: the same command as ``movierec``."""

from __future__ import annotations

import sys

from movierec.cli import main

if __name__ == "__main__":
    sys.exit(main())
