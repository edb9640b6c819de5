"""Experiment tracking with MLflow: a run of ``movierec recommend`` or a kept model as an MLflow run.

``movierec recommend --mlflow`` calls [`log_run`][movierec.tracking.log_run] with the run's
``metrics.json`` document: the settings become the run's parameters, every figure of the table a
metric named ``<model>.<metric>`` (``ensemble.ndcg_at_10``: MLflow's names take no ``@``), and the
report and ``metrics.json`` its artifacts. ``movierec fit --save DIR --mlflow`` calls
[`log_kept_model`][movierec.tracking.log_kept_model]: the model card's settings and hold-out
figures, the kept folder under the artifact path ``model/``, and the folder as an MLflow pyfunc
model (`movierec.tracking.KeptModel`) that ``mlflow.pyfunc.load_model`` loads and
that answers a frame of user ids or of visitors' histories.

Where runs go: the ``MLFLOW_TRACKING_URI`` environment variable when set (a server, a database),
else the folder ``./mlruns`` (MLflow's local file store). MLflow 3 refuses its file store unless
``MLFLOW_ALLOW_FILE_STORE`` is true; this module sets that for a local folder only, and only when
the variable is unset. Needs ``pip install 'movierec[mlflow]'`` (mlflow-skinny, which holds the
client, the file store and pyfunc).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from movierec._core.extras import require
from movierec.exceptions import InvalidParameterError

__all__ = [  # noqa: F822 - KeptModel is made on first use, by the module's __getattr__
    "DEFAULT_STORE", "EXPERIMENT", "KeptModel", "log_kept_model", "log_run", "metric_key", "tracking_uri"]

logger = logging.getLogger(__name__)

#: The local folder runs go to when ``MLFLOW_TRACKING_URI`` is unset.
DEFAULT_STORE = "mlruns"
#: The MLflow experiment movierec's runs are filed under, unless told otherwise.
EXPERIMENT = "movierec"
_MLFLOW = ("mlflow", "mlflow", "experiment tracking (--mlflow)")


def _mlflow() -> Any:
    return require(*_MLFLOW[:2], purpose=_MLFLOW[2])


def tracking_uri(uri: str | os.PathLike[str] | None = None) -> str:
    """Return where runs go: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``./mlruns`` as a ``file:`` URI.

    A local folder (a path or a ``file:`` URI) also sets ``MLFLOW_ALLOW_FILE_STORE=true`` when that
    variable is unset, since MLflow 3 otherwise refuses its file store.
    """
    chosen = os.fspath(uri) if uri is not None else os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
    if "://" not in chosen and not chosen.startswith("file:"):
        chosen = Path(chosen).expanduser().resolve().as_uri()
    if chosen.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return chosen


def metric_key(model: str, metric: str) -> str:
    """Return MLflow's name of a table figure: ``("ensemble", "ndcg@10")`` gives ``"ensemble.ndcg_at_10"``."""
    return f"{model}.{metric}".replace("@", "_at_")


