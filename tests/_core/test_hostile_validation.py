"""Hostile ratings frames at fit (movierec._core.validation): fuzzed frames and ratings off their
declared scale. Each must end in a clear error or the right result, with the caller's frame unchanged.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec import BiasedBaseline, Popularity
from movierec._core.validation import SCALE_ATTR, check_ratings, declare_scale, declared_scale
from movierec.exceptions import DataValidationError, InvalidParameterError

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


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


def id_type(ids: np.ndarray) -> str:
    """Return "int" or "str" for an index's ids of one type (docs/architecture.md, section 2), else what they hold."""
    if ids.dtype.kind in "iu":
        return "int"
    if ids.dtype == object and all(isinstance(v, str) for v in ids):
        return "str"
    return f"{ids.dtype} of {sorted({type(v).__name__ for v in ids})}"


# A Python int and a numpy int in one object column are one id type: integers, stored as int64.
# (hostile_frames drew this one: a value set to np.int64(2), then its row duplicated.)
MIXED_INT_TYPES = pd.DataFrame({"userId": pd.Series([np.int64(2), 1], dtype=object, index=[0, 0]),
                                "movieId": [10, 10], "rating": [0.5, 0.5]}, index=[0, 0])


@FUZZ
@given(hostile_frames())
@example(pd.DataFrame({"userId": [1, "1"], "movieId": [1, 2], "rating": [3.0, 4.0]}))
@example(pd.DataFrame({"userId": [1, 2], "movieId": [1, 1], "rating": [3.0, 6.0]}).pipe(
    lambda f: f.attrs.update({SCALE_ATTR: (1, 5)}) or f))
@example(MIXED_INT_TYPES)
def test_any_frame_fits_or_raises_a_clear_error(frame):
    before = snapshot(frame)
    for model in (BiasedBaseline(), Popularity()):
        fitted = fitted_or_clear_error(model, frame)
        if isinstance(before, pd.DataFrame):  # never modified, errors or not
            pd.testing.assert_frame_equal(frame, before)
            assert frame.attrs == before.attrs
        if fitted is None:
            continue
        # Not a silent wrong result: one index entry per distinct id, all integers or all strings, ...
        assert len(fitted.users_) == frame["userId"].nunique()
        assert len(fitted.items_) == frame["movieId"].nunique()
        assert id_type(fitted.users_.ids) in ("int", "str")
        assert id_type(fitted.items_.ids) in ("int", "str")
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


def test_a_python_and_a_numpy_int_in_one_column_fit_as_one_integer_id_type():
    for model in (BiasedBaseline(), Popularity()):
        assert sorted(type(v).__name__ for v in MIXED_INT_TYPES["userId"]) == ["int", "int64"]
        fitted = model.fit(MIXED_INT_TYPES)
        assert fitted.users_.ids.dtype == np.int64 and fitted.users_.ids.tolist() == [1, 2]


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
