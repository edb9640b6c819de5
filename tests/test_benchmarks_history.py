"""The history suite's harness: its split, its --dataset option and its page section (no benchmark runs here)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import history, render
from movierec.testing import synthetic_ratings


def test_split_leaves_out_a_tenth_of_the_users_and_splits_their_ratings_80_20():
    ratings = synthetic_ratings(n_users=200, n_items=40, seed=1)
    train, kept, relevant = history.split(ratings)
    left_out = set(kept.userId)
    assert len(left_out) == 20 and not left_out & set(train.userId)
    assert set(relevant.userId) == left_out
    assert len(train) + len(kept) + len(relevant) == len(ratings)
    assert not set(kept.index) & set(relevant.index)
    sizes = relevant.groupby("userId").size() / ratings[ratings.userId.isin(left_out)].groupby("userId").size()
    assert np.allclose(sizes, 0.2, atol=0.05)
    expected = np.random.default_rng(0).choice(np.sort(ratings.userId.unique()), size=20, replace=False)
    assert left_out == set(expected)
    again = history.split(ratings)
    assert again[1].equals(kept) and again[2].equals(relevant)


def test_dataset_option_goes_with_the_history_suite_and_a_known_archive(capsys):
    args = bench_main.parse_args(["--suite", "history", "--dataset", "ml-1m"])
    assert args.history_options == {"dataset": "ml-1m"}
    assert bench_main._result_name("history", args.history_options) == "history-ml-1m"
    assert bench_main._result_name("history", {}) == "history"
    for argv in (["--suite", "ranking", "--dataset", "ml-1m"], ["--suite", "history", "--dataset", "ml-2k"]):
        with pytest.raises(SystemExit):
            bench_main.parse_args(argv)


def _doc(ensemble: dict) -> dict:
    models = {"popularity": {"model": "p", "history_ndcg": 0.2, "in_fit_ndcg": 0.19},
              "SparkALS implicit": {"model": "a", "history_unavailable": "SparkALS cannot score a history: no fold-in",
                                    "in_fit_ndcg": 0.4},
              "ensemble": {"model": "e", **ensemble}}
    return {"command": "python -m benchmarks --suite history", "results": {"figures": {"dataset": "ml-100k"},
                                                                          "models": models}}


def test_section_shows_a_dash_with_the_reason_and_targets_compare_the_ratios():
    page = render.render({"history": _doc({"history_ndcg": 0.39, "in_fit_ndcg": 0.4, "history_over_in_fit": 0.975})})
    assert "— (SparkALS cannot score a history: no fold-in)" in page
    assert "0.975× (0.3900 / 0.4000) | **met**" in page
    assert "1.95× (0.3900 / 0.2000) | **met**" in page
    missed = render.render({"history": _doc({"history_ndcg": 0.3, "in_fit_ndcg": 0.4})})
    assert "0.750× (0.3000 / 0.4000) | **missed**" in missed
    unavailable = render.render({"history": _doc({"history_unavailable": "no fold-in", "in_fit_ndcg": 0.4})})
    assert "— (no fold-in)" in unavailable
