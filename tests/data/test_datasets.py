"""Tests of movierec.data.movielens: the real ml-100k archive, synthetic archives of every layout, bad
archives, and downloads from a local HTTP server."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from movierec.data._movielens._registry import LAYOUTS, MEMBER_SIZES
from movierec.data.movielens import (
    Fold,
    MovieLens,
    data_home,
    download_movielens,
    is_present,
    known_datasets,
    load_movielens,
    official_folds,
)
from movierec.exceptions import ChecksumError, DatasetError

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]
RATINGS_DTYPES = {"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"}
U_DATA_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point downloads at a closed local port, so no test can reach GroupLens by accident."""
    monkeypatch.setenv("MOVIEREC_MIRROR", "http://127.0.0.1:9/")


@pytest.fixture(scope="session")
def ml100k_home(data_home) -> Path:
    """The folder holding the real ml-100k.zip (conftest's ``data_home``: fails when it is missing)."""
    return data_home


@pytest.fixture(scope="session")
def ml100k_zip(ml100k_home: Path) -> Path:
    return ml100k_home / "ml-100k.zip"


@pytest.fixture(scope="session")
def ml100k(ml100k_home: Path) -> MovieLens:
    return load_movielens("ml-100k", data_home=ml100k_home, download=False)


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def assert_ratings_frame(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(RATINGS_DTYPES)
    assert frame.dtypes.astype(str).to_dict() == RATINGS_DTYPES


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) and yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- the real ml-100k ------------------------------------------------------------------------------

realdata = pytest.mark.realdata


