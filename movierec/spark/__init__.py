"""Spark as a place to run: the session movierec starts or is given, and batch top-N on executors.

``session`` holds the SparkSession a SparkALS or a batch job runs on (a local one movierec owns, or
the caller's) and Spark's errors; ``batch`` scores every user's top N on Spark's executors.
Needs ``pip install 'movierec[spark]'`` and Java 17+ when called; importing this package does not
import pyspark.
"""

from __future__ import annotations

from movierec.spark.batch import batch_top_n

__all__ = ["batch_top_n"]
