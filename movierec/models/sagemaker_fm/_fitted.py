"""``FittedFM``: what a fit of ``SageMakerFM`` leaves behind, and how it scores, serves, saves and closes.

``SageMakerFM`` (`_model`) holds the parameters and runs the backend that learns; this base
holds the ids, feature rows and weights it produced, so a loaded model scores as the fitted one did.
The weights may arrive late: a SageMaker training job's are read from its artifact the first time a
score or a save needs them. A SageMaker fit keeps its backend (``_remote``), through which
`deploy` serves the model from an endpoint and `close` deletes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from movierec._core.ids import index_ratings
from movierec._core.params import seed_sequence
from movierec._core.validation import ITEM, RATING, USER
from movierec.base import ArrayRecommender
from movierec.data import features as _features
from movierec.data.negatives import sample_negatives
from movierec.exceptions import BackendError
from movierec.models._fold_in import cosine_similarities
from movierec.models.sagemaker_fm import _trainer
from movierec.models.sagemaker_fm._fold_in import FMFoldIn, batches_per_epoch

if TYPE_CHECKING:  # pragma: no cover
    from movierec.sagemaker.backend import SageMakerBackend

__all__ = ["FittedFM"]


class FittedFM(ArrayRecommender):
    """A factorization machine over user rows and movie rows, scored from ``w0_``, ``w_`` and ``V_``.

    A (user, movie) pair's feature row is ``user_rows_[u] + item_rows_[i]`` (disjoint columns), so
    its score splits into a user part, a movie part and one dot product (``_trainer.block_terms``),
    and ``top_n`` scores the whole catalogue with one matrix product. The subclass holds the
    parameters read here (``predictor_type``: ``"binary_classifier"`` scores are probabilities;
    ``positive_rating`` and ``negatives_per_positive``: its labels and training rows;
    ``side_feature_value``, ``feature_dim``) and runs the backend that learns the weights.
    """

    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {
        "w": ("features",),
        "V": ("features", "k"),
        "user_rows": ("users", "features"),
        "item_rows": ("items", "features"),
    }

    predictor_type: str
    positive_rating: float | None
    negatives_per_positive: float
    random_state: int | None
    side_feature_value: float
    feature_dim: int | None
    #: The SageMaker backend of the last fit or tune (None for backend="local"): deploy, endpoint
    #: scoring and close go through it.
    _remote: SageMakerBackend | None = None
    #: A training job's weights, not read yet (its model.tar.gz is downloaded on first use).
    _pending_weights: _trainer.LearnedWeights | None = None
    #: What folding a visitor in needs (fixed terms, penalties), built on first use.
    _fold_in: FMFoldIn | None = None

    # -- ids and feature rows ------------------------------------------------------------------
    def _index(
        self, ratings: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map the ids and build the feature rows; return the user and movie indices of the ratings.

        Ids of the side frames are known too (scored from their side features alone).
        """
        user_ids, item_ids = (
            ratings[column] if side is None else pd.concat([ratings[column], side[column]], ignore_index=True)
            for column, side in ((USER, users), (ITEM, items))
        )
        self.users_, self.items_, user_idx, item_idx, self.seen_ = index_ratings(ratings, user_ids, item_ids)
        self.highest_rating_ = float(ratings[RATING].max())  # a history without ratings: each movie liked
        self.user_rows_, self.item_rows_, self.feature_names_ = _features.design(
            self.users_, self.items_, user_idx, item_idx, users, items,
            side_feature_value=self.side_feature_value, feature_dim=self.feature_dim,
        )
        return user_idx, item_idx

    def _design(self, user_idx: np.ndarray, item_idx: np.ndarray) -> Any:
        """Return the one-hot (plus side features) CSR rows of (user, movie) index pairs."""
        return _features.pair_rows(self.user_rows_, self.item_rows_, user_idx, item_idx)

    def _labelled(self, frame: pd.DataFrame, *, negatives: bool = False) -> tuple[Any, np.ndarray]:
        """Return the feature rows and training targets of ``frame``'s ratings (ids known to the model).

        With ``negatives`` and ``negatives_per_positive > 0``, rows of unrated pairs sampled from
        ``frame`` ([`movierec.data.negatives.sample_negatives`][movierec.data.negatives.sample_negatives]) follow, labelled 0.
        """
        user_idx, item_idx = self.users_.lookup(frame[USER]), self.items_.lookup(frame[ITEM])
        y = self.prediction_targets(frame[RATING].to_numpy(dtype=np.float64))
        if negatives and self.negatives_per_positive > 0:
            sampled = sample_negatives(
                frame, per_positive=self.negatives_per_positive, positive_rating=self.positive_rating,
                random_state=self._negatives_seed(),
            )
            user_idx = np.concatenate([user_idx, self.users_.lookup(sampled[USER])])
            item_idx = np.concatenate([item_idx, self.items_.lookup(sampled[ITEM])])
            y = np.concatenate([y, np.zeros(len(sampled))])
        return self._design(user_idx, item_idx), y

    def _negatives_seed(self) -> int | None:
        """Return the random_state of the negatives: from a child of ``random_state``'s SeedSequence.

        A child stream, so the trainer's own stream (initialization, shuffling) is the same with
        negatives as without.
        """
        if self.random_state is None:
            return None
        return int(seed_sequence(self.random_state).spawn(1)[0].generate_state(1)[0])

    def prediction_targets(self, ratings: np.ndarray) -> np.ndarray:
        """Return the training targets: the ratings, or for ``binary_classifier`` the 0/1 labels.

        A rated pair's label is 1 if its rating is at least ``positive_rating`` (every rated pair
        when it is None), else 0.
        """
        if self.predictor_type == "regressor":
            return ratings
        if self.positive_rating is None:
            return np.ones(len(ratings), dtype=np.float64)
        return (np.asarray(ratings) >= self.positive_rating).astype(np.float64)

    # -- weights -------------------------------------------------------------------------------
    def _use_weights(self, weights: _trainer.LearnedWeights) -> None:
        """Take what a backend's fit returned: now if local, on first use if a training job's."""
        if self._remote is None:  # in memory already: a divergence shows in fit
            self._set_weights(weights)
        else:
            self.training_job_ = self._remote.job_name
            self._pending_weights = weights

    def _set_weights(self, weights: _trainer.LearnedWeights) -> None:
        """Take ``w0, w, V`` from ``weights``; raise `BackendError` if training diverged.

        A training job's weights are downloaded here; its artifact's own check names the job.
        """
        with self._named_errors():
            w0 = float(weights.w0)
            w, V = np.asarray(weights.w, dtype=np.float64), np.asarray(weights.V, dtype=np.float64)
        parts = {"w0": np.array([w0]), "w": w, "V": V}
        counts = {name: int((~np.isfinite(values)).sum()) for name, values in parts.items()}
        if any(counts.values()):
            found = ", ".join(f"{n} of {parts[name].size} in {name}" for name, n in counts.items() if n)
            raise BackendError(
                f"{type(self).__name__}: NaN or infinite weights after training ({found}): lower the "
                "learning rates or set clip_gradient"
            )
        self.w0_, self.w_, self.V_ = w0, w, V
        self._prepare_scoring()

    def _ensure_weights(self) -> None:
        if self._pending_weights is not None:
            self._set_weights(self._pending_weights)  # downloads the training job's artifact
            self._pending_weights = None

    def _reset(self) -> None:
        super()._reset()
        self._remote = None
        self._pending_weights = None

    def _prepare_scoring(self) -> None:
        self._fold_in = None
        self._user_bias, self._user_vec = _trainer.block_terms(self.user_rows_, self.w_, self.V_)
        self._item_bias, self._item_vec = _trainer.block_terms(self.item_rows_, self.w_, self.V_)

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """Put the model's name in front of its backend's errors (the backend serves any caller)."""
        try:
            yield
        except BackendError as err:
            raise BackendError(f"{type(self).__name__}: {err}") from err

    # -- scoring -------------------------------------------------------------------------------
    def _endpoint(self) -> SageMakerBackend | None:
        """Return the SageMaker backend while it serves an endpoint (after `deploy`), else None."""
        return self._remote if self._remote is not None and self._remote.endpoint_name else None

    def _link(self, scores: np.ndarray) -> np.ndarray:
        return _trainer.sigmoid(scores) if self.predictor_type == "binary_classifier" else scores

    def _score_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        if (endpoint := self._endpoint()) is not None:  # FM's endpoint gives probabilities itself
            with self._named_errors():  # NaN from the endpoint is an error there, not a cold start
                return endpoint.invoke(self._design(user_idx, item_idx))
        self._ensure_weights()
        dot = np.einsum("nk,nk->n", self._user_vec[user_idx], self._item_vec[item_idx])
        return self._link(self.w0_ + self._user_bias[user_idx] + self._item_bias[item_idx] + dot)

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        if (endpoint := self._endpoint()) is not None:  # every (user, movie) pair, in requests
            n_items = self.item_rows_.shape[0]
            rows = self._design(np.repeat(user_idx, n_items), np.tile(np.arange(n_items), len(user_idx)))
            with self._named_errors():
                return endpoint.invoke(rows).reshape(len(user_idx), n_items)
        self._ensure_weights()
        scores = self._user_vec[user_idx] @ self._item_vec.T
        scores += self.w0_ + self._user_bias[user_idx][:, None] + self._item_bias[None, :]
        return self._link(scores)

    # -- a visitor's history ----------------------------------------------------------------------
    def _fold_in_state(self) -> FMFoldIn:
        if self._fold_in is None:
            self._ensure_weights()
            hp = _trainer.sagemaker_hyperparameters(self.get_params())
            batch = int(hp["mini_batch_size"])
            rows = self.seen_.nnz * (1.0 + float(self.negatives_per_positive))
            self._fold_in = FMFoldIn(
                self.w0_, self._item_bias, self._item_vec,
                binary=self.predictor_type == "binary_classifier", positive_rating=self.positive_rating,
                negatives_per_positive=float(self.negatives_per_positive), linear_wd=float(hp["linear_wd"]),
                factors_wd=float(hp["factors_wd"]), rescale=float(hp.get("rescale_grad") or 1.0 / batch),
                batches=batches_per_epoch(int(rows), batch),
            )
        return self._fold_in

    def _visitor_ratings(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray | None:
        # the classifier labels a history without ratings as all positive itself
        if self.predictor_type == "binary_classifier":
            return ratings
        return self._history_ratings(ratings, len(item_idx))

    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return every movie's score for a visitor: a new user column fitted to the history (`_fold_in`).

        Every other weight stays as fitted; the visitor has no user side features (zeros). Ridge
        for ``regressor``, Newton steps on the logistic loss for ``binary_classifier`` (scores are
        then probabilities, as `top_n`'s), with the penalty the trainer's weight decay implies.
        Scored from the weights in memory, even while an endpoint serves the model.
        """
        state = self._fold_in_state()
        theta = state.theta(item_idx, self._visitor_ratings(item_idx, ratings))
        return self._link(state.raw_scores(theta))

    def _history_contributions(self, item_idx, ratings, target_idx) -> np.ndarray:
        """Return the regressor's exact split of ``w_u + <v_u, vec_i>``; the classifier's is leave-one-out."""
        if self.predictor_type == "binary_classifier":
            return super()._history_contributions(item_idx, ratings, target_idx)
        return self._fold_in_state().contributions(item_idx, self._visitor_ratings(item_idx, ratings), target_idx)

    def _similar_items(self, item: int) -> np.ndarray:
        """Return the cosine of every movie's factor vector with ``item``'s.

        A movie's vector is its row of ``V`` (plus, with side features, its genres' rows times
        ``side_feature_value``: the ``row @ V`` its scores use, which movies known from side data
        only have too).
        """
        self._ensure_weights()
        return cosine_similarities(self._item_vec, item)

    # -- serving -------------------------------------------------------------------------------
    def deploy(self) -> str:
        """Serve the model from a SageMaker endpoint (``backend="sagemaker"``); return its name.

        Creates model, endpoint config and endpoint and waits for ``InService``; ``predict`` and
        ``top_n`` then call the endpoint (``invoke_batch_size`` rows a request) until `close`,
        which deletes all three. A full ``top_n`` asks the endpoint for every (user, movie) pair.
        """
        self._check_fitted()
        if self._remote is None:
            raise BackendError("deploy() needs a model fitted with backend='sagemaker' in this session")
        return self._remote.deploy(self.training_job_)

    def close(self) -> None:
        """Release what the backend created (nothing for ``backend="local"``); safe to call twice.

        With ``backend="sagemaker"`` it deletes the endpoint, its config and the model of
        `deploy`; the fitted model still scores, from the training job's artifact.
        """
        if self._remote is not None:
            self._remote.close()

    # -- persistence ---------------------------------------------------------------------------
    def _get_arrays(self) -> dict[str, np.ndarray]:
        self._ensure_weights()
        return {
            "w": self.w_,
            "V": self.V_,
            **_features.csr_arrays(self.user_rows_, "user_rows"),
            **_features.csr_arrays(self.item_rows_, "item_rows"),
        }

    def _get_extra(self) -> dict[str, Any]:
        self._ensure_weights()
        return {"w0": self.w0_, "feature_names": self.feature_names_}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.w_, self.V_, self.w0_ = arrays["w"], arrays["V"], float(extra["w0"])
        self.feature_names_ = list(extra["feature_names"])
        self.user_rows_ = _features.csr_from_arrays(arrays, "user_rows", (len(self.users_), len(self.w_)))
        self.item_rows_ = _features.csr_from_arrays(arrays, "item_rows", (len(self.items_), len(self.w_)))
        self._prepare_scoring()
