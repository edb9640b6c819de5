"""WeightedEnsemble: any models combined by standardized, error-weighted scores (docs/architecture.md, section 4).

One job per module: ``_weighted`` (the class), ``_blend`` (the arithmetic on score blocks),
``_holdout`` (the hold-out and forward selection), ``_stacking`` (stacked weights), ``_members``
(member events and closing) and ``_files`` (saving and loading).
"""

from __future__ import annotations

from movierec.ensemble._members import FitEvent
from movierec.ensemble._weighted import WeightedEnsemble

__all__ = ["FitEvent", "WeightedEnsemble"]
