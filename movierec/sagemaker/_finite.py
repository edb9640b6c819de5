"""The one check that numbers coming back from SageMaker (endpoint scores, artifact weights) are finite.

NaN from a fitted model is a failure, never a silent "cannot score": left alone it would reach
``rmse`` and look like ids unseen in fit (docs/architecture.md).
"""

from __future__ import annotations

import numpy as np

from movierec.exceptions import BackendError

__all__ = ["check_finite"]


def check_finite(values: np.ndarray, source: str, what: str, *, first_row: int = 0) -> None:
    """Raise `BackendError` if ``values`` hold NaN or infinity, naming ``source`` and ``what``.

    Parameters
    ----------
    values : ndarray
        Scores or weights, of any shape.
    source : str
        Where they came from, e.g. ``"endpoint movierec-fm-..."``.
    what : str
        What one value is, e.g. ``"score"`` or ``"factor"``.
    first_row : int, default 0
        Added to the reported position (the offset of this batch of rows).
    """
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    bad = ~np.isfinite(values)
    if bad.any():
        index = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
        position = ", ".join(str(i) for i in (index[0] + first_row, *index[1:]))
        raise BackendError(
            f"{source} gave {int(bad.sum())} NaN or infinite {what}(s) of {values.size} "
            f"(the first at [{position}] is {values[index]})"
        )
