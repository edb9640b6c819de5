"""SparkALS on real pyspark: the Recommender contract, Spark agreement, sessions, a standalone cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")

from movierec import InvalidParameterError, MovieRecWarning, NotFittedError, SparkALS, TuneResult
from movierec.models.spark_als._arrow import ITEM_COL, USER_COL, collect_columns, to_spark
from movierec.testing import RecommenderContract, synthetic_ratings

pytestmark = pytest.mark.spark


def small_model(spark, **params) -> SparkALS:
    defaults = {"rank": 4, "max_iter": 5, "reg_param": 0.1, "random_state": 0}
    return SparkALS(**{**defaults, **params}, spark=spark)


class TestSparkALSContract(RecommenderContract):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _shared_session(cls, spark):
        cls.session = spark

    def make_model(self):
        return small_model(self.session)


@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings()


@pytest.fixture(scope="module")
def fitted(spark, ratings):
    return small_model(spark).fit(ratings)


def spark_predictions(model: SparkALS, pairs: pd.DataFrame) -> np.ndarray:
    """Spark's own model_.transform on the pairs, in the pairs' order."""
    frame = to_spark(
        model.session,
        {
            "row": np.arange(len(pairs), dtype=np.int32),
            USER_COL: model.users_.lookup(pairs.userId).astype(np.int32),
            ITEM_COL: model.items_.lookup(pairs.movieId).astype(np.int32),
        },
    )
    columns = collect_columns(model.model_.transform(frame))
    return columns["prediction"][np.argsort(columns["row"])].astype(np.float64)


def test_predictions_equal_spark_transform(fitted, ratings):
    pairs = ratings.iloc[::3]
    np.testing.assert_allclose(
        fitted.predict(pairs).to_numpy(), spark_predictions(fitted, pairs), rtol=1e-5, atol=1e-5
    )


def test_cold_start_pairs_are_nan_and_dropped_from_rmse(fitted, ratings):
    pairs = pd.DataFrame(
        {"userId": [ratings.userId.iloc[0], -5, -5], "movieId": [-7, ratings.movieId.iloc[0], -7]}
    )
    assert fitted.predict(pairs).isna().all()
    test = pd.concat([ratings.iloc[:30], pairs.assign(rating=3.0)], ignore_index=True)
    with pytest.warns(MovieRecWarning, match="3 of 33"):
        assert fitted.rmse(test) == pytest.approx(fitted.rmse(ratings.iloc[:30]))


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_numpy_and_spark_top_n_agree(fitted, ratings, exclude_seen):
    in_memory = fitted.top_n(n=5, exclude_seen=exclude_seen)
    fitted.spark_top_n_cells = 0  # every request now ranks in Spark
    try:
        in_spark = fitted.top_n(n=5, exclude_seen=exclude_seen)
        with pytest.warns(MovieRecWarning):
            some = fitted.top_n(users=[ratings.userId.iloc[-1], 999_999], n=2, exclude_seen=exclude_seen)
    finally:
        del fitted.spark_top_n_cells
    assert list(in_spark.columns) == list(in_memory.columns)
    pd.testing.assert_frame_equal(
        in_spark[["userId", "movieId", "rank"]], in_memory[["userId", "movieId", "rank"]]
    )
    np.testing.assert_allclose(in_spark.score, in_memory.score, rtol=1e-5)
    assert (in_spark.groupby("userId").size() == 5).all()
    expected = in_memory[(in_memory.userId == ratings.userId.iloc[-1]) & (in_memory["rank"] <= 2)]
    assert some.movieId.tolist() == expected.movieId.tolist()
    if exclude_seen:
        assert in_spark.merge(ratings, on=["userId", "movieId"]).empty


def test_string_ids_round_trip(spark, ratings, tmp_path):
    named = ratings.assign(
        userId="user-" + ratings.userId.astype(str), movieId="movie-" + ratings.movieId.astype(str)
    )
    model = small_model(spark).fit(named)
    top = model.top_n(n=3)
    assert set(top.userId) == set(named.userId) and set(top.movieId) <= set(named.movieId)
    assert top.merge(named, on=["userId", "movieId"]).empty
    pairs = pd.DataFrame({"userId": [named.userId.iloc[0], "nobody"], "movieId": [named.movieId.iloc[0]] * 2})
    predicted = model.predict(pairs)
    assert np.isfinite(predicted.iloc[0]) and np.isnan(predicted.iloc[1])
    model.save(tmp_path / "model")
    loaded = SparkALS.load(tmp_path / "model", spark=spark)
    pd.testing.assert_frame_equal(loaded.top_n(n=3), top)


def test_save_writes_spark_model_and_load_uses_given_session(fitted, ratings, spark, tmp_path):
    fitted.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "params.json").read_text())
    assert saved["params"]["spark"] is None and saved["params"]["rank"] == 4
    assert (tmp_path / "m" / "spark_model" / "metadata").is_dir()
    loaded = SparkALS.load(tmp_path / "m", spark=spark)
    assert loaded.session is None and loaded.spark is spark  # Spark waits until the ALSModel is needed
    assert loaded.model_ is not None and loaded.session is spark
    pairs = ratings.iloc[::5]
    np.testing.assert_allclose(spark_predictions(loaded, pairs), spark_predictions(fitted, pairs))
    loaded.spark_top_n_cells = 0
    np.testing.assert_array_equal(loaded.top_n(n=3).movieId, fitted.top_n(n=3).movieId)
    loaded.close()
    assert spark.range(2).count() == 2  # a given session is never stopped
    with pytest.raises(InvalidParameterError, match="spark must be a pyspark.sql.SparkSession or None"):
        SparkALS.load(tmp_path / "m", spark="local[*]")


def test_no_python_warnings_escape(spark, ratings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = small_model(spark).fit(ratings)
        model.predict(ratings.iloc[:10])
        model.top_n(n=3)
        model.spark_top_n_cells = 0
        model.top_n(n=3)


def checkerboard(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two user groups, each liking its own half of the movies; returns (train, held-out) frames.

    Users rate about half of their group's movies 4-5 and a few others 1-2; three of each user's
    own-group ratings are held out.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 60
    group_u, group_i = np.arange(n_users) % 2, np.arange(n_items) % 2
    same = group_u[:, None] == group_i[None, :]
    rated = rng.random((n_users, n_items)) < np.where(same, 0.5, 0.08)
    stars = np.where(same, rng.integers(4, 6, (n_users, n_items)), rng.integers(1, 3, (n_users, n_items)))
    u, i = np.nonzero(rated)
    frame = pd.DataFrame({"userId": u, "movieId": i, "rating": stars[u, i].astype(float)})
    own = frame[same[u, i]]
    held = own.groupby("userId", group_keys=False).sample(n=3, random_state=seed)
    return frame.drop(held.index), held


def test_implicit_prefs_ranks_held_out_liked_movies_first(spark):
    train, held = checkerboard()
    model = SparkALS(
        rank=4, max_iter=10, reg_param=0.05, implicit_prefs=True, alpha=5.0, random_state=0, spark=spark
    )
    model.fit(train)
    users, items = np.meshgrid(np.arange(40), np.arange(60), indexing="ij")
    pairs = pd.DataFrame({"userId": users.ravel(), "movieId": items.ravel()})
    scores = model.predict(pairs).to_numpy().reshape(40, 60)
    seen = model.seen_.toarray()  # ids are 0..39 and 0..59, so indices equal ids
    other_group = (np.arange(40)[:, None] % 2) != (np.arange(60)[None, :] % 2)
    aucs = []
    for user, rows in held.groupby("userId"):
        positive = scores[user, rows.movieId.to_numpy()]
        negative = scores[user, other_group[user] & ~seen[user]]
        aucs.append((positive[:, None] > negative[None, :]).mean())
    assert np.mean(aucs) > 0.9
    top = model.top_n(n=5)
    assert ((top.userId % 2) == (top.movieId % 2)).mean() > 0.9
    assert top.merge(train, on=["userId", "movieId"]).empty


def test_tune_cross_validates_a_grid_and_refits(spark, ratings):
    model = small_model(spark, rank=3)
    result = model.tune(ratings, {"rank": [2, np.int64(6)], "reg_param": [0.1]}, folds=2)
    assert isinstance(result, TuneResult) and result.metric == "rmse"
    assert list(result.results.columns) == ["rank", "reg_param", "rmse"]
    assert result.results[["rank", "reg_param"]].to_dict("records") == [
        {"rank": 2, "reg_param": 0.1},
        {"rank": 6, "reg_param": 0.1},
    ]
    best = result.results.loc[result.results["rmse"].idxmin()]
    assert result.best_params == {"rank": best["rank"], "reg_param": best["reg_param"]}
    assert result.best_score == best["rmse"] and 0 < result.best_score < 2
    assert all(type(v) in (int, float) for v in result.best_params.values())  # what set_params got
    best_rank = result.best_params["rank"]
    assert model.rank == best_rank and model.user_factors_.shape[1] == best_rank
    fresh = small_model(spark, rank=best_rank).fit(ratings)
    np.testing.assert_allclose(model.predict(ratings.iloc[::9]), fresh.predict(ratings.iloc[::9]), rtol=1e-6)


@pytest.mark.parametrize(
    "grid, options, match",
    [
        ({"spark": [None]}, {}, "grid parameter 'spark' cannot be tuned"),
        ({"rank": []}, {}, r"grid\['rank'\] must be a non-empty list"),
        ({"rank": "23"}, {}, r"grid\['rank'\] must be a non-empty list"),
        ({}, {}, "grid must be a non-empty dict"),
        ({"rank": [0]}, {}, "SparkALS.tune: rank must be a positive int, got 0"),
        ({"reg_param": [0.1, "0.2"]}, {}, "reg_param must be a float >= 0, got '0.2'"),
        ({"rank": [2]}, {"folds": 1}, "SparkALS.tune: folds must be an int >= 2, got 1"),
        ({"rank": [2]}, {"metric": "mae"}, "SparkALS.tune: metric must be one of"),
    ],
)
def test_tune_rejects_bad_arguments(ratings, grid, options, match):
    with pytest.raises(InvalidParameterError, match=match):
        SparkALS().tune(ratings, grid, **options)


@pytest.mark.parametrize(
    "param, value, wanted",
    [
        ("rank", 0, "a positive int"),
        ("max_iter", 2.5, "a positive int"),
        ("reg_param", -0.1, "a float >= 0"),
        ("alpha", float("nan"), "a float >= 0"),
        ("implicit_prefs", "yes", "True or False"),
        ("cold_start_strategy", "keep", "one of ('drop', 'nan')"),
        ("random_state", 1.5, "None or an int in [0, 4294967295]"),
        ("random_state", -1, "None or an int in [0, 4294967295]"),
        ("random_state", 2**32, "None or an int in [0, 4294967295]"),
        ("spark", "local[*]", "a pyspark.sql.SparkSession or None"),
    ],
)
def test_bad_parameters_raise_before_spark_starts(ratings, param, value, wanted):
    model = SparkALS(**{param: value})
    message = f"SparkALS: {param} must be {wanted}, got {value!r}"
    with pytest.raises(InvalidParameterError) as caught:
        model.fit(ratings)
    assert str(caught.value) == message
    assert model.session is None
    with pytest.raises(NotFittedError):
        model.top_n(n=1)


def run_driver(script: str, *args: str, timeout: int = 300) -> dict:
    """Run ``script`` in a fresh Python (its own SparkContext); return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


