"""A user's own top-rated movies, shown beside their recommendations in the report."""

from __future__ import annotations

from typing import Any

import pandas as pd

from movierec._core.validation import ITEM, RATING, USER

__all__ = ["user_history"]


def user_history(train: pd.DataFrame, user: Any, n: int = 5) -> pd.DataFrame:
    """Return the ``n`` movies ``user`` rated highest in ``train`` (latest first among equal ratings)."""
    rows = train[train[USER] == user]
    keys = [RATING, "timestamp"] if "timestamp" in rows.columns else [RATING]
    rows = rows.sort_values(keys + [ITEM], ascending=[False] * len(keys) + [True], kind="stable")
    return rows.head(n)
