"""Hostile inputs: fuzzed ratings frames through fit, ratings off their scale, ids mixing 1 and
"1", strings for bools, unknown ``--users``, an unusable ``--out``, and SIGINT/SIGTERM while
Spark fits. Each must end in a clear error or the right result, with nothing left behind.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec import BiasedBaseline, Popularity, WeightedEnsemble
from movierec._core.ids import IdIndex
from movierec._core.validation import SCALE_ATTR, check_pairs, check_ratings, declare_scale, declared_scale
from movierec.exceptions import DataValidationError, InvalidParameterError

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# The JVM prints this notice on every start (Spark 4 adds the module); it is not movierec's output.
JVM_NOTICE = "WARNING: Using incubator modules"


def small_ratings(scale: tuple[float, float] | None = None) -> pd.DataFrame:
    """Return 3 users x 4 movies, every pair rated 1-5 (and one 3.5), optionally declaring ``scale``."""
    users, movies = np.meshgrid([1, 2, 3], [10, 20, 30, 40], indexing="ij")
    rating = np.array([5, 4, 1, 2, 3, 3.5, 2, 5, 1, 1, 4, 5], dtype=float)
    frame = pd.DataFrame({"userId": users.ravel(), "movieId": movies.ravel(), "rating": rating})
    return frame if scale is None else declare_scale(frame, scale)


# -- fuzz: any frame -> a fitted model or a clear error ---------------------------------------
ID_VALUES = st.one_of(
    st.integers(-3, 5), st.sampled_from(["1", "a", "", "ü"]), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.just(b"1"), st.just((1,)), st.just(np.int64(2)),
)
RATING_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10), st.booleans(), st.none(),
    st.sampled_from(["4", "x"]), st.just(np.float32(2.5)), st.just(complex(1, 1)),
)
DTYPES = st.sampled_from([None, "object", "category", "Int64", "string", "float64", "int64", "bool"])


@st.composite
def hostile_frames(draw: st.DrawFn) -> object:
    """A valid ratings frame (int or string ids), then up to three hostile changes: a bad value,
    a dtype, a missing, extra or duplicated column or row, a declared scale; sometimes not a frame."""
    if draw(st.integers(0, 29)) == 0:
        return draw(st.sampled_from([None, [], {"userId": [1]}, "ratings.csv", np.zeros((2, 3))]))
    n_users, n_items = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
                          min_size=1, max_size=10, unique=True))
    users, items = (np.array(column) for column in zip(*pairs))
    frame = pd.DataFrame({"userId": users * 3 + 1, "movieId": items + 10,
                          "rating": draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.5, 5.0]),
                                                  min_size=len(pairs), max_size=len(pairs)))})
    for column in ("userId", "movieId"):
        if draw(st.booleans()):
            frame[column] = frame[column].map(lambda v: f"m{v}")
    if draw(st.booleans()):
        frame["timestamp"] = np.arange(len(frame)) * 1000
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["value", "value", "dtype", "drop", "extra", "duplicate", "scale", "empty"]))
        if change == "value":
            column = draw(st.sampled_from(list(frame.columns)))
            values = RATING_VALUES if column == "rating" else ID_VALUES
            frame[column] = frame[column].astype(object)
            frame.iloc[draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc(column)] = draw(values)
        elif change == "dtype":
            column = draw(st.sampled_from(list(frame.columns)))
            try:
                frame[column] = frame[column].astype(draw(DTYPES) or "object")
            except (TypeError, ValueError, OverflowError):
                pass
        elif change == "drop":
            frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
        elif change == "extra":
            frame["extra"] = 0
        elif change == "duplicate":
            frame = pd.concat([frame, frame.iloc[[0]]])
        elif change == "scale":
            frame.attrs[SCALE_ATTR] = draw(st.sampled_from([(1, 5), (0.5, 5.0), (1, 4), (5, 1), "1-5", (1, np.nan)]))
        else:
            frame = frame.iloc[:0]
        if frame.empty or len(frame.columns) == 0:
            break
    return frame


def fitted_or_clear_error(model, frame) -> object | None:
    """Return the fitted model, or None after DataValidationError/InvalidParameterError."""
    try:
        return model.fit(frame)
    except (DataValidationError, InvalidParameterError) as err:
        assert str(err)  # a message, not a bare exception
        return None


def snapshot(frame: object) -> object:
    return frame.copy(deep=True) if isinstance(frame, pd.DataFrame) else frame


@FUZZ
@given(hostile_frames())
@example(pd.DataFrame({"userId": [1, "1"], "movieId": [1, 2], "rating": [3.0, 4.0]}))
@example(pd.DataFrame({"userId": [1, 2], "movieId": [1, 1], "rating": [3.0, 6.0]}).pipe(
    lambda f: f.attrs.update({SCALE_ATTR: (1, 5)}) or f))
def test_any_frame_fits_or_raises_a_clear_error(frame):
    before = snapshot(frame)
    for model in (BiasedBaseline(), Popularity()):
        fitted = fitted_or_clear_error(model, frame)
        if isinstance(before, pd.DataFrame):  # never modified, errors or not
            pd.testing.assert_frame_equal(frame, before)
            assert frame.attrs == before.attrs
        if fitted is None:
            continue
        # Not a silent wrong result: one index entry per distinct id, of one type, ...
        assert len(fitted.users_) == frame["userId"].nunique()
        assert len(fitted.items_) == frame["movieId"].nunique()
        assert len({type(v).__name__ for v in fitted.users_.ids}) == 1
        # ... every rated pair scored with a finite number, ...
        scores = fitted.predict(frame[["userId", "movieId"]])
        assert np.isfinite(scores.to_numpy(dtype=float)).all()
        # ... ratings on the declared scale, and the model saved and loaded the same.
        scale = declared_scale(frame)
        if scale is not None:
            assert frame["rating"].between(*scale).all()
        with tempfile.TemporaryDirectory() as folder:
            fitted.save(folder)
            loaded = type(fitted).load(folder)
        np.testing.assert_array_equal(loaded.predict(frame[["userId", "movieId"]]), scores)


# -- ratings on a declared scale ----------------------------------------------------------------
def test_a_rating_off_the_declared_scale_is_refused_with_an_example_row():
    ratings = small_ratings((1, 5))
    ratings.loc[7, "rating"] = 6.0  # one stray rating, set in place: attrs stay
    for fit in (BiasedBaseline().fit, Popularity().fit, check_ratings):
        with pytest.raises(DataValidationError, match=r"outside .*\(1, 5\).*row 7.*'rating': 6\.0"):
            fit(ratings)


def test_declared_scale_survives_slicing_and_an_explicit_scale_wins():
    ratings = small_ratings((1, 5))
    assert declared_scale(ratings[ratings["userId"] > 1].copy()) == (1.0, 5.0)
    check_ratings(small_ratings(), rating_scale=(1, 5))
    with pytest.raises(DataValidationError, match=r"outside rating_scale \(2, 5\)"):
        check_ratings(ratings, rating_scale=(2, 5))
    # A frame that declares nothing is on its own range: 6 is then simply its top rating.
    check_ratings(small_ratings().assign(rating=lambda f: f["rating"] + 1))


@pytest.mark.parametrize("scale", [(5, 1), "1-5", (1, np.nan), (1, 2, 3), (True, 5)])
def test_a_malformed_declared_scale_is_refused(scale):
    ratings = small_ratings()
    with pytest.raises(DataValidationError, match="rating_scale"):
        declare_scale(ratings, scale)
    ratings.attrs[SCALE_ATTR] = scale
    with pytest.raises(DataValidationError, match=r"attrs\['rating_scale'\]"):
        check_ratings(ratings)


def test_surprise_svd_clips_to_the_declared_scale_and_refuses_a_stray_rating():
    surprise_svd = pytest.importorskip("movierec.models.surprise_svd")
    ratings = small_ratings((0.5, 5))
    model = surprise_svd.SurpriseSVD(n_factors=2, n_epochs=3, random_state=0).fit(ratings)
    assert model.rating_scale_ == (0.5, 5.0)  # the frame's scale, not its range (1, 5)
    ratings.loc[0, "rating"] = 6.0
    with pytest.raises(DataValidationError, match="outside"):
        surprise_svd.SurpriseSVD(n_factors=2, n_epochs=3, random_state=0).fit(ratings)
    with pytest.raises(DataValidationError, match=r"outside rating_scale \(1, 5\)"):
        surprise_svd.SurpriseSVD(rating_scale=(1, 5), n_epochs=3).fit(small_ratings().assign(rating=6.0))


# -- ids: one type per column -------------------------------------------------------------------
@pytest.mark.parametrize("column", ["userId", "movieId"])
def test_ids_mixing_1_and_the_string_1_are_refused_at_fit(column):
    ratings = small_ratings().astype({column: object})
    ratings.loc[3, column] = str(ratings.loc[3, column])
    for fit in (BiasedBaseline().fit, Popularity().fit, WeightedEnsemble([BiasedBaseline()]).fit):
        with pytest.raises(DataValidationError, match=rf"{column} mixes integer and string ids.*row 3"):
            fit(ratings)
    with pytest.raises(DataValidationError, match="mixes"):
        check_pairs(ratings)


def test_id_index_refuses_mixed_ids_but_keeps_numpy_and_python_ints_together():
    with pytest.raises(DataValidationError, match="mix strings"):
        IdIndex([1, "1"])
    assert IdIndex(np.array([np.int64(2), 1], dtype=object)).ids.tolist() == [1, 2]
    assert BiasedBaseline().fit(small_ratings().astype({"userId": object})).users_.ids.tolist() == [1, 2, 3]


# -- bools are bools ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["False", 0, 1, None, np.array([True])])
def test_exclude_seen_must_be_a_real_bool(value):
    from movierec import WeightedEnsemble

    for model in (BiasedBaseline().fit(small_ratings()),
                  WeightedEnsemble([BiasedBaseline()], errors=[1.0]).fit(small_ratings())):
        with pytest.raises(InvalidParameterError, match="exclude_seen"):
            model.top_n(n=2, exclude_seen=value)


@pytest.mark.realdata
def test_movielens_frames_carry_their_scale_and_refuse_a_stray_rating(data_home):
    from movierec import official_folds
    from movierec.exceptions import DataValidationError

    fold = official_folds("ml-100k", which=("u1",), data_home=data_home)[0]
    assert fold.train.attrs["rating_scale"] == (1.0, 5.0)
    bad = fold.train.copy()
    bad.loc[bad.index[0], "rating"] = 6.0
    with pytest.raises(DataValidationError, match="rating"):
        BiasedBaseline().fit(bad)


# -- the command: --users and --out --------------------------------------------------------------
def run_cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, MOVIEREC_DATA=str(data))
    environment.pop("MOVIEREC_MIRROR", None)
    return subprocess.run([sys.executable, "-m", "movierec", *args], check=False, capture_output=True,
                          text=True, timeout=300, env=environment, cwd=ROOT)


def baseline_recommend(out: Path, *extra: str) -> tuple[str, ...]:
    return ("recommend", "--task", "rating", "--models", "baseline", "--quiet", "--out", str(out), *extra)


@pytest.mark.realdata
def test_unknown_users_get_one_warning_line_and_the_known_ones_are_reported(tmp_path, data_home):
    result = run_cli(*baseline_recommend(tmp_path, "--users", "1,99999,2,123456"), data=data_home)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "--users" in line]
    assert warnings == [("movierec: warning: --users: 99999, 123456 not in the training part, "
                         "left out of the report")], result.stderr
    report = (tmp_path / "report.html").read_text()
    assert "99999" not in report and "123456" not in report


@pytest.mark.realdata
def test_no_known_user_exits_1_before_any_fitting(tmp_path, data_home):
    start = time.perf_counter()
    result = run_cli(*baseline_recommend(tmp_path / "out", "--users", "99999"), data=data_home)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        ("movierec: error: --users: none of 99999 is in the training part, so the report would show "
         "nobody; user ids there run from 1 to 943")], result.stderr
    assert not (tmp_path / "out" / "report.html").exists()
    assert time.perf_counter() - start < 60


@pytest.mark.realdata
@pytest.mark.parametrize("where, reason", [
    ("a-file", "is a file, not a folder"),
    ("a-file/below", "cannot write there (Not a directory)"),
    ("/proc/movierec-out", "cannot write there"),
])
def test_an_unusable_out_fails_at_once_with_one_line(tmp_path, data_home, where, reason):
    (tmp_path / "a-file").write_text("keep me")
    out = Path(where) if where.startswith("/") else tmp_path / where
    # als would take a minute to fit: failing in seconds shows nothing was fitted first
    start = time.perf_counter()
    result = run_cli("recommend", "--models", "ease,als", "--out", str(out), data=data_home)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"movierec: error: --out {out}: {reason}"), result.stderr
    assert time.perf_counter() - start < 30
    assert (tmp_path / "a-file").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.realdata
def test_a_read_only_out_folder_fails_at_once(tmp_path, data_home):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    result = run_cli(*baseline_recommend(out), data=data_home)
    assert result.returncode == 1
    assert result.stderr.startswith(f"movierec: error: --out {out}: cannot write there"), result.stderr


@pytest.mark.realdata
def test_evaluate_checks_its_out_file_first(tmp_path, data_home):
    result = run_cli("evaluate", "--task", "rating", "--models", "baseline", "--folds", "u1", "--quiet",
                     "--out", str(tmp_path), data=data_home)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"movierec: error: --out {tmp_path}: is a folder, give a file name such as {tmp_path / 'table.csv'}"]


# -- clean interrupts ----------------------------------------------------------------------------
def spark_folders(tmp: Path) -> set[str]:
    return set(glob.glob(os.path.join(tmp, "movierec-spark-*")))


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("signum, code, line, when", [
    (signal.SIGINT, 130, "movierec: interrupted", "fitting"),
    (signal.SIGTERM, 143, "movierec: interrupted (SIGTERM)", "fitting"),
    (signal.SIGINT, 130, "movierec: interrupted", "starting"),
])
def test_a_signal_to_the_process_group_stops_spark_and_prints_one_line(tmp_path, data_home, signum, code,
                                                                        line, when):
    pytest.importorskip("pyspark")
    # a temp folder of its own, so that another process's Spark folders are not mistaken for its own
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    environment = dict(os.environ, MOVIEREC_DATA=str(data_home), TMPDIR=str(tmp))
    with open(tmp_path / "stderr", "w+") as stderr:
        # its own process group, as a terminal gives a foreground job: killpg reaches the JVM too
        process = subprocess.Popen(
            [sys.executable, "-m", "movierec", "recommend", "--task", "rating", "--models", "als",
             "--quiet", "--out", str(tmp_path / "out")],
            stdout=subprocess.DEVNULL, stderr=stderr, env=environment, cwd=ROOT, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            folder = None
            while folder is None or (when == "fitting" and not glob.glob(f"{folder}/checkpoints/*")):
                assert process.poll() is None and time.monotonic() < deadline, "Spark never started"
                new = spark_folders(tmp)
                folder = min(new) if new else None
                time.sleep(0.05)
            if when == "fitting":
                time.sleep(2)  # the session is up and ALS is running
            os.killpg(process.pid, signum)
            assert process.wait(timeout=120) == code
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        stderr.seek(0)
        lines = [text for text in stderr.read().splitlines() if not text.startswith(JVM_NOTICE)]
    assert lines == [line]
    assert not os.path.exists(folder)
    assert not spark_folders(tmp)
    # no JVM of ours outlives the command
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-g", str(process.pid)], check=False, capture_output=True, text=True).stdout.split()
    alive = [pid for pid in survivors if not _is_zombie(pid)]
    assert not alive
    assert not (tmp_path / "out" / "report.html").exists()


def _is_zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True