OWNERSHIP_SCRIPT = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
        from movierec import SparkALS
        from movierec.spark import session as _session
        from movierec.testing import synthetic_ratings

        def running():
            return SparkContext._active_spark_context is not None

        ratings, out = synthetic_ratings(), {}
        small = dict(rank=3, max_iter=3, random_state=0)
        model = SparkALS(**small).fit(ratings)
        out["master"] = model.session.sparkContext.master
        out["checkpoint_dir_set"] = model.session.sparkContext.getCheckpointDir() is not None
        workdir = _session._Owned.workdir
        model.top_n(n=2)
        model.close()
        out["stopped_on_close"] = not running()
        out["files_removed"] = not workdir.exists()
        out["predicts_after_close"] = bool(model.predict(ratings.iloc[:3]).notna().all())
        with SparkALS(**small) as model:
            model.fit(ratings)
            out["running_inside_with"] = running()
        out["stopped_on_exit"] = not running()
        first, second = SparkALS(**small).fit(ratings), SparkALS(**small).fit(ratings)
        out["shared"] = first.session is second.session
        first.close()
        out["kept_for_other_model"] = running() and second.session is not None
        second.close()
        out["stopped_after_last"] = not running()
        given = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
        with SparkALS(**small, spark=given) as model:
            model.fit(ratings)
        out["given_kept"] = given.range(3).count() == 3
        borrowed = SparkALS(**small).fit(ratings)
        out["borrows_running_context"] = borrowed.session.sparkContext is given.sparkContext
        borrowed.close()
        out["borrowed_kept"] = given.range(3).count() == 3
        given.stop()
        out["first_files_stay_removed"] = not workdir.exists()  # later sessions in the same JVM
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_owned_session_is_stopped_on_close_and_exit_given_one_never():
    out = run_driver(OWNERSHIP_SCRIPT)
    warnings_seen = out.pop("warnings")
    assert out.pop("master") == "local[*]"
    assert all(out.values()), out
    assert warnings_seen == []  # including pyspark's pandas-version FutureWarning at start-up