@realdata
def test_ml100k_ratings(ml100k: MovieLens) -> None:
    ratings = ml100k.ratings
    assert ml100k.name == "ml-100k"
    assert len(ratings) == 100_000
    assert ratings["userId"].nunique() == 943
    assert ratings["movieId"].nunique() == 1682
    assert_ratings_frame(ratings)
    assert set(ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


@realdata
def test_ml100k_items(ml100k: MovieLens) -> None:
    items = ml100k.items.set_index("movieId")
    assert list(ml100k.items.columns) == ["movieId", "title", "release_date", *GENRES]
    assert len(items) == 1682
    assert items.loc[543, "title"] == "Misérables, Les (1995)"  # Latin-1 decoded
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert items.loc[1, "release_date"] == pd.Timestamp("1995-01-01")
    assert pd.api.types.is_datetime64_dtype(items["release_date"])
    assert items["release_date"].isna().sum() == 1  # movie 267, "unknown", has no date
    assert pd.isna(items.loc[267, "release_date"])
    assert all(items[genre].dtype == bool for genre in GENRES)
    assert items.loc[1, ["Animation", "Children's", "Comedy"]].all()
    assert not items.loc[1, ["Action", "Drama", "Sci-Fi"]].any()


@realdata
def test_ml100k_users(ml100k: MovieLens) -> None:
    users = ml100k.users.set_index("userId")
    assert ml100k.users.shape == (943, 5)
    assert list(ml100k.users.columns) == ["userId", "age", "gender", "occupation", "zip"]
    assert ml100k.users["age"].dtype == "int64"
    assert users.loc[1, "occupation"] == "technician"
    assert users.loc[8, "zip"] == "05201"  # a string: the leading zero survives
    assert users.loc[74, "zip"] == "T8H1N"


@realdata
def test_official_folds_u1_to_u5(ml100k_home: Path, ml100k: MovieLens) -> None:
    folds = official_folds(data_home=ml100k_home)
    assert [fold.name for fold in folds] == ["u1", "u2", "u3", "u4", "u5"]
    for fold in folds:
        assert isinstance(fold, Fold)
        assert (len(fold.train), len(fold.test)) == (80_000, 20_000)
        assert_ratings_frame(fold.train)
        assert_ratings_frame(fold.test)
    # The five test sets partition u.data.
    tests = pd.concat([fold.test for fold in folds])
    key = ["userId", "movieId"]
    assert not tests.duplicated(key).any()
    merged = tests.merge(ml100k.ratings, on=key, suffixes=("", "_all"))
    assert len(merged) == 100_000
    assert (merged["rating"] == merged["rating_all"]).all()


@realdata
def test_official_folds_ua_ub(ml100k_home: Path) -> None:
    folds = official_folds("ml-100k", which=("ua", "ub"), data_home=ml100k_home)
    for fold in folds:
        assert (len(fold.train), len(fold.test)) == (90_570, 9_430)
        assert (fold.test.groupby("userId").size() == 10).all()
    (single,) = official_folds(which="ub", data_home=ml100k_home)
    pd.testing.assert_frame_equal(single.test, folds[1].test)


@realdata
def test_loading_writes_nothing(ml100k_home: Path, tmp_path: Path, ml100k_zip: Path) -> None:
    shutil.copy(ml100k_zip, tmp_path / "ml-100k.zip")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert is_present("ml-100k", data_home=tmp_path)
    load_movielens(data_home=tmp_path)
    official_folds(which="u1", data_home=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@realdata
def test_known_sizes_match_the_real_archive(ml100k_zip: Path) -> None:
    # The download cap and the members' inflation caps are derived from these figures.
    layout = LAYOUTS["ml-100k"]
    assert ml100k_zip.stat().st_size == layout.size
    with zipfile.ZipFile(ml100k_zip) as archive:
        sizes = {info.filename.removeprefix("ml-100k/"): info.file_size
                 for info in archive.infolist() if not info.is_dir()}
    assert sizes == MEMBER_SIZES["ml-100k"]
    assert sum(sizes.values()) == layout.inflated


# --- names, folders ------------------------------------------------------------------------------


def test_known_datasets_and_is_present(tmp_path: Path) -> None:
    assert known_datasets() == ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                                "ml-latest-small"]
    assert not is_present("ml-1m", data_home=tmp_path)
    (tmp_path / "ml-1m.zip").write_bytes(b"")
    assert is_present("ml-1m", data_home=tmp_path)
    with pytest.raises(DatasetError, match="ml-100k"):
        is_present("ml-7m", data_home=tmp_path)


def test_data_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("MOVIEREC_DATA", str(tmp_path / "env"))
    assert data_home() == tmp_path / "env"
    assert data_home(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    monkeypatch.delenv("MOVIEREC_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "movierec"


def test_env_var_locates_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_DATA", str(tmp_path))
    make_zip(tmp_path / "ml-latest-small.zip", {
        "ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
        "ml-latest-small/movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n",
    })
    assert len(load_movielens("ml-latest-small", download=False).ratings) == 1


# --- synthetic archives of the other layouts -----------------------------------------------------


def test_ml1m_double_colon_layout(tmp_path: Path) -> None:
    movies = ('1::Toy Story (1995)::Animation|Children\'s|Comedy\n'
              '73::Misérables, Les (1995)::Drama|Musical\n'
              '2210::"Great Performances" Cats, The (1998)::Musical\n').encode("latin-1")
    make_zip(tmp_path / "ml-1m.zip", {
        "ml-1m/ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n6040::1::4::956703977\n",
        "ml-1m/movies.dat": movies,
        "ml-1m/users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n6040::M::25::6::01060\n",
        "ml-1m/README": b"not read",
    })
    ml = load_movielens("ml-1m", data_home=tmp_path, download=False)
    assert_ratings_frame(ml.ratings)
    assert ml.ratings.to_numpy().tolist() == [[1, 1193, 5, 978300760], [1, 661, 3, 978302109],
                                              [6040, 1, 4, 956703977]]
    assert list(ml.items.columns) == ["movieId", "title", "genres"]
    assert ml.items["movieId"].dtype == "int64"
    assert ml.items["title"].tolist() == ["Toy Story (1995)", "Misérables, Les (1995)",
                                          '"Great Performances" Cats, The (1998)']
    assert ml.items["genres"].iloc[0] == "Animation|Children's|Comedy"
    assert list(ml.users.columns) == ["userId", "age", "gender", "occupation", "zip"]
    assert ml.users["age"].tolist() == [1, 56, 25]  # the archive's age codes, as ints
    assert ml.users["occupation"].tolist() == [10, 16, 6]
    assert ml.users["age"].dtype == ml.users["occupation"].dtype == "int64"
    assert ml.users["gender"].tolist() == ["F", "M", "M"]
    assert ml.users["zip"].tolist() == ["48067", "70072", "01060"]


def test_ml10m_layout(tmp_path: Path) -> None:
    make_zip(tmp_path / "ml-10m.zip", {
        "ml-10M100K/ratings.dat": b"1::122::5::838985046\n1::185::4.5::838983525\n",
        "ml-10M100K/movies.dat": (
            "1::Toy Story (1995)::Adventure|Animation\n"
            "4973::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::Comedy|Romance\n"
        ).encode(),
    })
    ml = load_movielens("ml-10m", data_home=tmp_path, download=False)
    assert_ratings_frame(ml.ratings)
    assert ml.ratings["rating"].tolist() == [5.0, 4.5]
    assert ml.items["title"].iloc[1] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    assert ml.users is None


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-32m", "ml-latest-small"])
def test_csv_layouts(tmp_path: Path, name: str) -> None:
    make_zip(tmp_path / f"{name}.zip", {
        f"{name}/ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n"
                               b"2,11,0.5,1445714835\n",
        f"{name}/movies.csv": 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
                              '11,"American President, The (1995)",Comedy|Drama|Romance\n'
                              '3,Amélie (2001),(no genres listed)\n'.encode(),
        f"{name}/tags.csv": b"userId,movieId,tag,timestamp\n",
    })
    ml = load_movielens(name, data_home=tmp_path, download=False)
    assert ml.name == name
    assert_ratings_frame(ml.ratings)
    assert ml.ratings["rating"].tolist() == [4.0, 3.5, 0.5]
    assert list(ml.items.columns) == ["movieId", "title", "genres"]
    assert ml.items["title"].tolist() == ["Toy Story (1995)", "American President, The (1995)",
                                          "Amélie (2001)"]
    assert ml.items["genres"].iloc[1] == "Comedy|Drama|Romance"
    assert ml.users is None
    with pytest.raises(DatasetError, match="only ml-100k"):
        official_folds(name, data_home=tmp_path)


# --- bad names, missing and damaged archives -----------------------------------------------------


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown MovieLens dataset 'ml-5m'") as info:
        load_movielens("ml-5m", data_home=tmp_path)
    assert all(name in str(info.value) for name in known_datasets())
    with pytest.raises(DatasetError, match="unknown"):
        official_folds("ml-5m", data_home=tmp_path)
    with pytest.raises(DatasetError, match="unknown"):
        download_movielens("ml-5m", data_home=tmp_path)


def test_unknown_fold_names(tmp_path: Path) -> None:
    for which in (("u1", "u9"), "uc", ()):
        with pytest.raises(DatasetError, match="u1"):
            official_folds(which=which, data_home=tmp_path)


def test_missing_archive_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOVIEREC_MIRROR")
    with pytest.raises(DatasetError) as info:
        load_movielens("ml-100k", data_home=tmp_path, download=False)
    message = str(info.value)
    assert GROUPLENS + "ml-100k.zip" in message
    assert str(tmp_path / "ml-100k.zip") in message
    with pytest.raises(DatasetError, match="ml-10m.zip"):
        load_movielens("ml-10m", data_home=tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_archive_download_fails(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(DatasetError) as info:
        official_folds(data_home=home)  # the mirror is a closed port
    message = str(info.value)
    assert "could not download http://127.0.0.1:9/ml-100k.zip" in message
    assert f"put it at {home / 'ml-100k.zip'}" in message
    assert list(home.iterdir()) == []


@realdata
def test_truncated_zip(tmp_path: Path, ml100k_zip: Path) -> None:
    data = ml100k_zip.read_bytes()
    (tmp_path / "ml-100k.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_movielens(data_home=tmp_path, download=False)
    assert str(tmp_path / "ml-100k.zip") in str(info.value)
    assert "download it again" in str(info.value)


def test_damaged_member_fails_crc(tmp_path: Path) -> None:
    # Stored (uncompressed) members, so flipping one byte of data leaves a readable zip with a bad CRC.
    ratings = b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
    path = make_zip(tmp_path / "ml-latest-small.zip", {
        "ml-latest-small/ratings.csv": ratings,
        "ml-latest-small/movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Comedy\n",
    }, compression=zipfile.ZIP_STORED)
    raw = path.read_bytes()
    at = raw.index(b"964982703")
    path.write_bytes(raw[:at] + b"8" + raw[at + 1:])
    with pytest.raises(DatasetError, match="ratings.csv") as info:
        load_movielens("ml-latest-small", data_home=tmp_path, download=False)
    assert "CRC" in str(info.value) and "download it again" in str(info.value)


def test_wrong_checksum(tmp_path: Path) -> None:
    altered = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
    make_zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": altered})
    with pytest.raises(ChecksumError) as info:
        load_movielens(data_home=tmp_path, download=False)
    message = str(info.value)
    assert "ml-100k/u.data" in message
    assert U_DATA_SHA256 in message
    assert hashlib.sha256(altered).hexdigest() in message
    assert isinstance(info.value, DatasetError)


def test_missing_member(tmp_path: Path) -> None:
    make_zip(tmp_path / "ml-100k.zip", {"ml-100k/README": b"no data here"})
    with pytest.raises(DatasetError, match="no member 'ml-100k/u.data'") as info:
        load_movielens(data_home=tmp_path, download=False)
    assert "download it again" in str(info.value)
    make_zip(tmp_path / "ml-1m.zip", {"ml-1m/ratings.dat": b"1::1::5::1\n", "ml-1m/movies.dat": b"1::A::B\n"})
    with pytest.raises(DatasetError, match="ml-1m/users.dat"):
        load_movielens("ml-1m", data_home=tmp_path, download=False)
    make_zip(tmp_path / "ml-10m.zip", {"ml-10m/ratings.dat": b"1::1::5::1\n"})  # wrong folder name
    with pytest.raises(DatasetError, match="ml-10M100K/ratings.dat"):
        load_movielens("ml-10m", data_home=tmp_path, download=False)


def test_malformed_member(tmp_path: Path) -> None:
    make_zip(tmp_path / "ml-25m.zip", {
        "ml-25m/ratings.csv": b"userId,movieId,rating,timestamp\n1,x,4.0,964982703\n",
        "ml-25m/movies.csv": b"movieId,title,genres\n1,A,B\n",
    })
    with pytest.raises(DatasetError, match="expected format"):
        load_movielens("ml-25m", data_home=tmp_path, download=False)
    make_zip(tmp_path / "ml-20m.zip", {
        "ml-20m/ratings.csv": b"user,movie,rating,timestamp\n1,1,4.0,964982703\n",
        "ml-20m/movies.csv": b"movieId,title,genres\n1,A,B\n",
    })
    with pytest.raises(DatasetError, match="expected columns"):
        load_movielens("ml-20m", data_home=tmp_path, download=False)


# --- downloads from a local server ---------------------------------------------------------------


@realdata
def test_download_from_mirror(tmp_path: Path, ml100k_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(ml100k_zip, served / "ml-100k.zip")
    home = tmp_path / "home" / "nested"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base)
        path = download_movielens("ml-100k", data_home=home)
        assert path == home / "ml-100k.zip"
        assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]  # no temp file left
        assert path.read_bytes() == ml100k_zip.read_bytes()
        mtime = path.stat().st_mtime_ns
        assert download_movielens("ml-100k", data_home=home) == path  # present: not fetched again
        assert path.stat().st_mtime_ns == mtime
        assert download_movielens("ml-100k", data_home=home, url=base + "ml-100k.zip", force=True) == path
    assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]
    assert len(load_movielens(data_home=home, download=False).ratings) == 100_000


@realdata
def test_load_downloads_when_absent(tmp_path: Path, ml100k_zip: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(ml100k_zip, served / "ml-100k.zip")
    home = tmp_path / "home"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base.rstrip("/"))  # with or without a trailing slash
        (fold,) = official_folds(which="u1", data_home=home)
    assert len(fold.train) == 80_000
    assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]


@realdata
def test_download_truncated_file_leaves_nothing(tmp_path: Path, ml100k_zip: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    data = ml100k_zip.read_bytes()
    (served / "ml-100k.zip").write_bytes(data[: len(data) - 1000])
    home = tmp_path / "home"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base)
        with pytest.raises(DatasetError) as info:
            download_movielens(data_home=home)
    assert base + "ml-100k.zip" in str(info.value)
    assert f"put it at {home / 'ml-100k.zip'}" in str(info.value)
    assert list(home.iterdir()) == []


def test_download_wrong_checksum_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_zip(served / "ml-100k.zip", {"ml-100k/u.data": b"1\t1\t1\t1\n"})
    home = tmp_path / "home"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base)
        with pytest.raises(ChecksumError, match="ml-100k/u.data"):
            load_movielens(data_home=home)
    assert list(home.iterdir()) == []


def test_download_http_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    home = tmp_path / "home"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base)
        with pytest.raises(DatasetError, match="could not download .*404") as info:
            download_movielens("ml-1m", data_home=home)
    assert str(home / "ml-1m.zip") in str(info.value)
    assert list(home.iterdir()) == []


def test_download_of_other_layout_checks_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_zip(served / "ml-latest-small.zip", {
        "ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
        "ml-latest-small/movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Comedy\n",
    })
    make_zip(served / "ml-25m.zip", {"ml-25m/ratings.csv": b"userId,movieId,rating,timestamp\n"})
    home = tmp_path / "home"
    with http_server(served) as base:
        monkeypatch.setenv("MOVIEREC_MIRROR", base)
        assert len(load_movielens("ml-latest-small", data_home=home).items) == 1
        with pytest.raises(DatasetError, match="ml-25m/movies.csv"):
            download_movielens("ml-25m", data_home=home)
    assert sorted(p.name for p in home.iterdir()) == ["ml-latest-small.zip"]


def test_repr_is_short(tmp_path: Path) -> None:
    frame = pd.DataFrame({"userId": [1], "movieId": [1], "rating": [1.0], "timestamp": [1]})
    assert repr(MovieLens("ml-1m", frame, frame, None)) == (
        "MovieLens(name='ml-1m', ratings=<1 rows>, items=<1 rows>, users=None)")
    assert repr(Fold("u1", frame, frame)) == "Fold(name='u1', train=<1 rows>, test=<1 rows>)"
    with pytest.raises(AttributeError):
        Fold("u1", frame, frame).name = "u2"  # type: ignore[misc]


@pytest.mark.realdata
def test_movielens_frames_carry_their_scale_and_refuse_a_stray_rating(data_home):
    from movierec import BiasedBaseline, official_folds
    from movierec.exceptions import DataValidationError

    fold = official_folds("ml-100k", which=("u1",), data_home=data_home)[0]
    assert fold.train.attrs["rating_scale"] == (1.0, 5.0)
    bad = fold.train.copy()
    bad.loc[bad.index[0], "rating"] = 6.0
    with pytest.raises(DataValidationError, match="rating"):
        BiasedBaseline().fit(bad)
