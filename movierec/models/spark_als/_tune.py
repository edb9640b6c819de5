"""Grid search behind ``SparkALS.tune``: Spark's CrossValidator over a ParamGridBuilder grid.

Also the one table of SparkALS's parameter names and Spark's ALS Param names, which the fit uses
to configure the estimator and a grid may vary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec.base import TuneResult
from movierec.models.spark_als._arrow import RATING_COL

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import DataFrame

__all__ = ["METRICS", "SPARK_NAMES", "cross_validate", "tune_result"]

#: SparkALS parameter -> the name of Spark's ALS Param; these are the parameters a grid may vary.
SPARK_NAMES = {
    "rank": "rank",
    "max_iter": "maxIter",
    "reg_param": "regParam",
    "implicit_prefs": "implicitPrefs",
    "alpha": "alpha",
    "nonnegative": "nonnegative",
}
#: What tune can measure (Spark's RegressionEvaluator metric names).
METRICS = ("rmse",)


def cross_validate(
    als: ALS, data: DataFrame, candidates: dict[str, list[Any]], folds: int, seed: int | None
) -> list[tuple[dict[str, Any], float]]:
    """Return (grid point in SparkALS's names, mean RMSE over ``folds``) for every grid point, in grid order.

    Spark's ``CrossValidator`` over a ``ParamGridBuilder`` grid, one model at a time
    (``parallelism=1``), RMSE by ``RegressionEvaluator``; ``als`` should drop cold-start pairs.
    """
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    params = {name: als.getParam(SPARK_NAMES[name]) for name in candidates}
    builder = ParamGridBuilder()
    for name, values in candidates.items():
        builder.addGrid(params[name], values)
    maps = builder.build()
    evaluator = RegressionEvaluator(metricName="rmse", labelCol=RATING_COL, predictionCol="prediction")
    validator = CrossValidator(
        estimator=als, estimatorParamMaps=maps, evaluator=evaluator, numFolds=folds, parallelism=1
    )
    if seed is not None:
        validator.setSeed(seed)
    scores = validator.fit(data).avgMetrics
    # ParamGridBuilder stores each value through its Param's type converter: plain int, float, bool.
    return [
        ({name: point[param] for name, param in params.items()}, float(score))
        for point, score in zip(maps, scores, strict=True)
    ]


def tune_result(results: list[tuple[dict[str, Any], float]], metric: str) -> TuneResult:
    """Return the [`TuneResult`][movierec.TuneResult] of scored grid points: the first with the lowest score wins."""
    best, best_score = min(results, key=lambda item: item[1])
    frame = pd.DataFrame([{**point, metric: score} for point, score in results])
    return TuneResult(best_params=dict(best), best_score=float(best_score), metric=metric, results=frame)
