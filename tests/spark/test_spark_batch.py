"""movierec.spark.batch.batch_top_n: every user's local top_n, scored on a standalone cluster and on local[2].

Spark runs in one driver process of its own (a process holds one SparkContext, and the adapter tests
keep theirs open), with ``PYSPARK_PYTHON`` set to this interpreter so the executors' Python workers
import movierec. The models are fitted and saved here; the driver loads them, runs every job of a
plan on the cluster, then on local[2], and writes the rows as Parquet; each test compares them with
``top_n`` of the model fitted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from movierec import EASE, BiasedBaseline, Popularity, Recommender, SurpriseSVD, WeightedEnsemble
from movierec.exceptions import (
    DataValidationError,
    InvalidParameterError,
    MovieRecWarning,
    NotFittedError,
)
from movierec.spark.batch import batch_top_n
from movierec.testing import synthetic_ratings

TOP_N = ["userId", "movieId", "score", "rank"]

DRIVER = """
    import json, sys, warnings
    from pathlib import Path

    from movierec import SparkALS, load_model
    from movierec.spark.session import local_session_builder, quiet_pyspark_warnings
    from movierec.spark.batch import batch_top_n
    from movierec.testing import synthetic_ratings

    plan, workdir = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    results = {}
    for number, session in enumerate(plan):
        builder = local_session_builder(workdir / f"session-{number}", master=session["master"],
                                        shuffle_partitions=2, driver_memory="1g")
        for key, value in session["conf"].items():
            builder = builder.config(key, value)
        with quiet_pyspark_warnings():
            spark = builder.getOrCreate()
        for job in session["jobs"]:
            if job["model"] == "als":  # fitted here, on this session: its local top_n is written here too
                model = SparkALS(rank=3, max_iter=3, random_state=0, spark=spark).fit(synthetic_ratings())
                model.top_n(n=job["n"], exclude_seen=job["exclude_seen"]).to_parquet(job["local"])
            else:
                model = load_model(job["model"])
            result = {"master": spark.sparkContext.master, "errors": []}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(job.get("calls", 1)):
                    try:
                        top = batch_top_n(model, spark, job["users"], job["n"],
                                          exclude_seen=job["exclude_seen"], path=job["path"])
                    except Exception as err:
                        result["errors"].append(f"{type(err).__name__}: {err}")
                        continue
                    result["schema"] = top.schema.simpleString()
                    if job["path"] is None:
                        top.toArrow().to_pandas().to_parquet(job["collect"])
            result["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
            results[job["name"]] = result
        # counted after the jobs: executors register while the first job waits for them
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
        results[f"executors-{number}"] = executors
        model = load_model(session["jobs"][0]["model"])
        spark.stop()
        try:
            batch_top_n(model, spark)
        except Exception as err:
            results[f"stopped-{number}"] = f"{type(err).__name__}: {err}"
    print(json.dumps(results))
"""


def run_driver(plan: list[dict], workdir: Path, timeout: int = 600) -> dict:
    """Run the plan in a fresh Python whose executors use this interpreter; return its JSON."""
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(plan_file), str(workdir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert done.returncode == 0, f"driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def string_ids(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings.assign(userId="u" + ratings.userId.astype(str), movieId="m" + ratings.movieId.astype(str))


def read_rows(path: str | Path) -> pd.DataFrame:
    """Return the top-N rows at ``path`` (a Parquet file or folder), ordered as top_n orders them."""
    frame = pd.read_parquet(path)[TOP_N]
    return frame.sort_values(["userId", "rank"], kind="stable").reset_index(drop=True)


def job(name: str, model: str, tmp: Path, *, users=None, n=10, exclude_seen=True, to_path=False, **extra):
    """Return one job of the driver's plan: batch_top_n of the model saved at ``model`` ("als": fit there).

    With ``to_path`` the rows are written by ``path=``, else collected and written to ``collect``.
    """
    return {
        "name": name, "model": model, "users": users, "n": n, "exclude_seen": exclude_seen,
        "path": str(tmp / f"{name}.parquet") if to_path else None,
        "collect": str(tmp / f"{name}-collected.parquet"),
        "local": str(tmp / f"{name}-local.parquet"),
        **extra,
    }  # fmt: skip


@pytest.fixture(scope="module")
def models(u1, tmp_path_factory):
    """Models fitted here (on ml-100k u1 or synthetic ratings) and the folders the driver loads them from."""
    folder = tmp_path_factory.mktemp("batch-models")
    ratings = synthetic_ratings()
    ensemble = WeightedEnsemble([Popularity(), BiasedBaseline()], errors=[1.0, 0.95], random_state=0)
    fitted = {
        "ease": EASE().fit(u1.train),
        "svd": SurpriseSVD(random_state=0).fit(u1.train),
        "ensemble": ensemble.fit(u1.train),
        "popularity": Popularity().fit(ratings),  # many tied counts: ties break by movieId
        "strings": BiasedBaseline().fit(string_ids(ratings)),
    }
    for name, model in fitted.items():
        model.save(folder / name)
    return {name: (model, str(folder / name)) for name, model in fitted.items()}


@pytest.fixture(scope="module")
def batch(models, spark_cluster, tmp_path_factory):
    """Run the jobs on the session's standalone cluster, then on local[2], in one driver; return its
    results, the jobs."""
    tmp = tmp_path_factory.mktemp("batch")
    unknown = 10**9
    cluster_jobs = [job(f"cluster-{m}", models[m][1], tmp, to_path=True) for m in ("ease", "svd", "ensemble")]
    local_jobs = [
        job("subset", models["popularity"][1], tmp, users=[23, 3, unknown, 13, 3], n=4, exclude_seen=False),
        job("unknown-only", models["popularity"][1], tmp, users=[unknown]),
        job("parquet", models["popularity"][1], tmp, n=3, to_path=True, calls=2),
        job("strings", models["strings"][1], tmp, n=5),
        job("als", "als", tmp, n=5, exclude_seen=True),
    ]
    cluster_conf = {"spark.executor.memory": "512m", "spark.cores.max": "1"}
    plan = [
        {"master": spark_cluster, "conf": cluster_conf, "jobs": cluster_jobs},
        {"master": "local[2]", "conf": {}, "jobs": local_jobs},
    ]
    results = run_driver(plan, tmp)
    return results, {j["name"]: j for j in cluster_jobs + local_jobs}


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name", ["ease", "svd", "ensemble"])
def test_cluster_gives_the_local_top_n_of_every_user(batch, models, name):
    results, jobs = batch
    result = results[f"cluster-{name}"]
    assert result["master"].startswith("spark://") and results["executors-0"] == 1
    assert result["errors"] == [] and result["warnings"] == []
    assert result["schema"] == "struct<userId:bigint,movieId:bigint,score:double,rank:bigint>"
    path = Path(jobs[f"cluster-{name}"]["path"])
    assert len(list(path.glob("part-*.parquet"))) == 2  # 2 partitions of users: the default parallelism
    model = models[name][0]
    want = model.top_n(n=10)
    assert want.userId.nunique() == 943  # every user of u1.train, 10 unseen movies each
    pd.testing.assert_frame_equal(read_rows(path), want, check_exact=True)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_users_subset_warns_once_about_unknown_users_and_keeps_seen_movies(batch, models):
    results, jobs = batch
    result = results["subset"]
    assert result["master"] == "local[2]" and result["errors"] == []
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("MovieRecWarning: 1 user(s) were not seen in fit")
    got = read_rows(jobs["subset"]["collect"])
    model = models["popularity"][0]
    with pytest.warns(MovieRecWarning, match="1 user"):
        want = model.top_n([23, 3, 10**9, 13, 3], n=4, exclude_seen=False)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert sorted(got.userId.unique()) == [3, 13, 23]
    assert not got.merge(synthetic_ratings(), on=["userId", "movieId"]).empty  # seen movies are kept


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_only_unknown_users_give_no_rows_and_one_warning(batch):
    results, jobs = batch
    assert results["unknown-only"]["errors"] == [] and len(results["unknown-only"]["warnings"]) == 1
    assert read_rows(jobs["unknown-only"]["collect"]).empty


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_parquet_is_written_once_and_an_existing_path_is_refused(batch, models):
    results, jobs = batch
    path = Path(jobs["parquet"]["path"])
    assert list(path.glob("part-*.parquet")) and (path / "_SUCCESS").is_file()
    errors = results["parquet"]["errors"]
    assert errors == [f"FileExistsError: batch_top_n: {path} already exists; give a path that does not"]
    pd.testing.assert_frame_equal(read_rows(path), models["popularity"][0].top_n(n=3), check_exact=True)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_string_ids_come_back_as_strings(batch, models):
    results, jobs = batch
    assert results["strings"]["schema"] == "struct<userId:string,movieId:string,score:double,rank:bigint>"
    want = models["strings"][0].top_n(n=5)
    pd.testing.assert_frame_equal(read_rows(jobs["strings"]["collect"]), want, check_exact=True)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_spark_als_is_scored_from_its_factors(batch):
    results, jobs = batch
    assert results["als"]["errors"] == [] and results["als"]["warnings"] == []
    want = read_rows(jobs["als"]["local"])
    assert len(want) == 5 * synthetic_ratings().userId.nunique()
    pd.testing.assert_frame_equal(read_rows(jobs["als"]["collect"]), want, check_exact=True)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
def test_a_stopped_session_is_refused(batch):
    results, _ = batch
    stopped = "BackendError: batch_top_n: the SparkSession given as spark= has been stopped"
    assert results["stopped-0"] == results["stopped-1"] == stopped


# -- argument checks: before Spark is touched --------------------------------------------------
class MeanOnly(Recommender):
    """A Recommender that is not array-backed: batch_top_n cannot ship it."""

    def fit(self, ratings):
        self.mean_ = float(ratings.rating.mean())
        return self

    def predict(self, pairs):
        return pd.Series(self.mean_, index=pairs.index)

    def top_n(self, users=None, n=5, *, exclude_seen=True):
        raise NotImplementedError


@pytest.fixture(scope="module")
def small():
    return synthetic_ratings()


def test_a_model_that_is_not_array_backed_is_refused_by_name(small):
    with pytest.raises(InvalidParameterError, match=r"^batch_top_n: model must be an ArrayRecommender .* MeanOnly;"):
        batch_top_n(MeanOnly().fit(small), spark=None)
    ensemble = WeightedEnsemble([Popularity(), MeanOnly()], errors=[1.0, 1.0], random_state=0).fit(small)
    with pytest.raises(InvalidParameterError, match="whose member 1 is a MeanOnly"):
        batch_top_n(ensemble, spark=None)


def test_an_ensemble_ranking_candidates_is_refused(small):
    ensemble = WeightedEnsemble([Popularity(), BiasedBaseline()], errors=[1.0, 1.0], candidates=5).fit(small)
    with pytest.raises(InvalidParameterError, match="candidates=5 .* use candidates=None"):
        batch_top_n(ensemble, spark=None)


def test_an_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError, match="this EASE is not fitted yet"):
        batch_top_n(EASE(), spark=None)


OWNER = "batch_top_n: "


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"n": 0}, DataValidationError, "n must be a positive int, got 0"),
        ({"exclude_seen": "no"}, InvalidParameterError, f"{OWNER}exclude_seen must be True or False, got 'no'"),
        ({"path": 3}, InvalidParameterError, f"{OWNER}path must be a str or os.PathLike path or None, got 3"),
        ({"spark": "yarn"}, InvalidParameterError, f"{OWNER}spark must be a pyspark.sql.SparkSession, got 'yarn'"),
    ],
)
def test_bad_arguments_name_the_argument(small, arguments, error, message):
    if "spark" in arguments:
        pytest.importorskip("pyspark")
    with pytest.raises(error) as caught:
        batch_top_n(Popularity().fit(small), **{"spark": None, **arguments})
    assert str(caught.value) == message
