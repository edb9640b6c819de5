"""load_ratings: your own CSV/TSV/Parquet ratings, explicit or implicit, and errors that name file, line, column."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec import DatasetError, DataValidationError, MovieRecWarning
from movierec._core.validation import check_ratings
from movierec.data.ratings_file import RatingsFile, load_ratings, parse_columns

# The MovieLens "latest" layout: a header, commas, half-star ratings, a separate movies.csv.
LATEST = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,3,4.5,964981247\n"
    "2,1,0.5,964982224\n"
    "2,50,5.0,964983815\n"
)
MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children\n"
    '3,"American President, The (1995)",Comedy|Drama|Romance\n'
    "50,Usual Suspects (1995),Crime|Mystery|Thriller\n"
)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


# -- reading -------------------------------------------------------------------------------------
def test_latest_layout_reads_like_movielens(tmp_path):
    data = load_ratings(write(tmp_path, "ratings.csv", LATEST), rating="rating", timestamp="timestamp",
                        items=write(tmp_path, "movies.csv", MOVIES))
    assert isinstance(data, RatingsFile) and not data.implicit and data.users is None
    assert data.name == "ratings.csv"
    expected = pd.DataFrame({"userId": [1, 1, 2, 2], "movieId": [1, 3, 1, 50], "rating": [4.0, 4.5, 0.5, 5.0],
                             "timestamp": [964982703, 964981247, 964982224, 964983815]})
    pd.testing.assert_frame_equal(data.ratings, expected)
    assert check_ratings(data.ratings) is data.ratings
    assert data.items["title"].tolist() == ["Toy Story (1995)", "American President, The (1995)",
                                            "Usual Suspects (1995)"]
    assert data.items["genres"].iloc[1] == "Comedy|Drama|Romance"
    assert data.items["movieId"].dtype == np.int64
    import hashlib

    assert data.sha256 == hashlib.sha256(LATEST.encode()).hexdigest()


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_the_separator_is_detected_and_columns_renamed(tmp_path, sep):
    text = sep.join(["visitor", "sku", "stars"]) + "\n" + sep.join(["7", "A-1", "3"]) + "\n"
    data = load_ratings(write(tmp_path, "r.txt", text), user="visitor", item="sku", rating="stars")
    assert data.ratings.to_dict("list") == {"userId": [7], "movieId": ["A-1"], "rating": [3.0]}


def test_a_given_separator_wins_over_detection(tmp_path):
    # The header holds more commas than semicolons, but the caller says ';'.
    path = write(tmp_path, "r.csv", "u;i;note,with,commas\n1;2;x\n")
    data = load_ratings(path, user="u", item="i", sep=";")
    assert data.ratings[["userId", "movieId"]].to_numpy().tolist() == [[1, 2]]


def test_no_rating_column_is_implicit_feedback(tmp_path):
    data = load_ratings(write(tmp_path, "clicks.csv", "user,item\nu1,m1\nu1,m2\nu2,m1\n"), user="user", item="item")
    assert data.implicit
    assert data.ratings["rating"].tolist() == [1.0, 1.0, 1.0]
    assert list(data.ratings.columns) == ["userId", "movieId", "rating"]
    assert data.items.to_dict("list") == {"movieId": ["m1", "m2"], "title": ["m1", "m2"]}


def test_an_unmapped_rating_column_warns_that_it_is_read_as_implicit(tmp_path):
    with pytest.warns(MovieRecWarning, match="rating='rating'"):
        data = load_ratings(write(tmp_path, "ratings.csv", LATEST))
    assert data.implicit and (data.ratings["rating"] == 1.0).all()


def test_implicit_data_fits_a_ranking_model(tmp_path):
    from movierec import EASE

    rows = [f"u{u},m{(u * 7 + k) % 9}" for u in range(12) for k in range(4)]
    data = load_ratings(write(tmp_path, "c.csv", "user,item\n" + "\n".join(rows) + "\n"), user="user", item="item")
    top = EASE(l2=1.0).fit(data.ratings).top_n(["u0"], n=3)
    assert len(top) == 3 and not set(top["movieId"]) & {f"m{k}" for k in range(4)}


@pytest.mark.parametrize(("header", "rows", "implicit", "columns"), [
    ("userId,movieId,rating,timestamp", ["1,2,4,100", "2,2,3,200"], False, ["userId", "movieId", "rating", "timestamp"]),
    ("userId,movieId,rating", ["1,2,4", "2,2,3"], False, ["userId", "movieId", "rating"]),
    ("userId,movieId,timestamp", ["1,2,100", "2,2,200"], True, ["userId", "movieId", "rating", "timestamp"]),
    ("userId,movieId", ["1,2", "2,2"], True, ["userId", "movieId", "rating"]),
])
def test_if_present_columns_are_read_when_the_file_has_them(tmp_path, header, rows, implicit, columns):
    path = write(tmp_path, "r.csv", "\n".join([header, *rows]) + "\n")
    data = load_ratings(path, rating="rating", timestamp="timestamp", if_present=("rating", "timestamp"))
    assert data.implicit == implicit and list(data.ratings.columns) == columns
    assert data.ratings["rating"].tolist() == ([1.0, 1.0] if implicit else [4.0, 3.0])
    # without if_present a mapped column is required
    if header.count(",") < 3:
        with pytest.raises(DatasetError, match="no column"):
            load_ratings(path, rating="rating", timestamp="timestamp")
    # the ids are never optional
    with pytest.raises(DatasetError, match="no column 'user'"):
        load_ratings(path, user="user", rating="rating", if_present=("rating",))


@pytest.mark.parametrize("bad", [("user",), "rating", ("rating", "stars")])
def test_if_present_takes_only_rating_and_timestamp(tmp_path, bad):
    with pytest.raises(ValueError, match="if_present"):
        load_ratings(write(tmp_path, "r.csv", LATEST), rating="rating", if_present=bad)


def test_iso_timestamps_become_unix_seconds(tmp_path):
    path = write(tmp_path, "r.csv", "u,i,t\n1,2,1970-01-02T00:00:00Z\n1,3,1970-01-01 00:01:00\n")
    data = load_ratings(path, user="u", item="i", timestamp="t")
    assert data.ratings["timestamp"].tolist() == [86400, 60]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write(tmp_path, "r.csv", "u,i,r\n1,2,3\n\n1,3,x\n\n")
    with pytest.raises(DatasetError, match=r"line 4, column 'r'"):
        load_ratings(path, user="u", item="i", rating="r")


def test_parquet_is_read_with_typed_columns(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"who": ["a", "b", "a"], "what": [10, 10, 20], "score": [1.5, 2.0, 3.0],
                          "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"], utc=True)})
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    data = load_ratings(path, user="who", item="what", rating="score", timestamp="when")
    assert data.ratings["userId"].tolist() == ["a", "b", "a"]
    assert data.ratings["movieId"].dtype == np.int64 and data.ratings["movieId"].tolist() == [10, 10, 20]
    assert data.ratings["timestamp"].tolist() == [1577836800, 1577923200, 1578009600]


def test_parquet_errors_name_the_row(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    pd.DataFrame({"u": ["a", None], "i": [1, 2]}).to_parquet(path)
    with pytest.raises(DatasetError, match=r"r\.parquet, row 2, column 'u': the id is missing"):
        load_ratings(path, user="u", item="i")


def test_a_truncated_parquet_file_is_a_dataset_error(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    pd.DataFrame({"u": [1], "i": [2]}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        load_ratings(path, user="u", item="i")


def test_items_keyed_by_the_mapped_item_column_follow_the_ratings_id_type(tmp_path):
    ratings = write(tmp_path, "r.csv", "u,sku\n1,7\n2,8\n")
    items = write(tmp_path, "items.tsv", "sku\ttitle\n7\tSeven\n8\tEight\n")
    data = load_ratings(ratings, user="u", item="sku", items=items)
    assert data.items.to_dict("list") == {"movieId": [7, 8], "title": ["Seven", "Eight"]}


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("u,i,r\n1,2,4\n1,3,four\n", r"bad\.csv, line 3, column 'r': 'four' is not a finite number"),
        ("u,i,r\n1,2,4\n1,3,inf\n", r"line 3, column 'r': 'inf' is not a finite number"),
        ("u,i,r\n1,2,4\n,3,5\n", r"bad\.csv, line 3, column 'u': the id is missing"),
        ("u,i,r\n1,2,4\n1,  ,5\n", r"line 3, column 'i': the id is missing"),
        ("u,i,r\n1,2,4\n1,3\n", r"line 3, column 'r': '' is not a finite number"),
        ("u,i,r\n1,2,4\n1,3,5\n1,2,1\n",
         r"bad\.csv, line 4, columns 'u' and 'i': repeats the pair \(user 1, item 2\) of line 2"),
        ("", r"bad\.csv: the file is empty"),
        ("  \n\n", r"the file is empty"),
        ("u,i,r\n", r"bad\.csv: the file has a header but no rows"),
        ("user,item\n1,2\n", r"bad\.csv, line 1 \(the header\): no column 'u'; the columns are: user, item"),
        ("u,i,r\n1,2,3\n1,2,3,4\n", r"bad\.csv: not a readable comma-separated file .*line 3"),
        (b"u,i,r\n1,2,3\n\xff\xfe,2,3\n", r"bad\.csv: not a readable"),
    ],
)
def test_malformed_files_name_the_file_line_and_column(tmp_path, text, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DatasetError, match=message):
        load_ratings(path, user="u", item="i", rating="r")


def test_files_over_the_size_cap_are_refused(tmp_path):
    path = write(tmp_path, "r.csv", LATEST)
    with pytest.raises(DatasetError, match=r"r\.csv: \d+ bytes, over the cap of 50"):
        load_ratings(path, rating="rating", max_bytes=50)
    assert len(load_ratings(path, rating="rating", max_bytes=len(LATEST)).ratings) == 4


def test_a_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot be read"):
        load_ratings(tmp_path / "absent.csv")


def test_an_items_file_with_a_repeated_item_names_its_line(tmp_path):
    ratings = write(tmp_path, "ratings.csv", LATEST)
    items = write(tmp_path, "movies.csv", MOVIES + "3,Again,Drama\n")
    with pytest.raises(DatasetError, match=r"movies\.csv, line 5, column 'movieId': the item 3 appears twice"):
        load_ratings(ratings, rating="rating", items=items)


def test_items_with_text_ids_for_integer_ratings_are_refused(tmp_path):
    ratings = write(tmp_path, "ratings.csv", LATEST)
    items = write(tmp_path, "movies.csv", "movieId,title\n1,One\nx2,Two\n")
    with pytest.raises(DatasetError, match=r"line 3, column 'movieId': the ratings' item ids are integers, this one "
                                           r"is 'x2'"):
        load_ratings(ratings, rating="rating", items=items)


def test_a_column_mapped_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mapped once"):
        load_ratings(write(tmp_path, "r.csv", LATEST), user="userId", item="userId")


def test_parse_columns():
    assert parse_columns("user=visitor, item=sku,rating=stars") == {"user": "visitor", "item": "sku",
                                                                      "rating": "stars"}
    for bad in ("user", "user=", "who=x", "user=a,user=b"):
        with pytest.raises(ValueError):
            parse_columns(bad)


# -- fuzz ----------------------------------------------------------------------------------------
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CELL = st.one_of(st.integers(-3, 10**6).map(str), st.sampled_from(["", " ", "nan", "1e999", "x", '"', "4.5", "\x00"]),
                 st.text(max_size=4))
ROW = st.lists(CELL, min_size=0, max_size=4).map(lambda cells: ",".join(cells))


def _load_or_refuse(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MovieRecWarning)
                result = load_ratings(path, user="u", item="i", rating="r", max_bytes=10_000)
        except (DatasetError, DataValidationError):
            return
        check_ratings(result.ratings)  # anything returned is a valid ratings frame
        assert len(result.ratings) > 0


@FUZZ
@given(st.binary(max_size=300))
@example(b"u,i,r\n1,2,3\n")
@example(b"u,i,r\n\x001,2,3\n")
@example(b"PAR1garbage")
def test_fuzz_bytes_give_a_frame_or_a_dataset_error(data):
    _load_or_refuse(data)


@FUZZ
@given(header=st.sampled_from(["u,i,r", "u,i", "r,i,u,t", 'u,"i",r']), rows=st.lists(ROW, max_size=8))
def test_fuzz_csv_shaped_text_gives_a_frame_or_a_dataset_error(header, rows):
    _load_or_refuse(("\n".join([header, *rows]) + "\n").encode("utf-8", errors="surrogatepass"))
