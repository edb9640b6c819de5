"""Fit BiasedBaseline on the official u1 fold of MovieLens 100K; print its RMSE and a few top-5 lists.

Run with ``make run`` or ``python examples/quickstart.py``; the archive is read from $MOVIEREC_DATA
(default ~/.cache/movierec) and downloaded from GroupLens when absent.
"""

from __future__ import annotations

import warnings

import movierec


def main() -> None:
    data = movierec.load_movielens("ml-100k")
    fold = movierec.official_folds("ml-100k", which=("u1",))[0]
    model = movierec.BiasedBaseline().fit(fold.train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rmse = model.rmse(fold.test)
    print(f"BiasedBaseline on u1: RMSE {rmse:.4f} ({len(fold.train)} train / {len(fold.test)} test ratings)")
    for warning in caught:
        print(f"  note: {warning.message}")
    top = model.top_n(users=[1, 2, 3], n=5).merge(data.items[["movieId", "title"]], on="movieId")
    for user, rows in top.groupby("userId"):
        print(f"\nTop 5 for user {user}:")
        for row in rows.itertuples():
            print(f"  {row.rank}. {row.title}  ({row.score:.2f})")


if __name__ == "__main__":
    main()
