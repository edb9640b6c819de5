"""Fast tests of the benchmark harness: the synthetic generator's shape and the page renderer.

No benchmark runs here: render is fed tiny hand-written result documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import render
from benchmarks.synthetic import default_shape, generate


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return generate(60_000, seed=3)


# -- the generator ---------------------------------------------------------------------------------
def test_exact_size_columns_and_dtypes(ratings):
    assert len(ratings) == 60_000
    assert list(ratings.columns) == ["userId", "movieId", "rating"]
    assert ratings["userId"].dtype == np.int64 and ratings["movieId"].dtype == np.int64
    assert ratings["rating"].dtype == np.float64


def test_no_duplicate_pairs(ratings):
    assert not ratings.duplicated(["userId", "movieId"]).any()


def test_every_user_has_at_least_20_ratings(ratings):
    counts = ratings.groupby("userId").size()
    assert counts.min() >= 20
    n_users, n_items = default_shape(60_000)
    assert ratings["userId"].nunique() == n_users
    assert counts.max() <= n_items // 2


def test_whole_stars_from_1_to_5_centred_like_movielens(ratings):
    assert set(ratings["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.2 < ratings["rating"].mean() < 3.8
    shares = ratings["rating"].value_counts(normalize=True)
    assert shares[3.0] + shares[4.0] > 0.5  # mostly 3s and 4s, as MovieLens


def test_popularity_is_heavy_tailed(ratings):
    counts = ratings["movieId"].value_counts().to_numpy()
    top_tenth = counts[: max(1, len(counts) // 10)].sum() / counts.sum()
    assert top_tenth > 0.3  # a uniform catalogue would give 0.1
    # Zipf-like: log count falls roughly linearly in log rank over the head
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert -1.5 < slope < -0.2


def test_user_and_movie_effects_show_in_the_means(ratings):
    # with effects, per-movie means spread much more than the noise of their averages alone
    per_movie = ratings.groupby("movieId")["rating"].agg(["mean", "count"])
    busy = per_movie[per_movie["count"] >= 50]
    noise_sd = ratings["rating"].std() / np.sqrt(busy["count"]).mean()
    assert busy["mean"].std() > 2 * noise_sd
    per_user = ratings.groupby("userId")["rating"].mean()
    assert per_user.std() > 0.2


def test_same_seed_same_frame_other_seed_other_frame():
    a, b, c = generate(5_000, seed=1), generate(5_000, seed=1), generate(5_000, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_explicit_shape_and_impossible_shapes():
    frame = generate(3_000, n_users=100, n_items=200, seed=0)
    assert frame["userId"].nunique() == 100 and frame["movieId"].max() <= 200
    with pytest.raises(ValueError, match="at least"):
        generate(1_000, n_users=100, n_items=200)
    with pytest.raises(ValueError, match="cannot give"):
        generate(10_000, n_users=20, n_items=100)


# -- render ----------------------------------------------------------------------------------------
def _doc(suite: str, results: dict, **extra) -> dict:
    return {"suite": suite, "date": "2026-01-01T00:00:00+00:00", "command": f"python -m benchmarks --suite {suite}",
            "quick": False, "duration_seconds": 12.0,
            "machine": {"platform": "Linux-test", "cpu_count": 2, "memory_gb": 24.0, "load_average_at_start": [3.0, 2, 1]},
            "versions": {"python": "3.11", "movierec": "0.1.0"}, "notes": ["a note"], "results": results, **extra}


def _fold(rmse_by_model: dict[str, float]) -> dict:
    return {name: {"rmse": value, "mae": value * 0.8, "scored_pairs": 100, "unscored_pairs": 0, "seconds": 1.0}
            for name, value in rmse_by_model.items()}


@pytest.fixture
def fake_results(tmp_path) -> Path:
    from benchmarks.accuracy import summarize

    ens = render.ENSEMBLE3
    folds = {
        "u1": _fold({"SurpriseSVD": 0.94, "SparkALS": 0.93, "SageMakerFM": 0.92, ens: 0.91}),
        "u2": _fold({"SurpriseSVD": 0.93, "SparkALS": 0.92, "SageMakerFM": 0.91, ens: 0.915}),
    }
    folds["u1"]["SurpriseSVD"]["tuned"] = {"params": {"reg_all": 0.05}}
    accuracy = _doc("accuracy", {"folds": folds, "summary": summarize(folds)})
    ranking = _doc("ranking", {"k": 10, "models": {
        "Popularity": {"precision": 0.19, "recall": 0.11, "ndcg": 0.22, "map": 0.05, "coverage": 0.1,
                       "fit_seconds": 0.01, "top_n_seconds": 0.02},
        "EASE": {"precision": 0.4, "recall": 0.2, "ndcg": 0.48, "map": 0.3, "coverage": 0.2, "fit_seconds": 0.0,
                 "tune_seconds": 23.5, "top_n_seconds": 0.5, "params": {"l2": 400.0}, "validation_ndcg": 0.17,
                 "tried": [{"params": {"l2": 200.0}, "validation_ndcg": 0.16},
                           {"params": {"l2": 400.0}, "validation_ndcg": 0.17}]},
        f"{render.RANKING_ENSEMBLE} (all unseen)": {
            "precision": 0.43, "recall": 0.2, "ndcg": 0.51, "map": 0.1, "coverage": 0.2, "fit_seconds": 9.0,
            "top_n_seconds": 1.0, "members": ["EASE", "ALS"], "member_validation_ndcg": {"EASE": 0.17, "ALS": 0.16},
            "selection": [{"members": ["EASE"], "validation_ndcg": 0.17}, {"members": ["EASE", "ALS"],
                                                                            "validation_ndcg": 0.18}]},
        f"{render.RANKING_ENSEMBLE} (candidates=20)": {"precision": 0.4, "recall": 0.2, "ndcg": 0.49, "map": 0.1,
                                                       "coverage": 0.2, "fit_seconds": 9.0, "top_n_seconds": 1.0},
        "Broken": {"error": "BackendError: no"},
    }})
    speed = _doc("speed", {"n": 10, "repeats": 3, "models": {
        "SurpriseSVD": {"fit_seconds": 1.0, "top_n_seconds": 0.05, "recipe_seconds": 6.0, "speedup_vs_recipe": 120.0,
                        "speedup_vs_surprise_recipe": 120.0, "peak_rss_mb": 300.0, "recipe": "FAQ"},
        "EASE (tuned)": {"fit_seconds": 20.0, "top_n_seconds": 0.4, "peak_rss_mb": 340.0},
        "Ens": {"fit_seconds": 90.0, "top_n_seconds": 1.2, "peak_rss_mb": 900.0, "top_n_peak_rss_mb": 350.0,
                "members": ["EASE (tuned)", "SurpriseSVD"], "members_top_n_seconds_in_process": {"EASE (tuned)": 0.5},
                "members_top_n_seconds_sum": 0.45, "time_ratio": 1.2 / 0.45, "time_ratio_in_process": 2.4,
                "largest_member": "EASE (tuned)", "largest_member_peak_rss_mb": 340.0, "rss_ratio": 900.0 / 340.0},
    }})
    for name, doc in (("accuracy", accuracy), ("ranking", ranking), ("speed", speed)):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    (tmp_path / "surprise_svd.json").write_text("{}")
    return tmp_path


def test_render_writes_tables_provenance_and_targets(fake_results, tmp_path):
    output = render.write(fake_results, tmp_path / "out" / "benchmarks.md")
    page = output.read_text()
    assert page.startswith("# Benchmarks")
    assert "`python -m benchmarks --suite accuracy`" in page
    assert "2 CPUs" in page and "movierec 0.1.0" in page and "a note" in page
    assert "| SurpriseSVD | 0.9350 ± 0.0071 |" in page
    assert "reg_all=0.0500" in page
    # ensemble beats its best member on u1 (+0.01) but not on u2 (-0.005): missed, worst fold u2
    assert "1/2 folds | **missed** | worst fold u2: -0.0050" in page
    assert "u1 RMSE <= 0.915 | 0.9100 | **met** | +0.0050" in page
    # issue 13: each row of the main job's ranking ensemble against nDCG@10 >= 0.50
    assert f"{render.RANKING_ENSEMBLE} (all unseen): nDCG@10 >= 0.50 (issue 13) | 0.5100 | **met** | +0.0100" in page
    assert f"{render.RANKING_ENSEMBLE} (candidates=20): nDCG@10 >= 0.50 (issue 13) | 0.4900 | **missed** | -0.0100" in page
    # a tuned model's fit time is its search; its chosen point and every point tried are listed
    assert "| EASE | 0.4000 | 0.2000 | 0.4800 | 0.3000 | 0.2000 | 23.5 | 0.50 |" in page
    assert "- EASE: l2=400 (validation 0.1700; tried l2=200: 0.1600; l2=400: 0.1700)" in page
    assert "members kept EASE + ALS" in page and "subsets tried: EASE 0.1700, EASE+ALS 0.1800" in page
    # speed: the ensemble against its members: time 2.67x (met, <= 3x), RSS 2.65x (missed, <= 2x)
    assert "Ens: top_n <= 3× its members' top_n sum (issue 13) | 2.67× (1.200 s / 0.450 s) | **met** | +0.33×" in page
    assert "Ens: peak RSS <= 2× its largest member's (issue 13) | 2.65× (900 / 340 MiB) | **missed** | -0.65×" in page
    assert ("| Ens | EASE (tuned) + SurpriseSVD | 1.200 | 0.450 | 2.67× | 0.500 | 2.40× | 900 | 340 (EASE (tuned)) "
            "| 2.65× |") in page
    assert "120× | **met**" in page
    assert "failed: BackendError: no" in page
    assert "Not run yet: `python -m benchmarks --suite scale`" in page
    assert "`benchmarks/results/surprise_svd.json`" in page


def test_render_with_no_results(tmp_path):
    page = render.render({}, tmp_path)
    assert "No suite results yet." in page
    for suite in ("accuracy", "ranking", "speed", "scale"):
        assert f"python -m benchmarks --suite {suite}" in page


def test_render_scale_growth(tmp_path):
    scale = _doc("scale", {
        "sizes": {"1000": {"ratings": 1000, "users": 10, "movies": 50, "min_ratings_per_user": 20, "mean_rating": 3.5,
                           "generate_seconds": 0.1},
                  "10000": {"ratings": 10000, "users": 100, "movies": 150, "min_ratings_per_user": 20,
                            "mean_rating": 3.5, "generate_seconds": 0.5}},
        "models": {"BiasedBaseline": {"1000": {"fit_seconds": 1.0, "top_n_seconds": 0.5, "peak_rss_mb": 100.0},
                                      "10000": {"fit_seconds": 8.0, "top_n_seconds": 6.0, "peak_rss_mb": 300.0}},
                   "SurpriseSVD": {"1000": {"fit_seconds": 2.0}, "10000": {"error": "timed out after 1800 s"}}},
        "growth": {"BiasedBaseline": {"fit_seconds": 8.0, "top_n_seconds": 12.0, "peak_rss_mb": 3.0}},
    })
    page = render.render({"scale": scale})
    assert "| BiasedBaseline | 8.0× | 12.0× | 3.0× | – |" in page
    assert "failed: timed out after 1800 s" in page
    assert "Growth 1,000 → 10,000 (10× the ratings; top_n scores every (user, movie) pair, 30.0× as many)" in page


# -- the speed suite's ensemble comparison ---------------------------------------------------------
def test_speed_compare_ratios_against_members_of_the_same_run():
    from benchmarks import speed

    ensemble = speed.RANKING_ENSEMBLE
    results = {
        "EASE (tuned)": {"top_n_seconds": 0.3, "peak_rss_mb": 340.0},
        "SparkALS implicit": {"top_n_seconds": 0.1, "peak_rss_mb": 220.0},
        "SageMakerFM binary": {"top_n_seconds": 0.2, "peak_rss_mb": 250.0},
        ensemble: {"top_n_seconds": 1.0, "peak_rss_mb": 700.0, "members": ["EASE (tuned)", "SparkALS implicit"],
                   "members_top_n_seconds_in_process": {"EASE (tuned)": 0.4, "SparkALS implicit": 0.1}},
        # its member SurpriseSVD failed: no ratio rather than a wrong one
        "WeightedEnsemble rating (ALS+SVD+FM)": {"top_n_seconds": 1.0, "peak_rss_mb": 500.0},
        "SparkALS": {"top_n_seconds": 0.1, "peak_rss_mb": 200.0},
        "SurpriseSVD": {"error": "ImportError: no surprise"},
    }
    speed.compare(results)
    entry = results[ensemble]
    # only the members forward selection kept count: 1.0 / (0.3 + 0.1)
    assert entry["members_top_n_seconds_sum"] == pytest.approx(0.4)
    assert entry["time_ratio"] == pytest.approx(2.5) and entry["time_target_met"] is True
    assert entry["time_ratio_in_process"] == pytest.approx(2.0)
    assert entry["largest_member"] == "EASE (tuned)"
    assert entry["rss_ratio"] == pytest.approx(700 / 340) and entry["rss_target_met"] is False
    rating = results["WeightedEnsemble rating (ALS+SVD+FM)"]
    assert "time_ratio" not in rating and rating["comparison_error"] == "a member's own measurement failed"