CLUSTER_SCRIPT = """
    import json, sys, warnings
    from pyspark.sql import SparkSession
    from movierec import SparkALS
    from movierec.testing import synthetic_ratings

    spark = (
        SparkSession.builder.master(sys.argv[1]).appName("movierec-cluster-test")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.executor.memory", "512m")
        .config("spark.cores.max", "1").config("spark.sql.shuffle.partitions", "2")
        # SparkALS runs no Python on executors: a Python worker would fail to start with this.
        .config("spark.pyspark.python", "/nonexistent/python")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    ratings = synthetic_ratings()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with SparkALS(rank=4, max_iter=5, random_state=0, spark=spark) as model:
            model.fit(ratings)
            top = model.top_n(n=3)
            model.spark_top_n_cells = 0
            top_in_spark = model.top_n(n=3)
            executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
    out = {
        "master": spark.sparkContext.master,
        "executors": executors,
        "per_user": sorted(set(top.groupby("userId").size())),
        "users": int(top.userId.nunique()),
        "seen_recommended": len(top.merge(ratings, on=["userId", "movieId"])),
        "paths_agree": top[["userId", "movieId"]].equals(top_in_spark[["userId", "movieId"]]),
        "session_kept": spark.range(2).count() == 2,
    }
    spark.stop()
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_fit_and_top_n_on_a_standalone_cluster(spark_cluster):
    out = run_driver(CLUSTER_SCRIPT, spark_cluster)
    assert out["master"] == spark_cluster and out["executors"] == 1
    assert out["per_user"] == [3] and out["users"] == synthetic_ratings().userId.nunique()
    assert out["seen_recommended"] == 0 and out["paths_agree"] and out["session_kept"]


@pytest.mark.realdata
@pytest.mark.slow
def test_u1_rmse_and_top_5_for_every_user(spark, u1):
    with SparkALS(random_state=0, spark=spark) as model:
        model.fit(u1.train)
        with pytest.warns(MovieRecWarning, match="left out"):
            rmse = model.rmse(u1.test)
        top = model.top_n(n=5)
    assert rmse <= 0.935
    assert top.userId.nunique() == 943 and (top.groupby("userId").size() == 5).all()
    assert top.merge(u1.train, on=["userId", "movieId"]).empty


CHECKPOINT_SCRIPT = """
    import json, os
    from pyspark.sql import SparkSession
    from movierec import SparkALS
    from movierec.testing import synthetic_ratings

    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("OFF")
    before = spark.sparkContext.getCheckpointDir()
    # 25 implicit iterations with no checkpoint directory overflowed the JVM stack before.
    with SparkALS(implicit_prefs=True, rank=4, max_iter=25, random_state=0, spark=spark) as model:
        users = int(model.fit(synthetic_ratings()).top_n(n=3).userId.nunique())
    after = spark.sparkContext.getCheckpointDir()
    spark.stop()
    print(json.dumps({"before": before, "after": after, "users": users}))
"""


@pytest.mark.slow
def test_long_fit_on_a_callers_local_session_gets_a_checkpoint_dir():
    out = run_driver(CHECKPOINT_SCRIPT)
    assert out["before"] is None
    assert out["after"] is not None and "movierec-checkpoints-" in out["after"]
    assert out["users"] > 0


def test_cluster_session_without_checkpoint_dir_warns_for_long_fits():
    from types import SimpleNamespace

    from movierec.spark.session import ensure_checkpoint_dir

    context = SimpleNamespace(master="spark://10.0.0.1:7077", getCheckpointDir=lambda: None)
    session = SimpleNamespace(sparkContext=context)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensure_checkpoint_dir(session, 10)  # ALS checkpoints only past 10 iterations
    with pytest.warns(MovieRecWarning, match="setCheckpointDir"):
        ensure_checkpoint_dir(session, 11)