def _params(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Return ``values`` flattened to MLflow parameters (strings of at most 6,000 characters)."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, Mapping):
            flat |= _params(f"{name}.", value)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text[:6000]
    return flat


def _start(mlflow: Any, uri: str | os.PathLike[str] | None, experiment: str, run_name: str | None) -> Any:
    mlflow.set_tracking_uri(tracking_uri(uri))
    mlflow.set_experiment(experiment)
    return mlflow.start_run(run_name=run_name)


def log_run(summary: Mapping[str, Any], artifacts: Iterable[str | os.PathLike[str]] = (), *,
            uri: str | os.PathLike[str] | None = None, experiment: str = EXPERIMENT,
            run_name: str | None = None) -> str:
    """Record one run of the main job in MLflow and return the run's id.

    Parameters
    ----------
    summary : mapping
        The ``metrics.json`` document of the run (`movierec.report.run_summary`): its ``settings``,
        ``data``, ``split`` and ``task`` become parameters; each row of its ``table`` gives the
        metrics ``<model>.<column>`` (see [`metric_key`][movierec.tracking.metric_key]); each
        member's hold-out error and fit seconds ``<member>.holdout_error`` and ``<member>.fit_seconds``.
    artifacts : iterable of paths
        Files to attach (``report.html``, ``metrics.json``, ``per_user.csv``).
    uri, experiment, run_name
        Where the run goes ([`tracking_uri`][movierec.tracking.tracking_uri]), its experiment and name.
    """
    mlflow = _mlflow()
    with _start(mlflow, uri, experiment, run_name) as run:
        params = {"task": summary.get("task"), "split": summary.get("split"),
                  "dataset": (summary.get("data") or {}).get("dataset")}
        mlflow.log_params(_params("", {k: v for k, v in params.items() if v is not None}))
        mlflow.log_params(_params("settings.", summary.get("settings") or {}))
        mlflow.log_metrics(_run_metrics(summary))
        for path in artifacts:
            mlflow.log_artifact(os.fspath(path))
    logger.info("logged MLflow run %s to %s", run.info.run_id, mlflow.get_tracking_uri())
    return str(run.info.run_id)


def _run_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for row in summary.get("table") or ():
        for column, value in row.items():
            if column != "model" and isinstance(value, (int, float)) and not isinstance(value, bool):
                values[metric_key(row["model"], column)] = float(value)
    for member in summary.get("members") or ():
        for field in ("holdout_error", "fit_seconds"):
            if member.get(field) is not None:
                values[f"{member['name']}.{field}"] = float(member[field])
    return values


def log_kept_model(folder: str | os.PathLike[str], card: Mapping[str, Any], *,
                   uri: str | os.PathLike[str] | None = None, experiment: str = EXPERIMENT,
                   run_name: str | None = None, pyfunc: bool = True) -> str:
    """Record a model kept by ``movierec fit --save`` in MLflow and return the run's id.

    The run holds the card's model parameters and extra settings (parameters), its hold-out errors
    and weights (metrics ``<member>.holdout_error``, ``<member>.weight``), and the kept folder
    (artifacts under ``model/``, ``model-card.json`` among them). With ``pyfunc``, the folder is
    also logged as an MLflow pyfunc model named ``movierec`` (`movierec.tracking.KeptModel`).
    """
    mlflow = _mlflow()
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidParameterError(f"folder must be a kept model's folder, got {os.fspath(folder)!r}")
    metrics = card.get("validation") or {}
    data = card.get("data") or {}
    params = {"model": (card.get("model") or {}).get("class"), **(card.get("extra") or {}),
              "metric": metrics.get("metric"), "chosen": metrics.get("chosen"),
              "data": {key: data.get(key) for key in ("file", "sha256", "rows", "users", "items")}}
    with _start(mlflow, uri, experiment, run_name) as run:
        mlflow.log_params(_params("", params))
        values = {f"{name}.holdout_error": float(e) for name, e in (metrics.get("holdout_errors") or {}).items()}
        values |= {f"{name}.weight": float(w) for name, w in (metrics.get("weights") or {}).items()}
        if values:
            mlflow.log_metrics(values)
        mlflow.log_artifacts(os.fspath(folder), artifact_path="model")
        if pyfunc:
            from mlflow.models import ModelSignature
            from mlflow.types import ParamSchema, ParamSpec

            # no input schema (user ids or histories, of any id type); n is a parameter of predict
            signature = ModelSignature(params=ParamSchema([ParamSpec("n", "long", 10)]))
            with warnings.catch_warnings():  # its advice to give an input example: one would be scored at log time
                warnings.filterwarnings("ignore", message=".*input example", category=UserWarning)
                mlflow.pyfunc.log_model(name="movierec", python_model=_kept_model_type()(),
                                        artifacts={"model": os.fspath(folder)}, signature=signature,
                                        pip_requirements=["movierec"])
    logger.info("logged the kept model %s as MLflow run %s", folder, run.info.run_id)
    return str(run.info.run_id)


def _kept_model_type() -> type:
    """Return `KeptModel`, made on first use."""
    if "KeptModel" not in globals():
        globals()["KeptModel"] = _kept_model_class()
    return globals()["KeptModel"]


def _kept_model_class() -> type:
    """Return the pyfunc class, made once mlflow is imported (so ``import movierec.tracking`` needs no mlflow)."""
    python_model = require("mlflow.pyfunc", "mlflow", purpose=_MLFLOW[2]).PythonModel

    class KeptModel(python_model):  # type: ignore[misc, valid-type]
        """A kept movierec model as an MLflow pyfunc: a frame of users or histories in, top-N lists out.

        ``predict(frame, params={"n": 10})``: a frame with ``userId`` only gives each known user's
        top ``n`` (`Recommender.top_n`); a frame with ``userId`` and ``movieId`` (and optional
        ``rating``) is read as visitors' histories, one per ``userId``, and gives each visitor's
        top ``n`` (`top_n_from_history`). Out: ``userId, movieId, score, rank``.
        """

        def load_context(self, context: Any) -> None:
            from movierec import load_model

            self.model = load_model(context.artifacts["model"])

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
            n = int((params or {}).get("n", 10))
            frame = pd.DataFrame(model_input)
            if "userId" not in frame.columns:
                raise InvalidParameterError(f"model_input needs a userId column, got columns {list(frame.columns)}")
            if "movieId" not in frame.columns:
                return self.model.top_n(users=pd.unique(frame["userId"]), n=n)
            lists = [self.model.top_n_from_history(history.drop(columns="userId"), n=n, user=user)
                     for user, history in frame.groupby("userId", sort=False)]
            return pd.concat(lists, ignore_index=True) if lists else pd.DataFrame(
                columns=["userId", "movieId", "score", "rank"])

    KeptModel.__module__, KeptModel.__qualname__ = __name__, "KeptModel"  # pickled by reference, as this module's
    return KeptModel


def __getattr__(name: str) -> Any:
    # KeptModel subclasses mlflow's PythonModel, so it is made on first use: pickle and cloudpickle
    # find it here by name when a logged model is loaded.
    if name == "KeptModel":
        return _kept_model_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
