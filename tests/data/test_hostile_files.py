"""Hostile ratings files of your own: Parquet files that decode to gigabytes, headers of a million
columns, rows with extra fields, ids that spell one number twice or hide a line break, ratings off
their scale, a timestamp that blames the wrong line, a doubled column name.

Each must end in a DatasetError naming the file, the claim and the cap (or the line, the column
and the value), in little memory and time, or give the right frame. Memory is measured in a
child process: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it ends.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec.data._ratings_read import DEFAULT_MAX_ROWS, MAX_COLUMNS, MAX_HEADER_BYTES, _first_long_line
from movierec.data.ratings_file import load_ratings, parse_columns
from movierec.exceptions import DatasetError, InvalidParameterError, MovieRecWarning

ROOT = Path(__file__).resolve().parents[2]
# What `import movierec` plus pandas and pyarrow take before any file is read is about 160 MB.
MEMORY_CAP_MB = 200


def peak_memory(code: str) -> tuple[float, str]:
    """Run ``code`` in a child of a child; return the child's peak RSS in MB and its stderr + stdout."""
    wrapper = (
        "import json, resource, subprocess, sys\n"
        f"run = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True)\n"
        "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, run.stdout + run.stderr]))\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True, cwd=ROOT,
                            timeout=300)
    kilobytes, output = json.loads(result.stdout)
    return kilobytes / 1024, output


def refusal(path: Path, **options: object) -> str:
    """Code that loads ``path`` and prints the DatasetError it must raise."""
    return ("from movierec.data.ratings_file import load_ratings\n"
            "from movierec.exceptions import DatasetError\n"
            "try:\n"
            f"    load_ratings({str(path)!r}, **{options!r})\n"
            "    print('LOADED')\n"
            "except DatasetError as err:\n"
            "    print(err)\n")


