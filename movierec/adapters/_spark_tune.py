"""Grid checks and Spark's CrossValidator run behind ``SparkALS.tune``."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from movierec.adapters._spark_arrow import RATING_COL
from movierec.adapters._spark_params import TUNABLE, check_param, spark_name
from movierec.exceptions import DataValidationError

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import DataFrame

__all__ = ["check_folds", "check_grid", "cross_validate"]


def check_folds(folds: Any) -> int:
    """Return ``folds`` after checking it is an int >= 2."""
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise DataValidationError(f"folds must be an int >= 2, got {folds!r}")
    return int(folds)


def check_grid(grid: Any) -> dict[str, list[Any]]:
    """Return ``grid`` as {parameter: checked values}; names are SparkALS's, values non-empty."""
    if not isinstance(grid, Mapping) or not grid:
        raise DataValidationError(f"grid must be a non-empty dict of parameter -> values, got {grid!r}")
    candidates = {}
    for name, values in grid.items():
        if name not in TUNABLE:
            raise DataValidationError(f"grid parameter {name!r} cannot be tuned; tunable: {list(TUNABLE)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise DataValidationError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
        candidates[name] = [check_param(name, v) for v in values]
        if not candidates[name]:
            raise DataValidationError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    return candidates


def cross_validate(
    als: ALS, data: DataFrame, candidates: dict[str, list[Any]], folds: int, seed: int | None
) -> list[tuple[dict[str, Any], float]]:
    """Return (grid point in SparkALS's names, mean RMSE over ``folds``) for every grid point.

    Spark's ``CrossValidator`` over a ``ParamGridBuilder`` grid, one model at a time
    (``parallelism=1``), RMSE by ``RegressionEvaluator``; ``als`` should drop cold-start pairs.
    """
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    builder = ParamGridBuilder()
    for name, values in candidates.items():
        builder.addGrid(als.getParam(spark_name(name)), values)
    maps = builder.build()
    evaluator = RegressionEvaluator(metricName="rmse", labelCol=RATING_COL, predictionCol="prediction")
    validator = CrossValidator(
        estimator=als, estimatorParamMaps=maps, evaluator=evaluator, numFolds=folds, parallelism=1
    )
    if seed is not None:
        validator.setSeed(seed)
    scores = validator.fit(data).avgMetrics
    return [
        (
            {name: check_param(name, point[als.getParam(spark_name(name))]) for name in candidates},
            float(score),
        )
        for point, score in zip(maps, scores, strict=True)
    ]
