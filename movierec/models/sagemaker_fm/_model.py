"""SageMakerFM: the model of SageMaker's built-in Factorization Machines, trained by a pluggable backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from movierec._core.params import Bool, Constraint, Instance, Int, Options, Real, Seed
from movierec._core.validation import RATING, check_ratings
from movierec.base import TuneResult
from movierec.data import features as _features
from movierec.exceptions import BackendError, InvalidParameterError, MovieRecError
from movierec.models.sagemaker_fm import _trainer, _tune
from movierec.models.sagemaker_fm._fitted import FittedFM
from movierec.sagemaker.backend import SageMakerBackend
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["SageMakerFM"]

PredictorType = Literal["regressor", "binary_classifier"]
InitMethod = Literal["normal", "uniform", "constant"]

_GROUPS = ("bias", "linear", "factors")  # the three parameter groups: w0, w, V
_INIT_METHOD = Options(("normal", "uniform", "constant"))


class SageMakerFM(FittedFM):
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
    updated; the arithmetic is float32, as SageMaker's (the fitted weights are float64).
    ``backend="sagemaker"`` runs SageMaker's own algorithm instead (docs/sagemaker.md):
    ``fit`` uploads RecordIO-protobuf to S3 and runs a training job; ``predict`` / ``top_n``
    download its ``model.tar.gz`` once and score locally, or, after `deploy`, go through the
    endpoint; `close` (or leaving a ``with`` block) deletes the endpoint.

    Parameters
    ----------
    num_factors : int, default 64
        Dimension of the factor vectors (SageMaker: required; 64 is its suggested start).
    predictor_type : {"regressor", "binary_classifier"}, default "regressor"
        ``regressor`` learns the ratings (squared loss). ``binary_classifier`` learns the label
        ``rating >= positive_rating`` (logistic loss), as AWS's own walkthrough does;
        ``predict`` and ``top_n`` then give probabilities and `rmse` is measured against the
        0/1 labels of the rated pairs.
    positive_rating : float or None, default 4.0
        ``binary_classifier`` only: a rated pair is a positive (label 1) if its rating is at least
        this, else a negative (label 0). None: every rated pair is a positive (implicit feedback;
        then use ``negatives_per_positive``, or the model sees no negatives).
    negatives_per_positive : float, default 0.0
        ``binary_classifier`` only: ``fit`` also trains on this many unrated (user, movie) pairs
        per positive, labelled 0 ([`movierec.data.negatives.sample_negatives`][movierec.data.negatives.sample_negatives], uniform over each
        user's unrated movies, seeded by a child of ``random_state``). This turns the classifier
        into a top-N ranker of seen against unseen. ``top_n`` still leaves out only the rated
        movies; the SageMaker backend receives the same rows. 0: ratings only.
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
        ``items`` frames given to `fit`. See *Cold start*.
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
    random_state : int or None
        Seeds the initialization and the shuffling (and, in `tune`, the split and the draws);
        an int in ``[0, 2**32 - 1]`` makes ``fit`` repeatable.

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
        job after `tune`). ``w0_``, ``w_``, ``V_`` are read from its artifact on first use.

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

    #: Checked once at the start of fit and tune (movierec._core.params); rules across parameters are in
    #: _validate_params.
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "num_factors": Int(1),
        "predictor_type": Options(("regressor", "binary_classifier")),
        "positive_rating": Real(none=True),
        "negatives_per_positive": Real(0),
        "epochs": Int(1),
        "mini_batch_size": Int(1),
        "feature_dim": Int(1, none=True),
        **{f"{group}_lr": Real(0) for group in _GROUPS},
        "bias_wd": Real(0),
        "linear_wd": Real(0),
        "factors_wd": Real(0, none=True),
        **{f"{group}_init_method": _INIT_METHOD for group in _GROUPS},
        **{f"{group}_init_sigma": Real(0) for group in _GROUPS},
        **{f"{group}_init_scale": Real(0, none=True) for group in _GROUPS},
        **{f"{group}_init_value": Real(none=True) for group in _GROUPS},
        "clip_gradient": Real(0, open_low=True, none=True),
        "eps": Real(0, open_low=True, none=True),
        "rescale_grad": Real(0, open_low=True, none=True),
        "side_features": Bool(),
        "side_feature_value": Real(0, open_low=True),
        "backend": Options(("local", "sagemaker")),
        "sagemaker": Instance((SageMakerConfig,), "a movierec.sagemaker.SageMakerConfig", none=True),
        "random_state": Seed(),
    }
    def __init__(
        self,
        *,
        num_factors: int = 64,
        predictor_type: PredictorType = "regressor",
        positive_rating: float | None = 4.0,
        negatives_per_positive: float = 0.0,
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
        random_state: int | None = None,
    ) -> None:
        self.num_factors = num_factors
        self.predictor_type = predictor_type
        self.positive_rating = positive_rating
        self.negatives_per_positive = negatives_per_positive
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
        [`InvalidParameterError`][movierec.exceptions.InvalidParameterError] if a parameter is out of range.
        """
        self._validate_params()
        hp = _trainer.sagemaker_hyperparameters(self.get_params())
        if self._is_fitted():
            hp["feature_dim"] = len(self.feature_names_)
        return hp

    def _validate_params(self) -> dict[str, Any]:
        """Return the checked parameters; also check the rules that tie two parameters together."""
        params = super()._validate_params()
        for group in _GROUPS:
            method = params[f"{group}_init_method"]
            needed = {"uniform": f"{group}_init_scale", "constant": f"{group}_init_value"}.get(method)
            if needed and params[needed] is None:
                raise InvalidParameterError(
                    f"SageMakerFM: {group}_init_method={method!r} needs {needed}, which is None"
                )
        if params["negatives_per_positive"] > 0 and params["predictor_type"] != "binary_classifier":
            raise InvalidParameterError(
                f"SageMakerFM: negatives_per_positive={params['negatives_per_positive']!r} needs "
                f"predictor_type='binary_classifier', got {params['predictor_type']!r}"
            )
        if params["backend"] == "sagemaker" and params["sagemaker"] is None:
            raise InvalidParameterError(
                "SageMakerFM: backend='sagemaker' needs sagemaker=movierec.sagemaker.SageMakerConfig(bucket, "
                "role_arn, ...), got None"
            )
        return params

    # -- fit ---------------------------------------------------------------------------------------
    def uses_side_data(self) -> bool:
        """Return ``side_features``: with it, `fit` takes ``users=`` / ``items=`` frames."""
        return bool(self.side_features)

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
        InvalidParameterError
            A parameter is out of range, or two disagree (an init method without its scale or
            value, ``negatives_per_positive`` with a regressor, ``backend="sagemaker"`` without a
            config).
        DataValidationError
            Bad ratings; side frames given with ``side_features=False`` or neither given with
            ``side_features=True``; ``feature_dim`` set and not what the data gives.
        BackendError
            The backend failed or is not available, or training diverged (NaN weights).
        """
        check_ratings(ratings)
        self._validate_params()
        rated = ratings[RATING].to_numpy(dtype=np.float64)
        self._from_scratch(ratings, users, items, lambda u, i: self._fit_indexed(u, i, rated, ratings))
        return self

    def _from_scratch(self, ratings, users, items, learn: Callable[[np.ndarray, np.ndarray], Any]) -> Any:
        """Forget the last fit, index ``ratings`` and the side frames; return ``learn(user_idx, item_idx)``.

        On any failure the backend deletes what it created and the model is left unfitted.
        """
        _features.check_side_frames(self.side_features, users, items)
        self.close()
        self._reset()
        try:
            return learn(*self._index(ratings, users, items))
        except BaseException:
            self.close()
            self._reset()
            raise

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        X, y = self._labelled(frame, negatives=True)  # the rated pairs, then sampled negatives
        trainer = self._start_backend(X.shape[1])
        try:
            weights = trainer.fit(X, y)
        except MovieRecError:
            raise
        except Exception as err:
            raise BackendError(f"the {self.backend!r} backend failed to train: {err}") from err
        self._use_weights(weights)

    def _start_backend(self, feature_dim: int) -> _trainer.FMBackend:
        """Return the trainer ``backend`` names, for a design of ``feature_dim`` columns."""
        if self.backend == "local":
            return _trainer.LocalTrainer(self._hyperparameters_for(feature_dim), self.random_state)
        return self._start_remote(feature_dim)

    def _start_remote(self, feature_dim: int) -> SageMakerBackend:
        """Return a new SageMaker backend, kept as ``_remote`` for deploy, endpoint scoring and close."""
        self._remote = SageMakerBackend(
            self.sagemaker,
            random_state=self.random_state,
            hyperparameters=self._hyperparameters_for(feature_dim),
        )
        return self._remote

    def _hyperparameters_for(self, feature_dim: int) -> dict[str, Any]:
        return dict(_trainer.sagemaker_hyperparameters(self.get_params()), feature_dim=feature_dim)

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
    ) -> TuneResult:
        """Return the best hyperparameters of a search on a validation split; the model is fitted with them.

        ``ratings`` is split per user ([`movierec.data.split.stratified_split`][movierec.data.split.stratified_split], ``validation_size``,
        seeded by ``random_state``). ``backend="local"``: each of ``max_jobs`` jobs draws every
        hyperparameter in ``ranges``, fits on the training part and is scored on the validation part
        (pairs it cannot score are left out); the model is then fitted on all of ``ratings`` with the
        best values. ``backend="sagemaker"``: one tuning job (training part: ``train`` channel,
        validation part: ``test`` channel, two jobs at once); its best training job, trained on the
        training part, becomes the model (``fit(ratings)`` retrains on everything).

        Parameters
        ----------
        ranges : mapping
            Hyperparameter name -> ``(low, high)`` or a list of values. ``num_factors``, ``epochs``
            and ``mini_batch_size`` draw integers uniformly in ``[low, high]`` (for example
            ``mini_batch_size`` 50-3000 and ``epochs`` 50-500); floats draw log-uniformly when
            ``low > 0``, else uniformly; a list draws one of its values.
        objective : str, optional
            ``"test:rmse"`` (minimize; the default for ``regressor``),
            ``"test:binary_classification_accuracy"`` (maximize; the default for
            ``binary_classifier``, threshold 0.5) or ``"test:binary_classification_cross_entropy"``.

        Returns
        -------
        TuneResult
            ``metric`` is the objective; ``results`` has one row per job (with SageMaker, the best
            job only, and its ``training_job``): the drawn values and the score.

        Raises
        ------
        InvalidParameterError
            A bad model parameter, ``max_jobs``, ``validation_size``, ``objective`` or ``ranges``.
        """
        check_ratings(ratings)
        self._validate_params()
        search = _tune.plan(
            self, ratings, ranges, max_jobs=max_jobs, objective=objective, validation_size=validation_size
        )
        if self.backend == "local":
            return _tune.random_search(self, ratings, search, users=users, items=items)
        return self._from_scratch(ratings, users, items, lambda _u, _i: self._tuning_job(search))

    def _tuning_job(self, search: _tune.Search) -> TuneResult:
        (X_train, y_train) = self._labelled(search.train, negatives=True)
        (X_valid, y_valid) = self._labelled(search.valid)
        outcome = self._start_remote(X_train.shape[1]).tune(
            X_train, y_train, X_valid, y_valid, ranges=search.typed_ranges(), objective=search.objective,
            max_jobs=search.max_jobs, max_parallel_jobs=min(2, search.max_jobs),
        )
        result = _tune.tuning_job_result(search, outcome)
        self.set_params(**result.best_params)
        self._use_weights(outcome.weights)
        return result
