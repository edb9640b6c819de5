"""Moving index-coded columns between numpy and Spark through Arrow tables.

pyspark builds a DataFrame from a ``pyarrow.Table`` and collects one with ``DataFrame.toArrow``
without touching pandas, so pyspark's pandas-version checks (and the pandas 3 deprecation
warnings from its pandas conversion code) never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from movierec.exceptions import BackendError, DataValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "ITEM_COL",
    "RATING_COL",
    "USER_COL",
    "collect_columns",
    "collect_factors",
    "ratings_to_spark",
    "to_spark",
]

# Spark-side column names: internal indices, never raw ids.
USER_COL, ITEM_COL, RATING_COL = "userIndex", "movieIndex", "rating"

_ARROW_TYPES = {np.dtype(np.int32): "int32", np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_INT32_MAX = np.iinfo(np.int32).max


def to_spark(session: SparkSession, columns: dict[str, np.ndarray]) -> DataFrame:
    """Return a Spark DataFrame of the given int32/float32 numpy columns, sent as one Arrow table."""
    import pyarrow as pa
    from pyspark.sql.types import DoubleType, FloatType, IntegerType, StructField, StructType

    spark_types = {"int32": IntegerType(), "float32": FloatType(), "float64": DoubleType()}
    arrays, fields = [], []
    for name, values in columns.items():
        kind = _ARROW_TYPES.get(np.asarray(values).dtype)
        if kind is None:
            raise TypeError(f"column {name!r} must be int32, float32 or float64, got {values.dtype}")
        arrays.append(pa.array(values, type=getattr(pa, kind)()))
        fields.append(StructField(name, spark_types[kind], nullable=False))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    return session.createDataFrame(table, schema=StructType(fields))


def ratings_to_spark(
    session: SparkSession, user_idx: np.ndarray, item_idx: np.ndarray, ratings: np.ndarray
) -> DataFrame:
    """Return index-coded ratings as a Spark DataFrame (int32 indices, float32 ratings), as ALS takes them."""
    if max(int(user_idx.max(initial=0)), int(item_idx.max(initial=0))) > _INT32_MAX:
        raise DataValidationError("Spark ALS takes at most 2**31 - 1 distinct users and movies")
    columns = {
        USER_COL: user_idx.astype(np.int32),
        ITEM_COL: item_idx.astype(np.int32),
        RATING_COL: np.asarray(ratings, dtype=np.float32),  # Spark's ALS casts to float32 anyway
    }
    return to_spark(session, columns)


def collect_columns(frame: DataFrame) -> dict[str, np.ndarray]:
    """Return the flat columns of ``frame`` as numpy arrays, collected through Arrow."""
    table = frame.toArrow()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def collect_factors(frame: DataFrame, size: int, rank: int, what: str) -> np.ndarray:
    """Return the (size, rank) float64 matrix of an ALS factor table (columns id, features).

    Row ``k`` holds the factors of index ``k``; a missing, duplicate or non-finite row raises
    `BackendError`, since every index came from the training data.
    """
    import pyarrow.compute as pc

    table = frame.toArrow()
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks()
    lengths = pc.list_value_length(features).to_numpy(zero_copy_only=False)
    if (
        len(ids) != size
        or len(np.unique(ids)) != size
        or ids.min(initial=0) < 0
        or ids.max(initial=0) >= size
    ):
        raise BackendError(f"Spark returned {len(ids)} {what} factor rows for {size} {what}s")
    if len(lengths) and (lengths != rank).any():
        raise BackendError(f"Spark returned {what} factors of length {sorted(set(lengths))}, expected {rank}")
    values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, rank)
    if not np.isfinite(values).all():
        raise BackendError(f"ALS produced NaN or infinite {what} factors; try a larger reg_param")
    factors = np.empty((size, rank), dtype=np.float64)
    factors[ids] = values
    return factors
