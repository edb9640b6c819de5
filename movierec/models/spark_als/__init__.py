"""Spark ML's ALS as a movierec Recommender (``pip install 'movierec[spark]'``, Java 17+).

One job per module: ``_model`` ([`SparkALS`][movierec.models.spark_als.SparkALS]), ``_session`` (the SparkSession it runs on and
Spark's errors), ``_arrow`` (numpy columns to and from Spark through Arrow), ``_top_n`` (ranking in
Spark for catalogues too large for the driver) and ``_tune`` (the cross-validated grid search).
"""

from __future__ import annotations

from movierec.models.spark_als._model import SparkALS

__all__ = ["SparkALS"]
