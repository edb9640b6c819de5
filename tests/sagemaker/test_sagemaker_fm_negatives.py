"""SageMakerFM(backend="sagemaker") with sampled negatives: the RecordIO it uploads, against moto."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from movierec import SageMakerFM
from movierec.sagemaker.recordio import read_sparse

FAST = {"num_factors": 3, "epochs": 5, "mini_batch_size": 16, "random_state": 0}


def _ratings() -> pd.DataFrame:
    """8 users x 10 movies, 40 ratings; ids are not contiguous."""
    rng = np.random.default_rng(5)
    cells = rng.choice(80, size=40, replace=False)
    return pd.DataFrame(
        {
            "userId": 100 + cells // 10,
            "movieId": 1000 + 7 * (cells % 10),
            "rating": rng.integers(1, 6, size=40).astype(float),
        }
    )


@pytest.mark.slow
def test_train_recordio_holds_the_positives_and_the_sampled_negatives(moto):
    ratings = _ratings()
    fm = SageMakerFM(
        backend="sagemaker", sagemaker=moto.config(test_fraction=0), predictor_type="binary_classifier",
        positive_rating=4.0, negatives_per_positive=1.5, **FAST,
    )
    fm.fit(ratings)
    train = moto.client("s3").get_object(Bucket=moto.bucket, Key="fm/train/train.protobuf")
    X, labels = read_sparse(io.BytesIO(train["Body"].read()))
    liked = (ratings.rating >= 4).groupby(ratings.userId).sum()
    unseen = ratings.movieId.nunique() - ratings.groupby("userId").size()
    n_negatives = int(np.minimum(np.rint(1.5 * liked), unseen).sum())
    assert n_negatives > 0
    assert X.shape == (len(ratings) + n_negatives, 18) and (X.sum(axis=1) == 2).all()
    np.testing.assert_array_equal(
        labels, np.r_[(ratings.rating >= 4).to_numpy(dtype=np.float32), np.zeros(n_negatives, np.float32)]
    )
    # the negative rows are unrated pairs; the model still excludes only the rated ones
    users = np.asarray(X[len(ratings):, :8].argmax(axis=1)).ravel()
    movies = np.asarray(X[len(ratings):, 8:].argmax(axis=1)).ravel()
    pairs = set(zip(fm.users_.ids[users].tolist(), fm.items_.ids[movies].tolist()))
    assert len(pairs) == n_negatives and not pairs & set(zip(ratings.userId, ratings.movieId))
    assert fm.seen_.nnz == len(ratings)
    fm.close()
