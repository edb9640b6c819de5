"""SageMakerFM: the model of SageMaker's built-in Factorization Machines, trained by a pluggable backend."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import pandas as pd

from movierec._validation import ITEM, RATING, USER, check_bool, check_choice, check_n, check_ratings
from movierec.adapters import _fm, _fm_features
from movierec._ids import index_ratings
from movierec.base import ArrayRecommender
from movierec.exceptions import BackendError, DataValidationError, MovieRecError

if TYPE_CHECKING:  # pragma: no cover
    from movierec.sagemaker import SageMakerConfig

__all__ = ["SageMakerFM"]

PredictorType = Literal["regressor", "binary_classifier"]
InitMethod = Literal["normal", "uniform", "constant"]

# Parameter constraints, checked once at the start of fit.
_POSITIVE_INTS = ("num_factors", "epochs", "mini_batch_size")
#: float parameter -> (rule, whether None is allowed); rules: ">=0", ">0", "finite"
_FLOATS = {
    **{f"{g}_lr": (">=0", False) for g in ("bias", "linear", "factors")},
    "bias_wd": (">=0", False),
    "linear_wd": (">=0", False),
    "factors_wd": (">=0", True),
    **{f"{g}_init_sigma": (">=0", False) for g in ("bias", "linear", "factors")},
    **{f"{g}_init_scale": (">=0", True) for g in ("bias", "linear", "factors")},
    **{f"{g}_init_value": ("finite", True) for g in ("bias", "linear", "factors")},
    "clip_gradient": (">0", True),
    "eps": (">0", True),
    "rescale_grad": (">0", True),
    "side_feature_value": (">0", False),
}
_CHOICES = {
    "predictor_type": ("regressor", "binary_classifier"),
    "bias_init_method": ("normal", "uniform", "constant"),
    "linear_init_method": ("normal", "uniform", "constant"),
    "factors_init_method": ("normal", "uniform", "constant"),
    "backend": ("local", "sagemaker"),
}
#: factors_wd=None resolves to this per predictor_type (chosen on validation splits of ml-100k).
_FACTORS_WD = {"regressor": 3e-4, "binary_classifier": 1.5e-4}
#: parameters that are not SageMaker hyperparameters and are not sent to a backend
_NOT_HYPERPARAMETERS = ("side_features", "side_feature_value", "backend", "sagemaker", "random_state")


def _local_backend(hyperparameters: dict[str, Any], random_state: Any, config: Any) -> _fm.FMBackend:
    return _fm.LocalTrainer(hyperparameters, random_state)


def _sagemaker_backend(hyperparameters: dict[str, Any], random_state: Any, config: Any) -> _fm.FMBackend:
    # its fit(X, y) returns the training job's name; the weights stay in its artifact until needed
    from movierec.sagemaker.backend import SageMakerBackend

    return SageMakerBackend(config, random_state=random_state, hyperparameters=hyperparameters)


#: backend name -> factory(hyperparameters, random_state, sagemaker_config) -> FMBackend
_BACKENDS: dict[str, Callable[[dict[str, Any], Any, Any], _fm.FMBackend]] = {
    "local": _local_backend,
    "sagemaker": _sagemaker_backend,
}


class SageMakerFM(ArrayRecommender):
    """Factorization machine over one-hot users and movies (plus optional side features).

    The model of SageMaker's built-in Factorization Machines algorithm, with its hyperparameter
    names and meanings, so a configuration moves between backends unchanged. A (user, movie) pair
    is the feature row ``x`` = one-hot user + one-hot movie (``feature_dim = n_users + n_movies``,
    2625 on all of ml-100k) [+ side features], scored ``w0 + x.w + sum_{f<g} <v_f, v_g> x_f x_g``; with
    one-hot features alone that is ``w0 + w_u + w_i + <v_u, v_i>``, a biased matrix factorization.

    ``backend="local"`` trains in numpy/scipy on this machine: mini-batch Adam (the optimizer the
    ``eps`` hyperparameter belongs to), MXNet semantics for ``rescale_grad``, ``*_wd`` and
    ``clip_gradient`` (``grad = rescale_grad * grad + wd * weight``, then clipped), and, as MXNet's
    sparse ``lazy_update``, only the rows of ``w`` and ``V`` a mini-batch touches are decayed and
    updated. ``backend="sagemaker"`` runs SageMaker's own algorithm instead (docs/sagemaker.md):
    ``fit`` uploads RecordIO-protobuf to S3 and runs a training job; ``predict`` / ``top_n``
    download its ``model.tar.gz`` once and score locally, or, after :meth:`deploy`, go through the
    endpoint; :meth:`close` (or leaving a ``with`` block) deletes the endpoint.

    Parameters
    ----------
    num_factors : int, default 64
        Dimension of the factor vectors (SageMaker: required; 64 is its suggested start).
    predictor_type : {"regressor", "binary_classifier"}, default "regressor"
        ``regressor`` learns the ratings (squared loss). ``binary_classifier`` learns the label
        ``rating >= 4`` (logistic loss), as the seed report and the AWS blog did; ``predict`` and
        ``top_n`` then give probabilities and :meth:`rmse` is measured against the 0/1 labels.
    epochs : int, default 20
        Passes over the data. SageMaker's default is 1, far too few here.
    mini_batch_size : int, default 1000
        Ratings per Adam step (SageMaker's default). Weight decay is applied once per step that
        touches a row, so the best ``*_wd`` depends on it: retune them when you change it.
    feature_dim : int or None, default None
        Columns of the design matrix. ``None`` computes it from the data (SageMaker requires it);
        an int is checked against that.
    bias_lr, linear_lr, factors_lr : float, default 0.1, 0.005, 0.005
        Adam learning rates of ``w0``, ``w`` and ``V``. SageMaker's defaults are 0.1, 0.001 and
        0.0001; the last two learn too slowly in 20 epochs.
    bias_wd, linear_wd : float, default 0.01, 1e-4
        Weight decay of ``w0`` and ``w`` (SageMaker's: 0.01 and 0.001; 0.001 over-shrinks the
        biases with 1000-rating batches).
    factors_wd : float or None, default None
        Weight decay of ``V``. ``None`` means 3e-4 for ``regressor`` and 1.5e-4 for
        ``binary_classifier`` (the logistic gradients are smaller, so the same decay would wipe the
        factors out). SageMaker's default, 1e-5, overfits badly at these learning rates.
    bias_init_method, linear_init_method, factors_init_method : {"normal", "uniform", "constant"}
        Initialization of ``w0``, ``w``, ``V`` (SageMaker's default ``normal`` for all three) with
        ``*_init_sigma`` (normal; defaults 0.01, 0.01, 0.001 as SageMaker), ``*_init_scale``
        (uniform, range ``[-scale, scale]``) or ``*_init_value`` (constant). The scale or value
        is required when its method is chosen.
    clip_gradient : float or None, default None
        Clip each gradient entry to ``[-clip_gradient, clip_gradient]``; None: no clipping.
    eps : float or None, default None
        Adam's epsilon; None means 1e-8.
    rescale_grad : float or None, default None
        Multiplies the summed mini-batch gradient; None means ``1 / batch size`` (the mean).
    side_features : bool, default False
        Add user features (age bucket, gender, occupation) and movie genres from the ``users`` /
        ``items`` frames given to :meth:`fit`. See *Cold start*.
    side_feature_value : float, default 0.1
        The value side features take in a feature row (ids take 1). Not a SageMaker
        hyperparameter: it shapes the data. Side features shared by many ratings get little
        weight decay next to their gradient, and at 1 they overfit: on a validation split of
        ml-100k u1.train, RMSE 0.945 against 0.910 without them. 0.1 gives 0.906 on pairs with
        known ids and 0.87 on movies unseen in training. Larger values favour cold start, smaller
        ones known pairs.
    backend : {"local", "sagemaker"}, default "local"
        Who trains: numpy here, or a SageMaker training job (needs ``sagemaker``).
    sagemaker : movierec.sagemaker.SageMakerConfig or None
        Bucket, prefix, region, role, instance types and endpoint of ``backend="sagemaker"``;
        ignored by ``backend="local"``.
    random_state : int, numpy Generator or None
        Seeds the initialization and the shuffling; an int makes ``fit`` repeatable.

    Attributes
    ----------
    w0_ : float
    w_ : ndarray of shape (feature_dim,)
    V_ : ndarray of shape (feature_dim, num_factors)
        The learned parameters, as SageMaker's model artifact holds them.
    feature_names_ : list of str
        One name per column: ``user=<id>``, ``movie=<id>``, then ``age=25-34``, ``gender=F``,
        ``occupation=writer``, ``genre=Action`` when side features are on.
    users_, items_ : IdIndex
        Every user and movie the model can score.
    user_rows_, item_rows_ : scipy.sparse.csr_matrix
        Each user's and movie's part of the feature row (a pair's row is their sum), by index.
    training_job_ : str
        With ``backend="sagemaker"``: the training job whose model this is (the best job of a tuning
        job after :meth:`tune`). ``w0_``, ``w_``, ``V_`` are read from its artifact on first use.

    Cold start
    ----------
    With ``side_features=False`` a user or movie without ratings in ``fit`` cannot be scored:
    ``predict`` gives NaN and ``top_n`` skips it, as every movierec model does. With
    ``side_features=True``, users in ``users`` and movies in ``items`` are known even without
    ratings: they have no one-hot column, so they are scored from their side features alone
    (``w0`` + the learned weights and factors of their age bucket, gender, occupation or genres);
    ``top_n`` recommends to them and may recommend such movies. An id in neither the ratings nor
    the side frames still gives NaN. Side data must be given to ``fit``: to score a user who signed
    up since, fit again with them in ``users``.

    Examples
    --------
    >>> from movierec import SageMakerFM, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> SageMakerFM(random_state=0).fit(fold.train).rmse(fold.test)  # doctest: +SKIP
    0.921
    """

    def __init__(
        self,
        *,
        num_factors: int = 64,
        predictor_type: PredictorType = "regressor",
        epochs: int = 20,
        mini_batch_size: int = 1000,
        feature_dim: int | None = None,
        bias_lr: float = 0.1,
        linear_lr: float = 0.005,
        factors_lr: float = 0.005,
        bias_wd: float = 0.01,
        linear_wd: float = 1e-4,
        factors_wd: float | None = None,
        bias_init_method: InitMethod = "normal",
        bias_init_sigma: float = 0.01,
        bias_init_scale: float | None = None,
        bias_init_value: float | None = None,
        linear_init_method: InitMethod = "normal",
        linear_init_sigma: float = 0.01,
        linear_init_scale: float | None = None,
        linear_init_value: float | None = None,
        factors_init_method: InitMethod = "normal",
        factors_init_sigma: float = 0.001,
        factors_init_scale: float | None = None,
        factors_init_value: float | None = None,
        clip_gradient: float | None = None,
        eps: float | None = None,
        rescale_grad: float | None = None,
        side_features: bool = False,
        side_feature_value: float = 0.1,
        backend: Literal["local", "sagemaker"] = "local",
        sagemaker: SageMakerConfig | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.num_factors = num_factors
        self.predictor_type = predictor_type
        self.epochs = epochs
        self.mini_batch_size = mini_batch_size
        self.feature_dim = feature_dim
        self.bias_lr = bias_lr
        self.linear_lr = linear_lr
        self.factors_lr = factors_lr
        self.bias_wd = bias_wd
        self.linear_wd = linear_wd
        self.factors_wd = factors_wd
        self.bias_init_method = bias_init_method
        self.bias_init_sigma = bias_init_sigma
        self.bias_init_scale = bias_init_scale
        self.bias_init_value = bias_init_value
        self.linear_init_method = linear_init_method
        self.linear_init_sigma = linear_init_sigma
        self.linear_init_scale = linear_init_scale
        self.linear_init_value = linear_init_value
        self.factors_init_method = factors_init_method
        self.factors_init_sigma = factors_init_sigma
        self.factors_init_scale = factors_init_scale
        self.factors_init_value = factors_init_value
        self.clip_gradient = clip_gradient
        self.eps = eps
        self.rescale_grad = rescale_grad
        self.side_features = side_features
        self.side_feature_value = side_feature_value
        self.backend = backend
        self.sagemaker = sagemaker
        self.random_state = random_state

    # -- hyperparameters ------------------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """Return the SageMaker hyperparameters a backend trains with: defaults resolved, unset omitted.

        ``feature_dim`` is the fitted design's once the model is fitted. Raises
        :class:`DataValidationError` if a parameter is out of range.
        """
        hp = self._resolved_hyperparameters()
        if self._is_fitted():
            hp["feature_dim"] = len(self.feature_names_)
        return hp

    def _resolved_hyperparameters(self) -> dict[str, Any]:
        self._check_params()
        hp = {k: v for k, v in self.get_params().items() if k not in _NOT_HYPERPARAMETERS}
        if hp["factors_wd"] is None:
            hp["factors_wd"] = _FACTORS_WD[self.predictor_type]
        return {k: v for k, v in hp.items() if v is not None}

    def _check_params(self) -> None:
        for name in _POSITIVE_INTS:
            check_n(getattr(self, name), name)
        if self.feature_dim is not None:
            check_n(self.feature_dim, "feature_dim")
        for name, (rule, optional) in _FLOATS.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not np.isfinite(value)
                or (rule == ">=0" and value < 0)
                or (rule == ">0" and value <= 0)
            ):
                wanted = {">=0": "a float >= 0", ">0": "a float > 0", "finite": "a finite float"}[rule]
                raise DataValidationError(
                    f"{name} must be {wanted}{' or None' if optional else ''}, got {value!r}"
                )
        check_bool(self.side_features, "side_features")
        for name, choices in _CHOICES.items():
            check_choice(getattr(self, name), name, choices)
        for group in ("bias", "linear", "factors"):
            method = getattr(self, f"{group}_init_method")
            needed = {"uniform": f"{group}_init_scale", "constant": f"{group}_init_value"}.get(method)
            if needed and getattr(self, needed) is None:
                raise DataValidationError(f"{group}_init_method={method!r} needs {needed}, which is None")
        if self.backend == "sagemaker":
            from movierec.sagemaker import SageMakerConfig

            if not isinstance(self.sagemaker, SageMakerConfig):
                raise DataValidationError(
                    "backend='sagemaker' needs sagemaker=movierec.sagemaker.SageMakerConfig(bucket, role_arn, ...), "
                    f"got {self.sagemaker!r}"
                )
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, np.random.Generator)
            or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0)
        ):
            raise DataValidationError(
                f"random_state must be None, an int >= 0 or a numpy Generator, got {rs!r}"
            )

    # -- fit ---------------------------------------------------------------------------------------
    def fit(
        self, ratings: pd.DataFrame, *, users: pd.DataFrame | None = None, items: pd.DataFrame | None = None
    ) -> Self:
        """Learn from ``ratings`` (and, with ``side_features=True``, ``users`` / ``items``); return self.

        Parameters
        ----------
        ratings : pandas.DataFrame
            Columns userId, movieId, rating[, timestamp].
        users : pandas.DataFrame, optional
            ``userId`` and any of ``age``, ``gender``, ``occupation`` (``MovieLens.users``).
        items : pandas.DataFrame, optional
            ``movieId`` and boolean genre columns or a '|'-separated ``genres`` column
            (``MovieLens.items``).

        Raises
        ------
        DataValidationError
            Bad ratings or parameters; side frames given with ``side_features=False`` or neither given
            with ``side_features=True``; ``feature_dim`` set and not what the data gives.
        BackendError
            The backend failed or is not available, or training diverged (NaN weights).
        """
        check_ratings(ratings)
        self._check_params()
        _fm_features.check_side_frames(self, users, items)
        self.close()
        self._reset()
        try:
            self._fit_all(ratings, users, items)
        except BaseException:
            self._reset()  # no half-fitted model
            raise
        return self

    def _fit_all(
        self, ratings: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None, *, train: bool = True
    ) -> None:
        user_ids = (
            ratings[USER] if users is None else pd.concat([ratings[USER], users[USER]], ignore_index=True)
        )
        item_ids = (
            ratings[ITEM] if items is None else pd.concat([ratings[ITEM], items[ITEM]], ignore_index=True)
        )
        self.users_, self.items_, user_idx, item_idx, self.seen_ = index_ratings(ratings, user_ids, item_ids)
        self.user_rows_, self.item_rows_, self.feature_names_ = _fm_features.design(
            self, user_idx, item_idx, users, items
        )
        if train:  # train=False: ids, seen pairs and design only (a SageMaker tuning job trains)
            self._fit_indexed(user_idx, item_idx, ratings[RATING].to_numpy(dtype=np.float64), ratings)

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        X, y = self._design(user_idx, item_idx), self.prediction_targets(ratings)
        hyperparameters = dict(self._resolved_hyperparameters(), feature_dim=X.shape[1])
        trainer = _BACKENDS[self.backend](hyperparameters, self.random_state, self.sagemaker)
        self._trainer = trainer
        try:
            weights = trainer.fit(X, y)
        except Exception as err:
            self.close()  # a remote backend deletes what it created
            if isinstance(err, MovieRecError):
                raise
            raise BackendError(f"the {self.backend!r} backend failed to train: {err}") from err
        if isinstance(weights, str):  # a SageMaker training job: weights read on first use
            self.training_job_ = weights
            return
        self._set_weights(weights)

    def _set_weights(self, weights: Any) -> None:
        w, V = np.asarray(weights.w, dtype=np.float64), np.asarray(weights.V, dtype=np.float64)
        if not (np.isfinite(weights.w0) and np.isfinite(w).all() and np.isfinite(V).all()):
            raise BackendError(
                "NaN or infinite weights after training: lower the learning rates or set clip_gradient"
            )
        self.w0_, self.w_, self.V_ = float(weights.w0), w, V
        self._prepare_scoring()

    def _ensure_weights(self) -> None:
        """Read ``w0, w, V`` from the SageMaker job's ``model.tar.gz`` the first time they are needed."""
        if "V_" in self.__dict__:
            return
        trainer = self.__dict__.get("_trainer")
        if not hasattr(trainer, "load_artifact"):
            raise BackendError(f"the weights of {self.training_job_!r} cannot be read: fit again")
        self._set_weights(trainer.load_artifact(feature_dim=len(self.feature_names_)))

    def _endpoint(self) -> Any:
        """Return the SageMaker backend when it has a live endpoint (after :meth:`deploy`), else None."""
        trainer = self.__dict__.get("_trainer")
        return trainer if getattr(trainer, "endpoint_name", None) else None

    def _prepare_scoring(self) -> None:
        self._user_bias, self._user_vec = _fm.block_terms(self.user_rows_, self.w_, self.V_)
        self._item_bias, self._item_vec = _fm.block_terms(self.item_rows_, self.w_, self.V_)

    # -- scoring -----------------------------------------------------------------------------------
    def _link(self, scores: np.ndarray) -> np.ndarray:
        return _fm.sigmoid(scores) if self.predictor_type == "binary_classifier" else scores

    def _score_pairs(self, user_idx, item_idx):
        if (endpoint := self._endpoint()) is not None:  # FM's endpoint gives probabilities itself
            return endpoint.invoke((self.user_rows_[user_idx] + self.item_rows_[item_idx]).tocsr())
        self._ensure_weights()
        dot = np.einsum("nk,nk->n", self._user_vec[user_idx], self._item_vec[item_idx])
        return self._link(self.w0_ + self._user_bias[user_idx] + self._item_bias[item_idx] + dot)

    def _score_users(self, user_idx):
        if (endpoint := self._endpoint()) is not None:
            n_items = self.item_rows_.shape[0]
            rows = self.user_rows_[np.repeat(user_idx, n_items)] + self.item_rows_[np.tile(np.arange(n_items), len(user_idx))]
            return endpoint.invoke(rows.tocsr()).reshape(len(user_idx), n_items)
        self._ensure_weights()
        scores = self._user_vec[user_idx] @ self._item_vec.T
        scores += self.w0_ + self._user_bias[user_idx][:, None] + self._item_bias[None, :]
        return self._link(scores)

    def _design(self, user_idx: np.ndarray, item_idx: np.ndarray) -> Any:
        """Return the one-hot (plus side features) CSR rows of (user, movie) index pairs."""
        return (self.user_rows_[user_idx] + self.item_rows_[item_idx]).tocsr()

    def prediction_targets(self, ratings: np.ndarray) -> np.ndarray:
        """Return the training targets: the ratings, or for ``binary_classifier`` 1 for rating >= 4 else 0."""
        if self.predictor_type == "regressor":
            return ratings
        return (np.asarray(ratings) >= _fm.LIKE_THRESHOLD).astype(np.float64)

    # -- tuning ------------------------------------------------------------------------------------
    def tune(
        self,
        ratings: pd.DataFrame,
        ranges: Mapping[str, tuple[float, float] | list[Any]],
        *,
        max_jobs: int = 10,
        objective: str | None = None,
        validation_size: float = 0.2,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
    ) -> dict[str, Any]:
        """Return a random search of hyperparameters on a validation split, after refitting on all data.

        The local counterpart of a SageMaker tuning job. ``ratings`` is split per user with
        :func:`movierec.split.stratified_split` (``validation_size``, seeded by ``random_state``);
        each of ``max_jobs`` jobs draws every hyperparameter in ``ranges``, fits on the training part
        and is scored on the validation part (pairs it cannot score are left out). The best
        parameters are then set on this model, which is fitted on all of ``ratings``.

        Parameters
        ----------
        ranges : mapping
            Hyperparameter name -> ``(low, high)`` or a list of values. ``num_factors``, ``epochs``
            and ``mini_batch_size`` draw integers uniformly in ``[low, high]`` (the seed searched
            ``mini_batch_size`` 50-3000 and ``epochs`` 50-500); floats draw log-uniformly when
            ``low > 0``, else uniformly; a list draws one of its values.
        objective : str, optional
            ``"test:rmse"`` (minimize; the default for ``regressor``),
            ``"test:binary_classification_accuracy"`` (maximize; the default for
            ``binary_classifier``, threshold 0.5) or ``"test:binary_classification_cross_entropy"``
            (minimize).

        Returns
        -------
        dict
            ``params`` (the best drawn values), ``objective``, ``value`` (its validation score) and
            ``results`` (a DataFrame: one row per job, the drawn values and the score).
        """
        from movierec.adapters import _fm_tune  # imported here: _fm_tune imports this module

        return _fm_tune.tune(
            self, ratings, ranges, max_jobs=max_jobs, objective=objective,
            validation_size=validation_size, users=users, items=items,
        )

    # -- lifecycle and persistence ---------------------------------------------------------------
    def deploy(self) -> str:
        """Serve the model from a SageMaker endpoint (``backend="sagemaker"``); return its name.

        Creates model, endpoint config and endpoint and waits for ``InService``; ``predict`` and
        ``top_n`` then call the endpoint (``invoke_batch_size`` rows a request) until :meth:`close`,
        which deletes all three. A full ``top_n`` asks the endpoint for every (user, movie) pair.
        """
        self._check_fitted()
        trainer = self.__dict__.get("_trainer")
        if not hasattr(trainer, "deploy"):
            raise BackendError("deploy() needs a model fitted with backend='sagemaker' in this session")
        return trainer.deploy()

    def close(self) -> None:
        """Release what the backend created (nothing for ``backend="local"``); safe to call twice.

        With ``backend="sagemaker"`` it deletes the endpoint, its config and the model of
        :meth:`deploy`; the fitted model still scores, from the training job's artifact.
        """
        trainer = self.__dict__.get("_trainer")
        if trainer is not None:
            trainer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get_arrays(self) -> dict[str, np.ndarray]:
        self._ensure_weights()
        arrays = {"w": self.w_, "V": self.V_}
        for name in ("user_rows", "item_rows"):
            matrix = getattr(self, f"{name}_")
            arrays.update(
                {
                    f"{name}_data": matrix.data,
                    f"{name}_indices": matrix.indices,
                    f"{name}_indptr": matrix.indptr,
                }
            )
        return arrays

    def _get_extra(self) -> dict[str, Any]:
        self._ensure_weights()
        return {"w0": self.w0_, "feature_names": self.feature_names_}

    def _set_arrays(self, arrays, extra) -> None:
        from scipy import sparse

        self.w_, self.V_, self.w0_ = arrays["w"], arrays["V"], float(extra["w0"])
        self.feature_names_ = list(extra["feature_names"])
        for name, n_rows in (("user_rows", len(self.users_)), ("item_rows", len(self.items_))):
            matrix = sparse.csr_matrix(
                (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=(n_rows, len(self.w_)),
            )
            setattr(self, f"{name}_", matrix)
        self._prepare_scoring()

