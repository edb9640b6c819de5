"""Top-N in Spark, for catalogues too large to score on the driver.

Spark's ``recommendForUserSubset`` knows nothing of what a user has already rated, so it is asked
for ``n`` plus the largest seen count among the requested users, and the seen movies are removed
with an anti-join before ranking. One ``k`` for everybody costs Spark extra candidates for light
raters, but grouping users by seen count (one ``recommendForUserSubset`` per group) was several
times slower on ml-100k: each group adds its own join, cross-join and aggregation stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from movierec.models.spark_als._arrow import ITEM_COL, USER_COL, collect_columns, to_spark

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import SparkSession

__all__ = ["spark_top_n"]


def spark_top_n(
    session: SparkSession,
    model: ALSModel,
    user_idx: np.ndarray,
    seen: sparse.csr_matrix,
    n: int,
    *,
    exclude_seen: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (user index, item index, score) of each user's top ``n``, ordered by user then rank.

    Ties break by item index, as the numpy path does; users with fewer than ``n`` unseen items
    get fewer rows.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    user_idx = np.asarray(user_idx, dtype=np.int32)
    wanted = seen[user_idx]
    k = n + (int(np.diff(wanted.indptr).max(initial=0)) if exclude_seen else 0)
    recommended = model.recommendForUserSubset(to_spark(session, {USER_COL: user_idx}), k)
    candidates = recommended.select(USER_COL, F.explode("recommendations").alias("r")).select(
        USER_COL, F.col(f"r.{ITEM_COL}").alias(ITEM_COL), F.col("r.rating").alias("score")
    )
    if exclude_seen:
        pairs = wanted.tocoo()
        seen_pairs = to_spark(session, {USER_COL: user_idx[pairs.row], ITEM_COL: pairs.col.astype(np.int32)})
        candidates = candidates.join(seen_pairs, on=[USER_COL, ITEM_COL], how="left_anti")
    order = Window.partitionBy(USER_COL).orderBy(F.desc("score"), F.asc(ITEM_COL))
    ranked = candidates.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= n)
    columns = collect_columns(ranked)
    users, items = columns[USER_COL].astype(np.int64), columns[ITEM_COL].astype(np.int64)
    by_user_rank = np.lexsort((columns["rank"], users))
    return users[by_user_rank], items[by_user_rank], columns["score"].astype(np.float64)[by_user_rank]
