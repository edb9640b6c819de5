import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec import metrics
from movierec.exceptions import DataValidationError

# Two users. User 1's list hits at ranks 1 and 3 (3 relevant movies); user 2's at rank 2 (1 relevant).
RECS = pd.DataFrame(
    {
        "userId": [1, 1, 1, 2, 2, 2],
        "movieId": [10, 11, 12, 20, 21, 22],
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        "rank": [1, 2, 3, 1, 2, 3],
    }
)
TEST = pd.DataFrame(
    {"userId": [1, 1, 1, 2, 3], "movieId": [10, 12, 99, 21, 10], "rating": [5.0, 4.0, 2.0, 3.0, 5.0]}
)


def test_rmse_and_mae_by_hand():
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert metrics.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_rating_metrics_refuse_nan_unless_told():
    with pytest.raises(DataValidationError, match="missing='drop'"):
        metrics.rmse([1, 2], [1, np.nan])
    assert metrics.rmse([1, 2], [1, np.nan], missing="drop") == 0.0
    with pytest.raises(DataValidationError):
        metrics.mae([1, 2], [1])


def test_precision_by_hand():
    # user 1: 2 hits / 3; user 2: 1 hit / 3; user 3 has no recommendations and is left out.
    assert metrics.precision_at_k(RECS, TEST, k=3) == pytest.approx((2 / 3 + 1 / 3) / 2)


def test_recall_by_hand():
    assert metrics.recall_at_k(RECS, TEST, k=3) == pytest.approx((2 / 3 + 1 / 1) / 2)


def test_ndcg_by_hand():
    user1 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3) + 1 / np.log2(4))
    user2 = (1 / np.log2(3)) / 1.0
    assert metrics.ndcg_at_k(RECS, TEST, k=3) == pytest.approx((user1 + user2) / 2)


def test_map_by_hand():
    user1 = (1 / 1 + 2 / 3) / 3
    user2 = (1 / 2) / 1
    assert metrics.map_at_k(RECS, TEST, k=3) == pytest.approx((user1 + user2) / 2)


def test_k_cuts_the_lists():
    # at k=1 user 1 hits at rank 1, user 2 misses.
    assert metrics.precision_at_k(RECS, TEST, k=1) == pytest.approx(0.5)
    assert metrics.ndcg_at_k(RECS, TEST, k=1) == pytest.approx(0.5)


def test_threshold_changes_relevance():
    # rating >= 4: user 1 has movies 10 and 12 relevant, user 2 nothing (so only user 1 counts).
    assert metrics.recall_at_k(RECS, TEST, k=3, threshold=4) == pytest.approx(1.0)
    assert metrics.precision_at_k(RECS, TEST, k=3, threshold=4) == pytest.approx(2 / 3)


def test_ranking_metrics_derive_rank_from_score():
    without_rank = RECS.drop(columns="rank").sample(frac=1.0, random_state=0)
    assert metrics.ndcg_at_k(without_rank, TEST, k=3) == pytest.approx(metrics.ndcg_at_k(RECS, TEST, k=3))


def test_ranking_metrics_reject_bad_k_and_no_overlap():
    with pytest.raises(DataValidationError):
        metrics.precision_at_k(RECS, TEST, k=0)
    with pytest.raises(DataValidationError, match="no user"):
        metrics.precision_at_k(RECS, TEST.assign(userId=7), k=3)
    with pytest.raises(DataValidationError, match="no user has both .* the recommendations are empty"):
        metrics.ndcg_at_k(RECS.iloc[:0], TEST, k=3)


def test_coverage():
    assert metrics.coverage(RECS, [10, 11, 12, 20, 21, 22, 30, 31]) == pytest.approx(6 / 8)
    assert metrics.coverage(RECS, TEST) == pytest.approx(3 / 4)


@given(st.lists(st.permutations(list(range(8))), min_size=1, max_size=5), st.integers(1, 8))
def test_ranking_metrics_lie_in_unit_interval_and_perfect_lists_score_one(orders, k):
    recs = pd.DataFrame(
        [(u, m, -r, r + 1) for u, order in enumerate(orders) for r, m in enumerate(order)],
        columns=["userId", "movieId", "score", "rank"],
    )
    relevant = recs[recs["rank"] <= 3][["userId", "movieId"]]
    for fn in (metrics.precision_at_k, metrics.recall_at_k, metrics.ndcg_at_k, metrics.map_at_k):
        assert 0.0 <= fn(recs, relevant, k=k) <= 1.0 + 1e-12
    assert metrics.ndcg_at_k(recs, relevant, k=k) == pytest.approx(1.0)
    assert metrics.map_at_k(recs, relevant, k=k) == pytest.approx(1.0)


def test_per_user_metrics_by_hand():
    table = metrics.per_user_metrics(RECS, TEST, k=3)
    assert list(table.columns) == ["userId", "precision@3", "recall@3", "ndcg@3", "map@3"]
    assert table["userId"].tolist() == [1, 2]  # user 3 has a relevant movie but no list
    assert table["precision@3"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert table["recall@3"].tolist() == pytest.approx([2 / 3, 1.0])
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert table["ndcg@3"].tolist() == pytest.approx([(1 + 1 / np.log2(4)) / idcg, (1 / np.log2(3)) / 1.0])
    assert table["map@3"].tolist() == pytest.approx([(1 + 2 / 3) / 3, 1 / 2])


@given(st.lists(st.permutations(list(range(8))), min_size=1, max_size=6), st.integers(1, 8),
       st.lists(st.sets(st.integers(0, 9), min_size=1, max_size=5), min_size=1, max_size=6))
def test_per_user_metrics_average_to_ranking_metrics(orders, k, relevant):
    recs = pd.DataFrame(
        [(u, m, -r, r + 1) for u, order in enumerate(orders) for r, m in enumerate(order)],
        columns=["userId", "movieId", "score", "rank"],
    )
    test = pd.DataFrame([(u, m) for u, movies in enumerate(relevant) for m in sorted(movies)],
                        columns=["userId", "movieId"])
    table = metrics.per_user_metrics(recs, test, k=k)
    assert table["userId"].tolist() == list(range(min(len(orders), len(relevant))))
    means = metrics.ranking_metrics(recs, test, k=k)
    assert {name: table[name].mean() for name in means} == pytest.approx(means, abs=1e-12)
    assert ((table.drop(columns="userId") >= 0) & (table.drop(columns="userId") <= 1 + 1e-12)).all().all()
