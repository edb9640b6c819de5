"""Batch top-N on Spark: every user's recommendations from a fitted model, scored on the executors.

For user bases and catalogues whose users x movies scores outgrow one machine's time. The model is
fitted as usual (on the driver, or SparkALS on the cluster); [`batch_top_n`][movierec.spark.batch.batch_top_n] then sends what it
learned to the executors once (a broadcast), splits the users into partitions and scores each
partition through Arrow (``mapInArrow``) with the model's own vectorized code, so every user's list
is the one [`top_n`][movierec.Recommender.top_n] gives: same movies, scores, ranks and ties.

What is broadcast is a copy of the fitted state a save writes (parameters, ids, seen movies, the
learned arrays), never the live objects a model may hold: SparkALS's ``ALSModel`` and session stay
on the driver (its factors are on the driver after ``fit``), and a deployed SageMakerFM scores from
its weights, not from its endpoint. ``mapInArrow`` is the Arrow form of ``mapInPandas``: batches
skip pyspark's pandas conversions, which warn on every call with pandas >= 3 (the one version check
left, on the driver, is silenced).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.ids import IdIndex, resolve_users
from movierec._core.params import Bool, Instance, check_value
from movierec._core.ranking import user_block
from movierec._core.validation import ITEM, USER, check_n
from movierec.base import ArrayRecommender, Recommender
from movierec.ensemble import WeightedEnsemble
from movierec.exceptions import BackendError, InvalidParameterError, NotFittedError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["batch_top_n"]

_OWNER = "batch_top_n"
# Users x movies per partition (25 such blocks): a large catalogue's users are spread over more
# partitions than the cluster has cores, so a slow task holds up little; a small one gets the
# default parallelism (ml-20m: 138,493 users x 26,744 movies = 38 partitions at least).
_PARTITION_CELLS = 100_000_000
_USER_INDEX = "userIndex"


def batch_top_n(
    model: Recommender,
    spark: SparkSession,
    users: Iterable[Any] | None = None,
    n: int = 10,
    *,
    exclude_seen: bool = True,
    path: str | os.PathLike[str] | None = None,
) -> DataFrame:
    """Return every user's ``n`` best movies as a Spark DataFrame, scored on ``spark``'s executors.

    The rows are those of ``model.top_n(users, n, exclude_seen=exclude_seen)``: columns ``userId``
    (the ids' type: long or string), ``movieId`` (likewise), ``score`` (double) and ``rank`` (long,
    from 1), descending score with ties broken by item index (movieId order), movies rated in fit
    left out unless ``exclude_seen=False``. The rows come in no particular order: sort by
    ``userId, rank`` when order matters.

    The fitted state is copied once, when this is called: refitting ``model`` afterwards does not
    change the result. The executors need Python with movierec and the model's extra installed
    (``PYSPARK_PYTHON``, or ``spark.pyspark.python`` with spark-submit), and pyarrow.

    Parameters
    ----------
    model : ArrayRecommender or WeightedEnsemble
        A fitted array-backed model (Popularity, EASE, BiasedBaseline, SurpriseSVD, SageMakerFM,
        MyFMBayes, SparkALS...) or a fitted WeightedEnsemble whose members all are, with
        ``candidates=None`` (its members' scores are standardized and weighted as its ``top_n``
        does, by the same function).
    spark : pyspark.sql.SparkSession
        A running (classic, not Connect) session, of any master.
    users : iterable of ids, optional
        The users to score; None scores every user seen in fit. Users unseen in fit get no rows
        and one [`MovieRecWarning`][movierec.exceptions.MovieRecWarning], on the driver.
    n : int, default 10
        Movies per user (fewer when fewer can be recommended).
    exclude_seen : bool, default True
        Leave out the movies each user rated in fit.
    path : str or path-like, optional
        Where to write the result as Parquet (a folder of part files): a local path, which must
        not exist (on a multi-machine cluster it must be on a filesystem every node mounts at the
        same place), or a URI such as ``hdfs://...`` or ``s3a://...``. The rows are computed and
        written before this returns, and the DataFrame returned reads them back from there.
        Without ``path`` nothing runs until the returned DataFrame is used.

    Returns
    -------
    pyspark.sql.DataFrame
        The recommendations (read back from ``path`` when given).

    Raises
    ------
    InvalidParameterError
        If ``model`` is not an ArrayRecommender or such a WeightedEnsemble (the message names its
        class or the member's), if ``spark`` is not a SparkSession, or ``exclude_seen`` or ``path``
        has the wrong type.
    NotFittedError
        If ``model`` is not fitted.
    DataValidationError
        If ``n`` is not a positive int.
    FileExistsError
        If the local ``path`` already exists.
    BackendError
        If ``spark`` was stopped, or Spark fails to score or to write ``path``.

    Examples
    --------
    >>> from movierec import EASE, load_movielens
    >>> from movierec.spark.batch import batch_top_n
    >>> model = EASE().fit(load_movielens("ml-1m").ratings)  # doctest: +SKIP
    >>> top = batch_top_n(model, spark, n=10)  # doctest: +SKIP
    >>> top.where("userId = 1").orderBy("rank").show()  # doctest: +SKIP
    """
    _check_scorable(model)
    n = check_n(n)
    exclude_seen = check_value(_OWNER, "exclude_seen", exclude_seen, Bool())
    check_value(_OWNER, "path", path, Instance((str, os.PathLike), "a str or os.PathLike path", none=True))

    from movierec.spark.session import (
        backend_errors,
        is_alive,
        quiet_pyspark_warnings,
        session_types,
    )

    check_value(_OWNER, "spark", spark, Instance(session_types, "a pyspark.sql.SparkSession"))
    if not is_alive(spark):
        raise BackendError(f"{_OWNER}: the SparkSession given as spark= has been stopped")
    uri = None if path is None else _output_uri(path)
    user_idx = resolve_users(users, model.users_)  # warns once about unknown users
    scorer = _Scorer(model.scoring_copy())
    # mapInArrow goes through pandas_udf, whose pandas-version check warns with pandas >= 3.
    with backend_errors("score the top-N"), quiet_pyspark_warnings():
        top, shared = _score(spark, scorer, user_idx, n, exclude_seen)
    if uri is None:
        return top  # the broadcast lives as long as the DataFrame's plan refers to it
    with backend_errors(f"write the top-N to {uri}"):
        top.write.parquet(uri)
        shared.destroy()  # nothing refers to it any more: the result is read back from the files
        return spark.read.schema(top.schema).parquet(uri)  # the schema even when no user was scored


# -- what the executors get ----------------------------------------------------------------------
class _Scorer:
    """What the executors get: a scoring copy of the model (an ensemble's members scoring copies too),
    which ranks each user block with its own ``top_n``."""

    def __init__(self, model: ArrayRecommender | WeightedEnsemble) -> None:
        self.model = model
        self.users: IdIndex = model.users_
        self.items: IdIndex = model.items_

    def top_n(self, user_idx: np.ndarray, n: int, exclude_seen: bool) -> pd.DataFrame:
        return self.model.top_n(self.users.ids[user_idx], n, exclude_seen=exclude_seen)


def _check_scorable(model: Any) -> None:
    """Check the executors can score ``model``: an array-backed model, or an ensemble of them in full mode.

    Raises InvalidParameterError naming the class (or the member's) they cannot score, and
    NotFittedError for a model that is not fitted.
    """
    what = "an ArrayRecommender or a WeightedEnsemble of ArrayRecommenders"
    if not isinstance(model, (ArrayRecommender, WeightedEnsemble)):
        kind = type(model).__name__
        raise InvalidParameterError(
            f"{_OWNER}: model must be {what}, got a {kind}; score a {kind} with its own top_n on the driver"
        )
    if not hasattr(model, "users_"):
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet: call fit(ratings) first")
    if isinstance(model, ArrayRecommender):
        return
    if model.candidates is not None:
        raise InvalidParameterError(
            f"{_OWNER}: a WeightedEnsemble with candidates={model.candidates!r} ranks its members' own "
            "top lists; batch_top_n scores every movie: use candidates=None"
        )
    for position, member in enumerate(model.models_):
        if not isinstance(member, ArrayRecommender):
            raise InvalidParameterError(
                f"{_OWNER}: model must be {what}, got a WeightedEnsemble whose member {position} is a "
                f"{type(member).__name__}"
            )


def _score_batches(
    batches: Iterator[pa.RecordBatch], scorer: Broadcast, n: int, exclude_seen: bool, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Yield the top-N rows of each block of user indices in ``batches`` (runs on the executors)."""
    import pyarrow as pa

    model = scorer.value  # unpickled once per Python worker, which Spark reuses
    block = user_block(len(model.items))
    for batch in batches:
        user_idx = np.sort(batch.column(0).to_numpy())
        for start in range(0, len(user_idx), block):
            top = model.top_n(user_idx[start : start + block], n, exclude_seen)
            columns = [pa.array(top[field.name].to_numpy(), type=field.type) for field in schema]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)


# -- the driver's side ---------------------------------------------------------------------------
def _score(
    spark: SparkSession, scorer: _Scorer, user_idx: np.ndarray, n: int, exclude_seen: bool
) -> tuple[DataFrame, Broadcast]:
    """Return the lazy DataFrame of the top-N of ``user_idx``, partitioned by user, and its broadcast."""
    import pyarrow as pa

    schema = pa.schema([
        pa.field(USER, _arrow_type(scorer.users), nullable=False),
        pa.field(ITEM, _arrow_type(scorer.items), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("rank", pa.int64(), nullable=False),
    ])
    shared = spark.sparkContext.broadcast(scorer)
    users = spark.createDataFrame(pa.table({_USER_INDEX: pa.array(user_idx, type=pa.int64())}))
    parts = _partitions(len(user_idx), len(scorer.items), spark.sparkContext.defaultParallelism)
    score = partial(_score_batches, scorer=shared, n=n, exclude_seen=exclude_seen, schema=schema)
    return users.repartition(parts).mapInArrow(score, _spark_schema(schema)), shared


def _partitions(n_users: int, n_items: int, parallelism: int) -> int:
    """Return how many partitions ``n_users`` users are split into: at least the default parallelism."""
    wanted = max(parallelism, math.ceil(n_users * n_items / _PARTITION_CELLS))
    return max(1, min(n_users, wanted))


def _arrow_type(index: IdIndex) -> pa.DataType:
    """Return the Arrow type of ``index``'s ids: int64 or string, the id types a ratings frame takes."""
    import pyarrow as pa

    return pa.string() if index.to_array().dtype.kind == "U" else pa.int64()


def _spark_schema(schema: pa.Schema) -> StructType:
    import pyarrow as pa
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    types = {pa.int64(): LongType(), pa.string(): StringType(), pa.float64(): DoubleType()}
    return StructType([StructField(field.name, types[field.type], nullable=False) for field in schema])


def _output_uri(path: str | os.PathLike[str]) -> str:
    """Return the URI Spark writes ``path`` at: a URI as given, a local path as an explicit ``file:`` URI."""
    text = os.fspath(path)
    if "://" in text or text.startswith("file:"):
        return text
    local = Path(text).expanduser().resolve()
    if local.exists():
        raise FileExistsError(f"{_OWNER}: {local} already exists; give a path that does not")
    # An explicit file: URI, so a cluster whose default filesystem is HDFS still writes locally.
    return local.as_uri()
