"""Folding a visitor into the factor models: the least-squares math, agreement with the fit, lazy Spark.

The agreement figures (ml-100k u1, every fourth user, each user's own training ratings as the
history, seen movies left out) were measured on this code; the thresholds sit a little below them:

| model | top-10 overlap with top_n | Spearman rank correlation (mean / min) |
| --- | --- | --- |
| SparkALS explicit / implicit | 1.0 (factors equal to float32 rounding, max score gap 3e-7) | 1.0 |
| SurpriseSVD | 0.48 | 0.89 / 0.77 (SGD stops before its fixed point) |
| SageMakerFM regressor | 0.95 | 0.999 / 0.99 |
| SageMakerFM binary, 1 negative per positive | 0.92 | 0.998 / 0.99 |
| MyFMBayes | 0.90 | 0.997 / 0.98 |
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize

from movierec.models._fold_in import (
    als_contributions,
    als_user_step,
    cosine_similarities,
    logistic_fold_in,
    nonnegative_solve,
    ridge_contributions,
    ridge_fold_in,
)
from movierec.testing import synthetic_ratings

FINITE = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


def matrices(rows: int, cols: int):
    return arrays(np.float64, (rows, cols), elements=FINITE)


# -- the math ----------------------------------------------------------------------------------
@settings(deadline=None, max_examples=50)
@given(data=st.data(), m=st.integers(1, 8), k=st.integers(1, 4), bias=st.booleans(), lam=st.floats(0.01, 5))
def test_ridge_fold_in_solves_the_augmented_least_squares(data, m, k, bias, lam):
    Q, t = data.draw(matrices(m, k)), data.draw(arrays(np.float64, m, elements=FINITE))
    b, p = ridge_fold_in(Q, t, lam, bias_penalty=lam if bias else None)
    X = np.column_stack([np.ones(m), Q]) if bias else Q
    stacked = np.vstack([X, np.sqrt(lam) * np.eye(X.shape[1])])
    expected = np.linalg.lstsq(stacked, np.concatenate([t, np.zeros(X.shape[1])]), rcond=None)[0]
    np.testing.assert_allclose(np.concatenate([[b], p]) if bias else p, expected, atol=1e-8)
    if not bias:
        assert b == 0.0
    targets = data.draw(matrices(3, k))
    parts = ridge_contributions(Q, t, lam, targets, bias_penalty=lam if bias else None)
    assert parts.shape == (m, 3)
    np.testing.assert_allclose(parts.sum(axis=0), b + targets @ p, atol=1e-8)


@settings(deadline=None, max_examples=50)
@given(data=st.data(), n_items=st.integers(3, 12), k=st.integers(1, 4), implicit=st.booleans())
def test_als_contributions_sum_to_the_fold_in_score(data, n_items, k, implicit):
    Y = data.draw(matrices(n_items, k))
    m = data.draw(st.integers(1, n_items))
    idx = np.arange(m)
    ratings = data.draw(arrays(np.float64, m, elements=st.floats(0.5, 5)))
    extra, pull = (0.3 * ratings, 1 + 0.3 * ratings) if implicit else (np.ones(m), ratings)
    gram = Y.T @ Y if implicit else None
    x = als_user_step(Y, gram, idx, extra, pull, 0.1 * m)
    A = (Y[idx].T * extra) @ Y[idx] + 0.1 * m * np.eye(k) + (0 if gram is None else gram)
    np.testing.assert_allclose(A @ x, Y[idx].T @ pull, atol=1e-8)
    parts = als_contributions(Y, gram, idx, extra, pull, 0.1 * m, np.arange(n_items))
    np.testing.assert_allclose(parts.sum(axis=0), Y @ x, atol=1e-8)


@settings(deadline=None, max_examples=50)
@given(data=st.data(), k=st.integers(1, 5))
def test_nonnegative_solve_meets_the_kkt_conditions(data, k):
    M = data.draw(matrices(k + 3, k))
    A, b = M.T @ M + 0.5 * np.eye(k), data.draw(arrays(np.float64, k, elements=FINITE))
    x = nonnegative_solve(A, b)
    gradient = A @ x - b
    assert (x >= 0).all()
    assert (gradient >= -1e-8).all()  # no descent direction into the feasible set
    np.testing.assert_allclose(x * gradient, 0, atol=1e-7)


@settings(deadline=None, max_examples=40)
@given(data=st.data(), m=st.integers(1, 15), k=st.integers(1, 4))
def test_logistic_fold_in_zeroes_the_penalized_gradient(data, m, k):
    X = data.draw(matrices(m, k))
    labels = data.draw(arrays(np.float64, m, elements=st.sampled_from([0.0, 1.0])))
    offsets = data.draw(arrays(np.float64, m, elements=FINITE))
    weights = data.draw(arrays(np.float64, m, elements=st.floats(0.1, 3)))
    penalty = data.draw(arrays(np.float64, k, elements=st.floats(0.1, 5)))
    theta = logistic_fold_in(X, labels, offsets, penalty, weights=weights)
    prob = 1 / (1 + np.exp(-(offsets + X @ theta)))
    np.testing.assert_allclose(X.T @ (weights * (prob - labels)) + penalty * theta, 0, atol=1e-7)

    def loss(t):
        margin = offsets + X @ t
        return np.sum(weights * (np.logaddexp(0, margin) - labels * margin)) + 0.5 * t @ (penalty * t)

    assert loss(theta) <= optimize.minimize(loss, np.zeros(k)).fun + 1e-9


@settings(deadline=None, max_examples=40)
@given(data=st.data(), n=st.integers(2, 10), k=st.integers(1, 4))
def test_cosine_similarities(data, n, k):
    F = data.draw(matrices(n, k))
    item = data.draw(st.integers(0, n - 1))
    sims = cosine_similarities(F, item)
    assert sims.shape == (n,) and (np.abs(sims) <= 1 + 1e-12).all()
    norms = np.linalg.norm(F, axis=1)
    for j in range(n):
        if norms[j] > 0 and norms[item] > 0:
            assert sims[j] == pytest.approx(F[j] @ F[item] / (norms[j] * norms[item]), abs=1e-12)
        else:
            assert sims[j] == 0


def test_myfm_fold_in_of_one_sample_is_ridge_toward_the_prior_mean():
    from movierec.models.myfm_bayes._fold_in import UserPrior, fold_in_user

    rng = np.random.default_rng(0)
    V, residuals = rng.normal(size=(6, 3)), rng.normal(size=6)
    prior = UserPrior(
        alpha=np.array([2.0]), mu_w=np.array([0.1]), lambda_w=np.array([4.0]),
        mu_V=np.array([[0.2, -0.1, 0.0]]), lambda_V=np.array([[3.0, 5.0, 7.0]]),
    )
    bias, vector = fold_in_user(V, residuals, prior)
    # (alpha X'X + Lambda) theta = alpha X'e + Lambda mu
    X = np.column_stack([np.ones(6), V])
    Lam = np.diag([4.0, 3.0, 5.0, 7.0])
    theta = np.linalg.solve(2.0 * X.T @ X + Lam, 2.0 * X.T @ residuals + Lam @ [0.1, 0.2, -0.1, 0.0])
    np.testing.assert_allclose([bias, *vector], theta, atol=1e-10)


# -- agreement with the fit on ml-100k ---------------------------------------------------------
def agreement(model, train: pd.DataFrame) -> tuple[float, float, float]:
    """Return (mean top-10 overlap, mean and min Spearman) of fold-in against the fit, every 4th user."""
    from benchmarks.fold_in import agreement as measured

    found = measured(model, train)
    return found["top10_overlap"], found["spearman_mean"], found["spearman_min"]

def test_surprise_svd_fold_in_ranks_as_the_fit(u1):
    from movierec.models.surprise_svd import SurpriseSVD

    model = SurpriseSVD(random_state=0).fit(u1.train)
    overlap, mean_rho, min_rho = agreement(model, u1.train)
    assert overlap >= 0.4 and mean_rho >= 0.85 and min_rho >= 0.7


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "least"),
    [({}, (0.9, 0.995)), ({"predictor_type": "binary_classifier", "positive_rating": None,
                           "negatives_per_positive": 1.0}, (0.88, 0.995))],
    ids=["regressor", "binary-negatives"],
)
def test_sagemaker_fm_fold_in_ranks_as_the_fit(u1, params, least):
    from movierec.models.sagemaker_fm import SageMakerFM

    model = SageMakerFM(random_state=0, **params).fit(u1.train)
    overlap, mean_rho, min_rho = agreement(model, u1.train)
    assert overlap >= least[0] and mean_rho >= least[1] and min_rho >= 0.97


@pytest.mark.slow
def test_myfm_bayes_fold_in_ranks_as_the_fit(u1):
    from movierec.models.myfm_bayes import MyFMBayes

    model = MyFMBayes(random_state=0).fit(u1.train)
    overlap, mean_rho, min_rho = agreement(model, u1.train)
    assert overlap >= 0.85 and mean_rho >= 0.99 and min_rho >= 0.97


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_spark_als_fold_in_gives_back_the_fitted_user_factors(spark, u1, implicit):
    from movierec.models.spark_als import SparkALS

    model = SparkALS(rank=10, implicit_prefs=implicit, alpha=0.3, random_state=0, spark=spark).fit(u1.train)
    groups = dict(tuple(u1.train.groupby("userId")))
    for user in model.users_.ids[::20]:
        rows = groups[user]
        idx = model.items_.lookup(rows.movieId)
        folded = model._score_history(idx, rows.rating.to_numpy(np.float64))
        fitted = model._score_users(model.users_.lookup(np.array([user])))[0]
        # Spark's last sweep ends with this user step; its factors are float32
        np.testing.assert_allclose(folded, fitted, atol=2e-5 * max(1.0, np.abs(fitted).max()))
        top = model.top_n_from_history(rows[["movieId", "rating"]], n=10)
        expected = model.top_n(users=[user], n=10)
        assert top.movieId.tolist() == expected.movieId.tolist()
    movie = model.items_.ids[0]
    history = groups[model.users_.ids[0]][["movieId", "rating"]]
    reasons = model.explain(history, movie)
    score = model.score_history(history, [movie])[0]
    assert reasons.contribution.sum() == pytest.approx(score, rel=1e-6, abs=1e-9)  # empty history scores 0


# -- explain and similar movies on small data --------------------------------------------------
@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings()


def visitor(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings[ratings.userId == ratings.userId.iloc[0]][["movieId", "rating"]].iloc[:8]


def test_surprise_svd_contributions_sum_to_the_estimate_minus_the_movie_bias(ratings):
    from movierec.models.surprise_svd import SurpriseSVD

    model = SurpriseSVD(n_factors=4, random_state=0, rating_scale=(-100, 100)).fit(ratings)  # no clipping
    history = visitor(ratings)
    movie = ratings.movieId.iloc[-1]
    i = model.items_.lookup(np.array([movie]))[0]
    score = model.score_history(history, [movie])[0]
    total = model.explain(history, movie).contribution.sum()
    assert total == pytest.approx(score - model.global_mean_ - model.item_bias_[i], abs=1e-9)
    similar = model.similar_items(movie, n=5)
    q = model.item_factors_
    best = np.argsort(-(q @ q[i]) / (np.linalg.norm(q, axis=1) * np.linalg.norm(q[i])), kind="stable")
    assert similar.movieId.tolist() == model.items_.ids[best[best != i][:5]].tolist()


def test_sagemaker_fm_regressor_contributions_sum_and_side_features_fold_in(ratings):
    from movierec.models.sagemaker_fm import SageMakerFM

    model = SageMakerFM(num_factors=4, epochs=5, random_state=0).fit(ratings)
    history = visitor(ratings)
    movie = ratings.movieId.iloc[-1]
    i = model.items_.lookup(np.array([movie]))[0]
    score = model.score_history(history, [movie])[0]
    base = model.w0_ + model._item_bias[i]
    assert model.explain(history, movie).contribution.sum() == pytest.approx(score - base, abs=1e-9)
    users = pd.DataFrame({"userId": ratings.userId.unique(), "gender": "F", "age": 30, "occupation": "writer"})
    side = SageMakerFM(num_factors=4, epochs=5, side_features=True, random_state=0).fit(ratings, users=users)
    top = side.top_n_from_history(history, n=5)  # the visitor's side columns are zeros
    assert len(top) == 5 and np.isfinite(top.score).all()


def test_myfm_bayes_refuses_features_and_folders_saved_without_the_prior(ratings, tmp_path):
    from movierec.models.myfm_bayes import MyFMBayes

    with_time = MyFMBayes(rank=2, n_iter=10, random_state=0, implicit=True).fit(ratings)
    with pytest.raises(NotImplementedError, match="implicit=True"):
        with_time.top_n_from_history(visitor(ratings))
    model = MyFMBayes(rank=2, n_iter=10, random_state=0).fit(ratings)
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    history = visitor(ratings)
    pd.testing.assert_frame_equal(loaded.top_n_from_history(history), model.top_n_from_history(history))
    loaded.user_prior_ = None  # what a folder saved before fold-in gives
    with pytest.raises(NotImplementedError, match="saved without"):
        loaded.top_n_from_history(history)


# -- a kept SparkALS scores without a JVM ------------------------------------------------------
_LOAD_WITHOUT_SPARK = """
import json, os, sys
import numpy as np
import pandas as pd
from pyspark import SparkContext
from movierec.models.spark_als import SparkALS

