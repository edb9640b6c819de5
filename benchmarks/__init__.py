"""movierec's benchmark suites, run by ``python -m benchmarks`` (``make bench``).

Each suite (``accuracy``, ``ranking``, ``speed``, ``scale``, ``history``, ``serve``) writes ``benchmarks/results/<suite>.json``
with the machine, the library versions and the date; :mod:`benchmarks.render` turns the JSON files
into ``docs/benchmarks.md``. The per-adapter scripts (``spark_als.py``, ``surprise_topn.py``,
``sagemaker_fm.py``) are separate and run on their own.
"""

SUITES = ("accuracy", "ranking", "speed", "scale", "history", "serve")
