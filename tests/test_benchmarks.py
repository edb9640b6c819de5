"""Fast tests of the benchmark harness: the synthetic generator's shape and the page renderer.

No benchmark runs here: render is fed tiny hand-written result documents.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import _common, render, scale
from benchmarks._common import SCALE_MAIN_JOB
from benchmarks.synthetic import MOVIELENS_SHAPES, default_shape, generate


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


def test_who_rated_what_carries_taste_beyond_popularity(ratings):
    from movierec import EASE, Popularity
    from movierec.data.split import stratified_split
    from movierec.metrics import ndcg_at_k

    def ease_over_popularity(frame):
        train, test = stratified_split(frame, 0.2, random_state=0)
        return (ndcg_at_k(EASE().fit(train).top_n(n=10), test, 10)
                / ndcg_at_k(Popularity().fit(train).top_n(n=10), test, 10))

    assert ease_over_popularity(ratings) > 1.1
    assert ease_over_popularity(generate(60_000, taste_sd=0.0, seed=3)) < 1.05  # popularity alone: nothing to learn


def test_same_seed_same_frame_other_seed_other_frame():
    a, b, c = generate(5_000, seed=1), generate(5_000, seed=1), generate(5_000, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize(("ratings", "users", "movies"), MOVIELENS_SHAPES)
def test_default_shape_is_the_movielens_release_of_that_size(ratings, users, movies):
    assert default_shape(ratings) == (users, movies)


def test_default_shape_grows_between_and_beyond_the_releases():
    sizes = [1_000, 20_000, 300_000, 5_000_000, 15_000_000, 25_000_000, 60_000_000]
    shapes = [default_shape(n) for n in sizes]
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(shapes))
    assert default_shape(25_000_000) == (162_541, 59_046)  # ml-25m has 95 ratings more
    for n, (users, movies) in zip(sizes, shapes):  # every default can be generated
        assert users * 20 <= n <= users * (movies // 2)
    assert default_shape(19)[0] == 1 and default_shape(100)[0] * 20 <= 100


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
    # each row of the main job's ranking ensemble against nDCG@10 >= 0.50
    assert f"{render.RANKING_ENSEMBLE} (all unseen): nDCG@10 >= 0.50 | 0.5100 | **met** | +0.0100" in page
    assert f"{render.RANKING_ENSEMBLE} (candidates=20): nDCG@10 >= 0.50 | 0.4900 | **missed** | -0.0100" in page
    # a tuned model's fit time is its search; its chosen point and every point tried are listed
    assert "| EASE | 0.4000 | 0.2000 | 0.4800 | 0.3000 | 0.2000 | 23.5 | 0.50 |" in page
    assert "- EASE: l2=400 (validation 0.1700; tried l2=200: 0.1600; l2=400: 0.1700)" in page
    assert "members kept EASE + ALS" in page and "subsets tried: EASE 0.1700, EASE+ALS 0.1800" in page
    # speed: the ensemble against its members: time 2.67x (met, <= 3x), RSS 2.65x (missed, <= 2x)
    assert "Ens: top_n <= 3× its members' top_n sum | 2.67× (1.200 s / 0.450 s) | **met** | +0.33×" in page
    assert "Ens: peak RSS <= 2× its largest member's | 2.65× (900 / 340 MiB) | **missed** | -0.65×" in page
    assert ("| Ens | EASE (tuned) + SurpriseSVD | 1.200 | 0.450 | 2.67× | 0.500 | 2.40× | 900 | 340 (EASE (tuned)) "
            "| 2.65× |") in page
    assert "120× | **met**" in page
    assert "failed: BackendError: no" in page
    assert "Not run yet: `python -m benchmarks --suite scale`" in page
    assert "`benchmarks/results/surprise_svd.json`" in page


def test_render_lists_the_candidate_ranking_families(fake_results, tmp_path):
    rows = [{"family": "GF-CF", "role": "with EASE", "params": {"factors": 64, "alpha": 1.0},
             "validation_ndcg": 0.17834, "test_ndcg": 0.48381}]
    (fake_results / "ranking_search.json").write_text(json.dumps(
        {"benchmark": "ranking_search", "command": "python benchmarks/ranking_search.py", "rows": rows}))
    page = render.write(fake_results, tmp_path / "benchmarks.md").read_text()
    assert "## Candidate ranking families (benchmarks/ranking_search.py)" in page
    assert "| GF-CF | with EASE | factors=64, alpha=1 | 0.1783 | 0.4838 |" in page
    (fake_results / "ranking_search.json").unlink()
    assert "Candidate ranking families" not in render.write(fake_results, tmp_path / "benchmarks.md").read_text()


def test_render_with_no_results(tmp_path):
    page = render.render({}, tmp_path)
    assert "No suite results yet." in page
    for suite in ("accuracy", "ranking", "speed", "scale"):
        assert f"python -m benchmarks --suite {suite}" in page


def _scale_results() -> dict:
    sizes = {"1000": {"ratings": 1000, "users": 10, "movies": 50, "min_ratings_per_user": 20, "mean_rating": 3.5,
                      "generate_seconds": 0.1},
             "10000": {"ratings": 10000, "users": 100, "movies": 150, "min_ratings_per_user": 20, "mean_rating": 3.5,
                       "generate_seconds": 0.5},
             "25000000": {"ratings": 25_000_000, "users": 162_541, "movies": 59_046, "like": "ml-25m",
                          "min_ratings_per_user": 20, "median_ratings_per_user": 85.0, "max_ratings_per_user": 19014,
                          "top_20000_movies_share": 0.85, "mean_rating": 3.44, "generate_seconds": 40.0}}
    models = {"BiasedBaseline": {"1000": {"fit_seconds": 1.0, "top_n_seconds": 0.5, "peak_rss_mb": 100.0,
                                          "peak_rss_total_mb": 100.0},
                                 "10000": {"fit_seconds": 8.0, "top_n_seconds": 6.0, "peak_rss_mb": 300.0,
                                           "peak_rss_total_mb": 300.0},
                                 "25000000": {"fit_seconds": 80.0, "top_n_seconds": 700.0, "peak_rss_mb": 900.0,
                                              "load_average_at_start": [2.5, 2.0, 1.0]}},
              "EASE": {"25000000": {"fit_seconds": 300.0, "top_n_seconds": 240.0, "kept_movies": 20000,
                                    "weights_dtype": "float32"}},
              "SurpriseSVD": {"1000": {"fit_seconds": 2.0}, "10000": {"error": "timed out after 1800 s"}},
              SCALE_MAIN_JOB: {"25000000": {"wall_seconds": 3000.0, "tree_peak_rss_mb": 10240.0, "peak_rss_mb": 8000.0,
                                            "jvm_peak_rss_mb": 3000.0, "peak_rss_sum_mb": 11000.0,
                                            "command": "movierec recommend --ratings ratings.csv"}}}
    return {"sizes": sizes, "models": models, "growth": {name: scale._growth(list(sizes), e) for name, e in models.items()}}


def test_scale_growth_is_per_step_between_measured_sizes():
    growth = _scale_results()["growth"]
    assert growth["BiasedBaseline"]["1000→10000"] == {"fit_seconds": 8.0, "top_n_seconds": 12.0, "peak_rss_mb": 3.0,
                                                      "peak_rss_total_mb": 3.0}
    assert growth["BiasedBaseline"]["10000→25000000"]["fit_seconds"] == 10.0
    assert growth["SurpriseSVD"] == {}  # its 10000 run failed: no step
    assert growth["EASE"] == {}


def test_render_scale_tables_growth_and_targets():
    page = render.render({"scale": _doc("scale", _scale_results())})
    assert "| 25M | ml-25m | 162,541 | 59,046 | 20 / 85 / 19,014 | 85.0% | 3.44 | 40.0 |" in page
    assert "| BiasedBaseline | 8.0× | 12.0× | 3.0× | 10.0× | 116.7× | – |" in page
    assert "| data: ratings / users × movies | 10.0× / 30.0× |  |  | 2500.0× / 639826.4× |  |  |" in page
    assert "failed: timed out after 1800 s" in page and "| SurpriseSVD | – |" not in page
    assert "| 25M | 3000 | 10240 | 8000 | 3000 | 11000 | – |" in page
    assert "EASE's weights cover 20,000 of 59,046 movies at 25M (float32)" in page
    assert "| main job at 25M: <= 60 min | 50.0 min | **met** | +10.0 min |" in page
    assert "| main job at 25M: peak RSS <= 16 GB | 10.0 GiB | **met** | +6.0 GiB |" in page
    assert ("| every model's top_n for all users at 25M <= 10 min | slowest BiasedBaseline 11.7 min "
            "| **missed** | -1.7 min |") in page


def test_scale_results_merge_across_runs_and_drop_stale_sizes(tmp_path, monkeypatch):
    from benchmarks import _common

    monkeypatch.setattr(_common, "ROOT", tmp_path)  # write_result logs paths relative to it
    monkeypatch.setattr(_common, "QUICK_DIR", tmp_path / "quick")
    tmp_path = tmp_path / "quick"
    first = scale.Recorder(quick=True, notes=[])
    first.size(1000, {"ratings": 1000, "users": 10, "movies": 50})
    first.size(2000, {"ratings": 2000, "users": 20, "movies": 60})
    first.start_job()
    first.entry("EASE", 1000, {"fit_seconds": 1.0})
    first.entry("EASE", 2000, {"fit_seconds": 3.0})
    assert json.loads((tmp_path / "scale.json").read_text())["results"]["growth"]["EASE"] == {
        "1000→2000": {"fit_seconds": 3.0}}
    # a later run at 2000 on data of another shape replaces what was measured at 2000
    second = scale.Recorder(quick=True, notes=[])
    second.size(2000, {"ratings": 2000, "users": 25, "movies": 60})
    saved = json.loads((tmp_path / "scale.json").read_text())["results"]
    assert saved["models"]["EASE"].keys() == {"1000"} and saved["sizes"]["2000"]["users"] == 25
    second.start_job()
    second.entry("Popularity", 2000, {"fit_seconds": 0.1})
    saved = json.loads((tmp_path / "scale.json").read_text())["results"]
    assert list(saved["models"]) == ["Popularity", "EASE"]  # in the suite's order
    assert "load_average_at_start" in saved["models"]["Popularity"]["2000"]
    # same shape, other data (another generator): the 1000 entry goes too
    scale.Recorder(quick=True, notes=[]).size(1000, {"ratings": 1000, "users": 10, "movies": 50, "fingerprint": "x"})
    saved = json.loads((tmp_path / "scale.json").read_text())["results"]
    assert "EASE" not in saved["models"]


def test_run_tree_measures_the_command_and_its_children():
    # the command holds ~150 MB and starts a child that holds ~250 MB, both alive together for a while
    hold = "import time; x = bytearray({mb} * 2**20); x[::4096] = b'x' * len(x[::4096]); time.sleep({s})"
    child = hold.format(mb=250, s=2.5)
    code = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
            + hold.format(mb=150, s=1.5) + "; p.wait(); print('done')")
    result = _common.run_tree([sys.executable, "-c", code], interval=0.2)
    assert result["exit_code"] == 0 and "error" not in result and result["stdout"].strip() == "done"
    assert 150 <= result["peak_rss_mb"] < 250
    assert result["tree_peak_rss_mb"] >= 400 and result["peak_rss_sum_mb"] >= result["tree_peak_rss_mb"]
    assert result["jvm_peak_rss_mb"] is None
    failed = _common.run_tree([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1, interval=0.2)
    assert failed["error"] == "timed out after 1 s" and failed["wall_seconds"] < 20


@pytest.mark.parametrize(("argv", "message"), [
    (["--suite", "ranking", "--sizes", "1000"], "with --suite scale alone"),
    (["--suite", "scale", "--sizes", "1e6,ten"], "--sizes must be"),
    (["--suite", "scale", "--sizes", "0"], "--sizes must be positive"),
    (["--suite", "scale", "--models", "EASE,NoSuchModel"], "unknown NoSuchModel"),
])
def test_scale_options_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_main.parse_args(argv)
    assert message in capsys.readouterr().err


def test_scale_options_reach_the_suite():
    args = bench_main.parse_args(["--suite", "scale", "--sizes", "1e6,10000000", "--models", "EASE, SparkALS implicit"])
    assert args.scale_options == {"sizes": [1_000_000, 10_000_000], "models": ["EASE", "SparkALS implicit"]}


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


def test_committed_results_and_pages_name_no_folder_of_the_machine_that_ran_them():
    import re

    from benchmarks._common import scrubbed

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"(?<![\w$.])/(?:work|tmp|home|root|Users)/[\w.-]+")
    files = [*sorted((root / "benchmarks" / "results").rglob("*.json")), *sorted((root / "docs").rglob("*.md"))]
    found = {str(f.relative_to(root)): pattern.findall(f.read_text()) for f in files}
    assert {name: hits[:3] for name, hits in found.items() if hits} == {}
    assert scrubbed(f"{Path.home()}/x and {root}/y") == "$HOME/x and ./y"
