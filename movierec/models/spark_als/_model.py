"""SparkALS: Spark ML's alternating least squares as a movierec Recommender.

Spark learns the factors; they are then copied into numpy arrays, so ``predict`` and ``top_n`` on
catalogues that fit in memory run on the driver without Spark (as LensKit's adapters do), and the
fitted ``ALSModel`` is kept for Spark-side top-N on large catalogues and for saving. A loaded model
holds the numpy arrays only: Spark starts (and reads the saved ``ALSModel``) the first time
something truly needs it, so a server that only scores never starts a JVM. A visitor's history is
folded in with Spark's own user step, in numpy (`_fold_in`).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from movierec._core.extras import require
from movierec._core.ids import IdIndex, resolve_users
from movierec._core.params import (
    Bool,
    Constraint,
    Instance,
    Int,
    Options,
    Real,
    Seed,
    check_grid,
    check_value,
)
from movierec._core.validation import ITEM, RATING, USER, check_n, check_ratings
from movierec.base import ArrayRecommender, TuneResult
from movierec.exceptions import BackendError, ModelFileError
from movierec.models._fold_in import cosine_similarities
from movierec.models.spark_als._arrow import ITEM_COL, RATING_COL, USER_COL, collect_factors, ratings_to_spark
from movierec.models.spark_als._fold_in import ALSStep
from movierec.models.spark_als._top_n import spark_top_n
from movierec.models.spark_als._tune import METRICS, SPARK_NAMES, cross_validate, tune_result
from movierec.spark.session import (
    acquire,
    backend_errors,
    ensure_checkpoint_dir,
    is_alive,
    release,
    session_types,
)

require("pyspark", "spark")
require("pyarrow", "spark")

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALS, ALSModel
    from pyspark.sql import SparkSession

__all__ = ["SparkALS"]

SPARK_MODEL_DIR = "spark_model"

# Spark's ALS splits users and movies into 10 blocks whatever the data size; on data that fits
# one machine most of that is task overhead (fits ran 3-4x faster with 2 blocks on ml-100k).
# The count follows the data only, never the cores, so a seed gives the same model everywhere.
RATINGS_PER_BLOCK = 500_000
MIN_BLOCKS, MAX_BLOCKS = 2, 10


def als_blocks(n_ratings: int) -> int:
    """Return the user (and movie) block count for ALS on ``n_ratings`` ratings."""
    return int(min(MAX_BLOCKS, max(MIN_BLOCKS, math.ceil(n_ratings / RATINGS_PER_BLOCK))))


def _uri(path: Path) -> str:
    # An explicit file: URI, so a cluster whose default filesystem is HDFS still writes locally.
    return path.resolve().as_uri()


class SparkALS(ArrayRecommender):
    """Matrix factorization by Spark ML's ``ALS``, with ids mapped to int32 and back.

    Parameters
    ----------
    rank : int, default 10
        Number of latent factors.
    max_iter : int, default 10
        ALS sweeps.
    reg_param : float, default 0.1
        L2 penalty (Spark scales it by each user's and movie's rating count).
    implicit_prefs : bool, default False
        Treat ratings as confidence in an implicit preference (Hu, Koren & Volinsky). Scores are
        then preferences near 0..1, not ratings, so `rmse` against star ratings measures
        nothing useful; rank with `top_n` instead.
    alpha : float, default 1.0
        Confidence scale for ``implicit_prefs=True`` (confidence is ``1 + alpha * rating``).
    nonnegative : bool, default False
        Constrain the factors to be non-negative.
    cold_start_strategy : {"drop", "nan"}, default "drop"
        Passed to Spark; it only affects Spark-side ``model_.transform``. `predict`
        always gives NaN for users or movies unseen in fit, and `rmse` drops them
        (``cold_start="drop"``).
    random_state : int or None, default None
        Spark's ALS seed (and the fold seed of `tune`), an int in ``[0, 2**32 - 1]``. None
        keeps Spark's default seed, which is itself fixed, so runs repeat either way on the same
        data and partitions.
    spark : SparkSession or None, default None
        The session to run on, of any master (``local[*]``, ``spark://host:7077``, YARN...);
        it is used as it is and never stopped. With None the model starts (or shares) a quiet
        local ``local[*]`` session and stops it on `close` or when a ``with`` block ends;
        if a SparkContext already runs in the process, that one is used and left running.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of shape (n_users, rank), (n_movies, rank)
        The learned factors, float64, by internal index; ``users_`` and ``items_`` map raw ids.
    model_ : pyspark.ml.recommendation.ALSModel
        Spark's fitted model, on columns ``userIndex``/``movieIndex`` (internal int32 indices). A
        loaded model reads it from its folder on first use, starting Spark then.
    spark_top_n_cells : int or None
        Class attribute, default None: `top_n` always ranks on the driver in user blocks.
        An int makes requests of more users x movies rank in Spark instead (opt-in; see `top_n`).

    Raises
    ------
    InvalidParameterError
        From `fit` or `tune`, when a parameter breaks ``_parameter_constraints``.

    Notes
    -----
    Spark's ALS splits users and movies into ``numUserBlocks``/``numItemBlocks`` blocks (10 by
    default whatever the data). Here the count follows the number of ratings (one block per
    500,000, between 2 and 10): faster on data that fits one machine, and independent of the
    cores, so a ``random_state`` gives the same model on any machine or cluster. Results differ
    from Spark's 10-block default only by the random initialization.

    Examples
    --------
    >>> from movierec import SparkALS, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> with SparkALS(random_state=0) as model:  # doctest: +SKIP
    ...     model.fit(fold.train).rmse(fold.test)
    0.9346...
    """

    #: Above this many (user, movie) scores top_n runs in Spark; None (the default): never. The
    #: driver path streams user blocks, so its memory does not grow with the users, while Spark's
    #: asks each user for n plus the heaviest rater's count (ml-25m: about 32,000 rows per user).
    #: For user bases past one machine, see movierec.spark.batch.batch_top_n.
    spark_top_n_cells: ClassVar[int | None] = None
    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {"user_factors": ("users", "k"), "item_factors": ("items", "k")}
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "rank": Int(1),
        "max_iter": Int(1),
        "reg_param": Real(0),
        "implicit_prefs": Bool(),
        "alpha": Real(0),
        "nonnegative": Bool(),
        "cold_start_strategy": Options(("drop", "nan")),
        "random_state": Seed(),
        # A callable, so pyspark is imported only when a session is checked.
        "spark": Instance(session_types, "a pyspark.sql.SparkSession", none=True),
    }
    _session: SparkSession | None = None
    _owns_session: bool = False
    _requested: SparkSession | None = None
    #: Spark's fitted model: set by fit, or read from ``_saved_at`` on first use after load.
    _als_model: ALSModel | None = None
    #: The folder a loaded model came from, whose ``spark_model/`` holds its ALSModel.
    _saved_at: Path | None = None
    #: The user step of fold-in (item factors and their Gram matrix), built on first use.
    _fold_in: ALSStep | None = None

    def __init__(
        self,
        rank: int = 10,
        max_iter: int = 10,
        reg_param: float = 0.1,
        implicit_prefs: bool = False,
        alpha: float = 1.0,
        nonnegative: bool = False,
        cold_start_strategy: Literal["drop", "nan"] = "drop",
        random_state: int | None = None,
        spark: SparkSession | None = None,
    ) -> None:
        self.rank = rank
        self.max_iter = max_iter
        self.reg_param = reg_param
        self.implicit_prefs = implicit_prefs
        self.alpha = alpha
        self.nonnegative = nonnegative
        self.cold_start_strategy = cold_start_strategy
        self.random_state = random_state
        self.spark = spark

    # -- session -------------------------------------------------------------------------------
    @property
    def session(self) -> SparkSession | None:
        """The SparkSession this model runs on, or None before fit and after `close`."""
        return self._session if is_alive(self._session) else None

    def _ensure_session(self) -> SparkSession:
        # Keep the current session unless it died or the spark parameter changed since it was acquired.
        if self._session is not None and self._requested is self.spark and is_alive(self._session):
            return self._session
        self.close()
        self._session, self._owns_session = acquire(self.spark)
        self._requested = self.spark
        return self._session

    def close(self) -> None:
        """Stop the local session this model started (if no other model uses it); idempotent.

        A session given as ``spark=`` is never stopped. ``predict`` and in-memory ``top_n`` keep
        working after close; Spark-side ``top_n`` and ``save`` of a fitted model need a new ``fit``.
        """
        session, owned = self._session, self._owns_session
        self._session, self._owns_session = None, False
        if self._saved_at is not None:  # a loaded model reads its ALSModel again when next needed
            self._als_model = None
        if session is not None and owned:
            release(session)

    @property
    def model_(self) -> ALSModel:
        """Spark's fitted ``ALSModel``; a loaded model reads it from its folder (starting Spark) here."""
        self._check_fitted()
        if self._als_model is None:
            if self._saved_at is None:  # pragma: no cover - fit and load both leave one of the two
                raise BackendError("this SparkALS holds no Spark model: fit it again")
            from pyspark.ml.recommendation import ALSModel

            self._ensure_session()
            with backend_errors("load the ALS model"):
                self._als_model = ALSModel.load(_uri(self._saved_at / SPARK_MODEL_DIR))
        return self._als_model

    def _reset(self) -> None:
        super()._reset()
        self._als_model = self._saved_at = self._fold_in = None

    # -- fitting -------------------------------------------------------------------------------
    def _plain_params(self) -> dict[str, Any]:
        """Return the parameters as plain Python values (numpy ints to int...); fit checked them."""
        return {name: rule.convert(getattr(self, name)) for name, rule in self._parameter_constraints.items()}

    def _estimator(self, params: Mapping[str, Any], cold_start_strategy: str, n_ratings: int) -> ALS:
        from pyspark.ml.recommendation import ALS

        blocks = als_blocks(n_ratings)
        als = ALS(
            userCol=USER_COL,
            itemCol=ITEM_COL,
            ratingCol=RATING_COL,
            coldStartStrategy=cold_start_strategy,
            numUserBlocks=blocks,
            numItemBlocks=blocks,
        )
        als.setParams(**{spark: params[name] for name, spark in SPARK_NAMES.items()})
        if params["random_state"] is not None:
            als.setSeed(params["random_state"])
        return als

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        params = self._plain_params()
        session = self._ensure_session()
        ensure_checkpoint_dir(session, params["max_iter"])
        with backend_errors("fit ALS"):
            data = ratings_to_spark(session, user_idx, item_idx, ratings)
            model = self._estimator(params, params["cold_start_strategy"], len(ratings)).fit(data)
            user_factors = collect_factors(model.userFactors, len(self.users_), params["rank"], "user")
            item_factors = collect_factors(model.itemFactors, len(self.items_), params["rank"], "movie")
        self._als_model = model
        self.user_factors_, self.item_factors_ = user_factors, item_factors

    def tune(
        self,
        ratings: pd.DataFrame,
        grid: Mapping[str, Sequence[Any]],
        *,
        folds: int = 3,
        metric: Literal["rmse"] = "rmse",
    ) -> TuneResult:
        """Return the best grid point by Spark's ``CrossValidator``, leaving the model refitted with it.

        ``grid`` maps this class's parameter names (``rank``, ``max_iter``, ``reg_param``,
        ``alpha``, ``implicit_prefs``, ``nonnegative``) to candidate values, each checked as the
        parameter itself is; the other parameters keep their current values. Folds are random
        splits of the rows (seeded by ``random_state``); pairs whose user or movie is missing from
        a training fold are dropped from the metric (``coldStartStrategy="drop"``). With
        ``implicit_prefs=True`` the RMSE compares preferences with ratings and does not measure
        ranking quality.

        Returns
        -------
        TuneResult
            ``best_params`` (the grid point with the lowest mean cross-validated RMSE, the first
            such in grid order), ``best_score`` (that RMSE), ``metric="rmse"`` and ``results``
            (one row per grid point in grid order: its values and its ``rmse``). The model is then
            refitted with ``set_params(**best_params)`` on all of ``ratings``.

        Raises
        ------
        InvalidParameterError
            If a parameter, a grid value, ``folds`` (an int >= 2) or ``metric`` is invalid.
        """
        check_ratings(ratings)
        params = self._validate_params()
        owner = f"{type(self).__name__}.tune"
        metric = check_value(owner, "metric", metric, Options(METRICS))
        folds = check_value(owner, "folds", folds, Int(2))
        candidates = check_grid(owner, grid, {n: self._parameter_constraints[n] for n in SPARK_NAMES})
        session = self._ensure_session()
        ensure_checkpoint_dir(session, max(params["max_iter"], *candidates.get("max_iter", [0])))
        users, items = IdIndex(ratings[USER]), IdIndex(ratings[ITEM])
        with backend_errors("cross-validate ALS"):
            data = ratings_to_spark(
                session, users.lookup(ratings[USER]), items.lookup(ratings[ITEM]), ratings[RATING]
            )
            als = self._estimator(params, "drop", len(ratings))
            result = tune_result(cross_validate(als, data, candidates, folds, params["random_state"]), metric)
        self.set_params(**result.best_params)
        self.fit(ratings)
        return result

    # -- scoring -------------------------------------------------------------------------------
    def _score_pairs(self, user_idx, item_idx):
        return np.einsum("ij,ij->i", self.user_factors_[user_idx], self.item_factors_[item_idx])

    def _score_users(self, user_idx):
        return self.user_factors_[user_idx] @ self.item_factors_.T

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` highest-scored movies per user, ties broken by movieId.

        Movies rated in fit are left out unless ``exclude_seen=False`` (Spark's own
        ``recommendForAllUsers`` keeps them). The ranking runs in numpy on the collected factors,
        a block of users at a time; only when ``spark_top_n_cells`` is set and the request is larger
        does it run in Spark (``recommendForUserSubset`` over ``n`` plus the largest seen count
        among the users, then the seen movies removed).
        Unknown users get no rows and one warning.
        """
        self._check_fitted()
        n = check_n(n)
        exclude_seen = check_value(type(self).__name__, "exclude_seen", exclude_seen, Bool())
        user_idx = resolve_users(users, self.users_)  # warns once about unknown users
        limit = self.spark_top_n_cells
        if limit is None or len(user_idx) * len(self.items_) <= limit:
            known = None if users is None else self.users_.ids[user_idx]
            return super().top_n(known, n, exclude_seen=exclude_seen)
        if self._saved_at is None and not is_alive(self._session):
            raise BackendError(
                "top_n in Spark needs this model's Spark session, which was closed; fit or load again"
            )
        if len(user_idx):
            als_model = self.model_  # a loaded model starts Spark here
            with backend_errors("rank movies"):
                u, i, s = spark_top_n(
                    self._session, als_model, user_idx, self.seen_, n, exclude_seen=exclude_seen
                )
        else:
            u = i = np.zeros(0, dtype=np.int64)
            s = np.zeros(0)
        return self._top_n_frame(u, i, s)

    # -- persistence ---------------------------------------------------------------------------
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_arrays(self, arrays, extra) -> None:
        self.user_factors_, self.item_factors_ = arrays["user_factors"], arrays["item_factors"]
        self._fold_in = None

    def save(self, path: str | Path) -> None:
        """Write ``params.json``, ``arrays.npz`` (factors, id maps, seen movies; no pickle) and
        ``spark_model/`` (Spark's own ML writer) to the directory ``path``, atomically, with a
        ``manifest.json`` of every file ([`ArrayRecommender.save`][movierec.ArrayRecommender.save]).

        The session is not saved. On a multi-machine cluster ``path`` must be on a filesystem
        every node mounts at the same place, since Spark's executors write ``spark_model/``. A
        loaded model whose ALSModel was never read copies its folder's ``spark_model/`` instead,
        without starting Spark.
        """
        self._check_fitted()
        if self._als_model is None and self._saved_at is not None:
            super().save(path)
            return
        if not is_alive(self._session):
            raise BackendError("save needs this model's Spark session, which was closed; save before close()")
        super().save(path)  # atomic: calls _write on a temporary folder

    def _write(self, folder: Path) -> None:
        if self._als_model is None and self._saved_at is not None:
            shutil.copytree(self._saved_at / SPARK_MODEL_DIR, folder / SPARK_MODEL_DIR)
        else:
            with backend_errors("save the ALS model"):
                self.model_.write().save(_uri(folder / SPARK_MODEL_DIR))
        super()._write(folder)

    def _saved_params(self) -> dict[str, Any]:
        return {**self.get_params(), "spark": None}  # a session cannot be saved; load takes one

    @classmethod
    def load(cls, path: str | Path, spark: SparkSession | None = None) -> Self:
        """Return the model written by `save` at ``path``, ready to predict without refitting.

        Only the numpy state is read: ``predict``, the in-memory ``top_n``, histories and similar
        movies never start Spark. What needs Spark's ``ALSModel`` (``model_``, Spark-side
        ``top_n``, ``tune``, a new ``fit``) starts a session then: ``spark``, or as with
        ``spark=None`` in the constructor a local one the model owns (`close` it when done),
        and reads ``spark_model/`` from ``path``, which must still hold it.
        """
        check_value(cls.__name__, "spark", spark, cls._parameter_constraints["spark"])
        path = Path(path)
        if not (path / SPARK_MODEL_DIR).is_dir():
            raise ModelFileError(f"{path}: no {SPARK_MODEL_DIR}/ folder; this is not a saved SparkALS")
        model = super().load(path)
        model.spark = spark
        model._saved_at = path.resolve()
        return model

    # -- a visitor's history ---------------------------------------------------------------------
    def _step(self) -> ALSStep:
        if self._fold_in is None:
            p, Y = self._plain_params(), np.asarray(self.item_factors_, dtype=np.float64)
            self._fold_in = ALSStep(Y, Y.T @ Y, p["reg_param"], p["implicit_prefs"], p["alpha"], p["nonnegative"])
        return self._fold_in

    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return every movie's score for a visitor: Spark's user step on the item factors (`_fold_in`)."""
        step = self._step()
        return step.Y @ step.factors(item_idx, self._history_ratings(ratings, len(item_idx)))

    def _history_contributions(self, item_idx, ratings, target_idx) -> np.ndarray:
        """Return ``u_j y_j' W y_i``, the exact split of the scores as implicit's ``explain`` makes it.

        ``nonnegative=True`` is not linear: the leave-one-out default is used.
        """
        if self.nonnegative:
            return super()._history_contributions(item_idx, ratings, target_idx)
        return self._step().contributions(item_idx, self._history_ratings(ratings, len(item_idx)), target_idx)

    def _similar_items(self, item: int) -> np.ndarray:
        """Return the cosine of every movie's factors with ``item``'s (as ``implicit``'s similar_items)."""
        return cosine_similarities(self.item_factors_, item)
