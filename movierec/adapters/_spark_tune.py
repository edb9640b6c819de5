"""Spark's CrossValidator run behind ``SparkALS.tune``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from movierec.adapters._spark_arrow import RATING_COL
from movierec.adapters._spark_params import check_param, spark_name

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import DataFrame

__all__ = ["cross_validate"]


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