def craft_parquet(path: Path, rows: int, block: int = 1_000_000) -> Path:
    """Write ``rows`` identical ratings in zstd row groups: about 13 kB per million rows on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    block = min(block, rows)
    table = pa.table({"userId": np.ones(block, dtype=np.int64), "movieId": np.full(block, 7, dtype=np.int64),
                      "rating": np.full(block, 4.0)})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(rows // block):
            writer.write_table(table, row_group_size=block)
    return path


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# -- Parquet: bounded by its metadata before any value is decoded ---------------------------------
@pytest.mark.slow
def test_a_small_parquet_file_of_100m_rows_is_refused_from_its_metadata_in_little_memory(tmp_path):
    pytest.importorskip("pyarrow")
    path = craft_parquet(tmp_path / "bomb.parquet", 100_000_000)
    assert path.stat().st_size < 3_000_000  # a small file that would decode to gigabytes
    start = time.perf_counter()
    peak, output = peak_memory(refusal(path, rating="rating"))
    assert output.strip() == (f"{path}: its metadata claims 100,000,000 rows, over the cap of "
                              f"{DEFAULT_MAX_ROWS:,} (raise max_rows to read it)")
    assert peak < MEMORY_CAP_MB, f"{peak:.0f} MB"
    # with the row cap raised, the decoded size is the bound that holds: 100 M rows x 3 columns x 8 bytes
    peak, output = peak_memory(refusal(path, rating="rating", max_rows=10**9))
    assert "its metadata claims 100,000,000 rows whose columns 'userId', 'movieId', 'rating' decode to about" in output
    assert "over the cap of 2,147,483,648" in output
    assert peak < MEMORY_CAP_MB, f"{peak:.0f} MB"
    assert time.perf_counter() - start < 60


def test_parquet_rows_over_a_given_cap_are_refused_and_at_the_cap_read(tmp_path):
    pytest.importorskip("pyarrow")
    path = craft_parquet(tmp_path / "r.parquet", 1000, block=100)
    with pytest.raises(DatasetError, match=r"r\.parquet: its metadata claims 1,000 rows, over the cap of 999"):
        load_ratings(path, rating="rating", max_rows=999)
    with pytest.raises(DatasetError, match="repeats the pair"):  # decoded: the same pair on every row
        load_ratings(path, rating="rating", max_rows=1000)


def test_parquet_text_that_decompresses_past_the_cap_is_refused_from_the_metadata(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = 2000
    table = pa.table({"userId": ["u" * 5000 + str(i % 7) for i in range(rows)], "movieId": np.arange(rows)})
    path = tmp_path / "long.parquet"
    pq.write_table(table, path, compression="zstd", use_dictionary=False)  # plain: every copy is stored
    assert path.stat().st_size < 200_000
    with pytest.raises(DatasetError, match=r"long\.parquet: its metadata claims 2,000 rows whose columns 'userId', "
                                           r"'movieId' decode to about 10,\d{3},\d{3} bytes, over the cap of 5,000,000"):
        load_ratings(path, max_bytes=5_000_000)


@pytest.mark.slow
def test_parquet_reads_only_the_mapped_columns_and_keeps_text_ids_as_one_string_each(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = 50_000
    table = pa.table({"user": [f"visitor-{i % 100}" for i in range(rows)], "item": np.arange(rows),
                      "huge": ["x" * 100_000] * rows})  # not mapped: never decoded (5 GB if it were)
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, compression="zstd")
    data = load_ratings(path, user="user", item="item", max_bytes=50_000_000)
    assert len(data.ratings) == rows and data.ratings["userId"].nunique() == 100
    assert data.ratings["userId"].iloc[101] == "visitor-1"


def test_a_parquet_file_with_a_doubled_column_name_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])],
                                 names=["userId", "movieId", "userId"])
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(DatasetError, match=r"twice\.parquet, the schema: the column 'userId' appears 2 times "
                                           r"\(columns 1, 3\)"):
        load_ratings(tmp_path / "twice.parquet")


# -- CSV headers: read alone, bounded, only the mapped columns decoded ---------------------------
@pytest.mark.slow
def test_a_header_of_a_million_columns_is_refused_at_once_in_little_memory(tmp_path):
    header = ",".join(f"c{i}" for i in range(1_000_000))
    path = write(tmp_path / "wide.csv", f"userId,movieId,{header}\n1,2,{',' * 999_999}\n")
    assert path.stat().st_size > 7_000_000
    start = time.perf_counter()
    peak, output = peak_memory(refusal(path))
    assert output.strip() == f"{path}, line 1 (the header): longer than 65,536 bytes, the cap for a header"
    assert peak < MEMORY_CAP_MB, f"{peak:.0f} MB"
    assert time.perf_counter() - start < 20


def test_a_header_of_more_columns_than_the_cap_is_refused_and_one_at_the_cap_is_read(tmp_path):
    names = [f"c{i}" for i in range(MAX_COLUMNS - 2)]
    fits = write(tmp_path / "fits.csv", ",".join(["userId", "movieId", *names]) + "\n1,2" + ",x" * len(names) + "\n")
    assert load_ratings(fits).ratings[["userId", "movieId"]].to_numpy().tolist() == [[1, 2]]
    over = write(tmp_path / "over.csv", ",".join(["userId", "movieId", *names, "one-more"]) + "\n1,2\n")
    with pytest.raises(DatasetError, match=rf"over\.csv, line 1 \(the header\): 1,001 columns, over the cap of "
                                           rf"{MAX_COLUMNS:,}"):
        load_ratings(over)
    assert len(",".join(names)) < MAX_HEADER_BYTES  # the column cap, not the length cap, refused it


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_lines_over_the_row_cap_are_refused_before_parsing(tmp_path, ending):
    body = ending.join([b"userId,movieId", b"1,2", b"1,3", b"2,2", b"2,3"]) + ending
    path = write(tmp_path / "r.csv", body)
    with pytest.raises(DatasetError, match=r"r\.csv: 4 lines, over the cap of 3 rows"):
        load_ratings(path, max_rows=3)
    assert len(load_ratings(path, max_rows=4).ratings) == 4


def test_a_row_with_more_fields_than_the_header_is_refused_even_past_the_mapped_columns(tmp_path):
    path = write(tmp_path / "r.csv", 'userId,movieId,title\n1,2,"Heat, 1995"\n1,3,Heat, 1995\n')
    with pytest.raises(DatasetError, match=r"line 3 has more fields than the header's 3"):
        load_ratings(path)


LINE = st.lists(st.one_of(st.text(alphabet='ab,"\n ', max_size=6), st.just("")), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, min_size=1, max_size=6), st.integers(1, 5))
@example([["a", "b"], ["a", "b", "c"]], 2)
def test_the_field_count_agrees_with_pythons_csv_reader(rows, columns):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    data = buffer.getvalue().encode()
    records = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    expected = next((i + 1 for i, record in enumerate(records) if len(record) > columns), None)
    # a record spanning lines (a quoted newline) counts as one line, as pandas numbers rows
    assert _first_long_line(data, ",", columns) == expected


# -- ids: one rule ----------------------------------------------------------------------------------
def test_377_and_377_0_are_one_movie(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,rating\n1,377,4\n2,377.0,5\n3,+377,3\n4,12,1\n")
    data = load_ratings(path, rating="rating")
    assert data.ratings["movieId"].tolist() == [377, 377, 377, 12] and data.ratings["movieId"].dtype == "int64"
    assert len(data.items) == 2


def test_the_same_pair_written_two_ways_is_a_repeat(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId\n1,377\n1,377.00\n")
    with pytest.raises(DatasetError, match=r"line 3, columns 'userId' and 'movieId': repeats the pair .* of line 2"):
        load_ratings(path)


@pytest.mark.parametrize(("rows", "message"), [
    ("1,3.5\n", r"line 2, column 'movieId': '3\.5' is a number with a fraction; ids are integers or text"),
    ("1,377\n2,3.5\n", r"line 3, column 'movieId': '3\.5' is a number with a fraction; ids are integers or text"),
    ('1,"m\n1"\n', r"line 2, column 'movieId': the id 'm\\n1' holds a control character"),
    ("1,m\x001\n", r"line 2, column 'movieId': the id 'm\\x001' holds a control character"),
    ('1,"\t7"\n', r"line 2, column 'movieId': the id '\\t7' holds a control character"),
])
def test_ids_that_break_the_rule_are_refused_with_their_line(tmp_path, rows, message):
    with pytest.raises(DatasetError, match=message):
        load_ratings(write(tmp_path / "r.csv", "userId,movieId\n" + rows))


def test_a_column_of_integers_and_text_is_text_with_whole_decimals_as_their_integers(tmp_path):
    rows = "1,377\n2,A1\n3,377.0\n4,007\n5,7\n6,3.5\n"
    data = load_ratings(write(tmp_path / "r.csv", "userId,movieId\n" + rows))
    assert data.ratings["movieId"].tolist() == ["377", "A1", "377", "007", "7", "3.5"]
    assert data.ratings["userId"].tolist() == [1, 2, 3, 4, 5, 6]


def test_parquet_float_ids_holding_whole_numbers_are_integers(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"userId": [1.0, 2.0], "movieId": [377.0, 12.0]})
    frame.to_parquet(tmp_path / "f.parquet")
    data = load_ratings(tmp_path / "f.parquet")
    assert data.ratings["movieId"].tolist() == [377, 12] and data.ratings["movieId"].dtype == "int64"
    pd.DataFrame({"userId": [1.0, np.nan], "movieId": [3.0, 4.5]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match=r"bad\.parquet, row 2, column 'userId': the id is missing"):
        load_ratings(tmp_path / "bad.parquet")
    pd.DataFrame({"userId": [1.0, 2.0], "movieId": [3.0, 4.5]}).to_parquet(tmp_path / "half.parquet")
    with pytest.raises(DatasetError, match=r"row 2, column 'movieId': 4\.5 is not a whole number"):
        load_ratings(tmp_path / "half.parquet")


def test_a_doubled_header_name_is_refused(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,rating,rating\n1,2,4,5\n")
    with pytest.raises(DatasetError, match=r"line 1 \(the header\): the column 'rating' appears 2 times "
                                           r"\(columns 3, 4\)"):
        load_ratings(path, rating="rating")
    # an unmapped name given twice is not read, so it does not matter
    twice = write(tmp_path / "t.csv", "userId,movieId,note,note\n1,2,a,b\n")
    assert load_ratings(twice).ratings["movieId"].tolist() == [2]


def test_parse_columns_refuses_one_column_for_two_keys():
    with pytest.raises(ValueError, match="'userId' is given to both user and item"):
        parse_columns("user=userId,item=userId")


# -- ratings: a declared scale, a warning without one -----------------------------------------------
ONE_TO_FIVE = "userId,movieId,rating\n" + "".join(f"{u},{m},{(u + m) % 5 + 1}\n" for u in range(20) for m in range(10))


def test_a_declared_scale_refuses_a_rating_off_it_with_its_line(tmp_path):
    path = write(tmp_path / "r.csv", ONE_TO_FIVE + "99,1,55\n")
    with pytest.raises(DatasetError, match=r"r\.csv, line 202, column 'rating': 55\.0 is outside the rating scale "
                                           r"1 to 5 \(1 such rows\)"):
        load_ratings(path, rating="rating", rating_scale=(1, 5))
    data = load_ratings(write(tmp_path / "ok.csv", ONE_TO_FIVE), rating="rating", rating_scale=(1, 5))
    assert data.ratings.attrs["rating_scale"] == (1.0, 5.0)  # the models see the scale


@pytest.mark.parametrize("scale", [(5, 1), (1, float("nan")), (True, 5), "1-5", (1, 2, 3)])
def test_a_malformed_scale_is_a_parameter_error(tmp_path, scale):
    with pytest.raises(InvalidParameterError, match="rating_scale"):
        load_ratings(write(tmp_path / "r.csv", ONE_TO_FIVE), rating="rating", rating_scale=scale)


def test_without_a_scale_stray_ratings_are_loaded_with_one_warning(tmp_path):
    path = write(tmp_path / "r.csv", ONE_TO_FIVE + "99,1,55\n99,2,-3\n")
    with pytest.warns(MovieRecWarning, match=r"2 rating\(s\) in column 'rating' lie outside 1 to 5, where all the "
                                             r"others are \(55, -3; first on line 202\)"):
        data = load_ratings(path, rating="rating")
    assert sorted(data.ratings["rating"])[:1] == [-3] and data.ratings["rating"].max() == 55
    for clean in (ONE_TO_FIVE, ONE_TO_FIVE.replace(",1\n", ",0.5\n")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_ratings(write(tmp_path / "clean.csv", clean), rating="rating")


# -- timestamps ------------------------------------------------------------------------------------
def test_a_bad_unix_timestamp_names_its_own_line(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,timestamp\n1,2,881250949\n1,3,881250950\n1,4,soon\n1,5,8\n")
    with pytest.raises(DatasetError, match=r"line 4, column 'timestamp': 'soon' is not Unix seconds \(an integer, "
                                           r"as on line 2\)"):
        load_ratings(path, timestamp="timestamp")


# -- the command: own files in, output files out ------------------------------------------------
TITLES = {1: '=HYPERLINK("http://example.com/x","click")', 2: "+1 (2010)", 3: "@home", 4: "-Heat", 5: "\tTab"}


def own_files(folder: Path, users: int = 80, items: int = 30) -> tuple[Path, Path]:
    """Write a ratings file (each user rates 12 of ``items`` movies, or all but two; 1 to 5) and an items file."""
    rng = np.random.default_rng(0)
    rows = [(u, int(i), int(rng.integers(1, 6))) for u in range(1, users + 1)
            for i in rng.choice(np.arange(1, items + 1), size=min(12, items - 2), replace=False)]
    ratings = folder / "ratings.csv"
    pd.DataFrame(rows, columns=["userId", "movieId", "rating"]).to_csv(ratings, index=False)
    movies = folder / "movies.csv"
    pd.DataFrame({"movieId": range(1, items + 1),
                  "title": [TITLES.get(i, f"Movie {i}") for i in range(1, items + 1)]}).to_csv(movies, index=False)
    return ratings, movies


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "movierec", *args], check=False, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize(("users", "failing"), [(400, "recommendations.csv"), (80, "report.html")])
def test_recommend_on_a_full_disk_keeps_the_earlier_output_whole(tmp_path, small_disk, users, failing):
    # 400 users' lists (60 kB) do not fit a 32 KiB disk; 80 users' (12 kB) do, and the report then does not
    ratings, movies = own_files(tmp_path, users=users)
    with small_disk(tmp_path / "out", 32 << 10) as out:
        earlier = "userId,movieId,title,score,rank\r\n1,2,Movie 2,0.5,1\r\n" if failing.endswith(".csv") else "<p>old"
        (out / failing).write_text(earlier, newline="")
        result = run_cli("recommend", "--ratings", str(ratings), "--items", str(movies), "--models", "pop",
                         "--quiet", "--out", str(out))
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"movierec: error: {out / failing}: cannot write (No space left on device); any earlier file there is unchanged"]
        assert (out / failing).read_bytes() == earlier.encode()
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left
        if failing == "report.html":  # the lists before it were written whole
            assert len(pd.read_csv(out / "recommendations.csv")) == 80 * 5


@pytest.mark.slow
def test_recommendations_csv_quotes_formula_titles_and_keeps_ids(tmp_path):
    ratings, movies = own_files(tmp_path, items=5)
    result = run_cli("recommend", "--ratings", str(ratings), "--items", str(movies), "--models", "pop", "--quiet",
                     "--n", "3", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "out" / "recommendations.csv", keep_default_na=False)
    assert len(written) > 0 and written["movieId"].between(1, 5).all()
    assert set(written["title"]) <= {"'" + title for title in TITLES.values()}
    assert not written["title"].str.startswith(("=", "+", "-", "@", "\t")).any()


def test_columns_naming_one_column_twice_is_a_usage_error(tmp_path):
    ratings, _ = own_files(tmp_path)
    result = run_cli("recommend", "--ratings", str(ratings), "--columns", "user=userId,item=userId",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("usage: movierec recommend")
    assert result.stderr.splitlines()[-1] == ("movierec recommend: error: argument --columns: the column 'userId' is "
                                              "given to both user and item; each column holds one thing")


def test_rating_scale_on_the_command_line_refuses_a_stray_rating_with_its_line(tmp_path):
    ratings, _ = own_files(tmp_path)
    with open(ratings, "a") as handle:
        handle.write("999,1,55\n")
    result = run_cli("recommend", "--ratings", str(ratings), "--rating-scale", "1,5", "--models", "pop",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"movierec: error: {ratings}, line 962, column 'rating': 55.0 is outside the rating scale 1 to 5 (1 such rows)"]
    bad = run_cli("recommend", "--ratings", str(ratings), "--rating-scale", "5", "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and "argument --rating-scale: must be LO,HI" in bad.stderr