def java_children():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if parent == os.getpid() and b"java" in command:
            found.append(pid)
    return found

folder, history = sys.argv[1], json.loads(sys.argv[2])
model = SparkALS.load(folder)
users, items = model.users_.ids, model.items_.ids
scores = model.score_matrix(users, items)
listed = model.top_n_from_history(history, n=5)
model.save(folder + "-copy")  # copies spark_model/ without Spark
copy = SparkALS.load(folder + "-copy")
print(json.dumps({
    "context": SparkContext._active_spark_context is not None,
    "java": java_children(),
    "session": model.session is not None,
    "scores": scores.tolist(),
    "listed": listed.movieId.tolist(),
    "copy_equal": bool(np.array_equal(copy.score_matrix(users, items), scores)),
}))
"""


@pytest.mark.slow
@pytest.mark.spark
def test_a_loaded_spark_als_scores_without_starting_a_jvm(spark, ratings, tmp_path):
    from movierec.models.spark_als import SparkALS

    model = SparkALS(rank=4, max_iter=5, random_state=0, spark=spark).fit(ratings)
    model.save(tmp_path / "m")
    history = visitor(ratings).movieId.tolist()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_LOAD_WITHOUT_SPARK), str(tmp_path / "m"), json.dumps(history)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert not out["context"] and out["java"] == [] and not out["session"]
    np.testing.assert_array_equal(np.array(out["scores"]), model.score_matrix(model.users_.ids, model.items_.ids))
    assert out["listed"] == model.top_n_from_history(history, n=5).movieId.tolist()
    assert out["copy_equal"]
    copied = SparkALS.load(tmp_path / "m-copy", spark=spark)  # the copied spark_model/ is Spark's own
    pairs = ratings.iloc[::7]
    np.testing.assert_allclose(copied.predict(pairs), model.predict(pairs))
    assert copied.model_.userFactors.count() == len(model.users_)
