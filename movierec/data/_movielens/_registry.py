"""What each MovieLens archive is called, where it lives and what it holds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from movierec.exceptions import DatasetError

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"
DATA_ENV = "MOVIEREC_DATA"
MIRROR_ENV = "MOVIEREC_MIRROR"
DEFAULT_HOME = Path("~") / ".cache" / "movierec"

# The order and spelling of u.genre, which names the 19 flag columns of u.item.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass(frozen=True)
class Layout:
    """Where one archive's files are and how they are written."""

    name: str
    zipname: str
    folder: str
    format: Literal["100k", "dat", "csv"]
    ratings: str
    movies: str
    users: str | None
    encoding: str
    size: int
    inflated: int

    @property
    def rating_scale(self) -> tuple[float, float]:
        """Return the lowest and highest rating the archive allows: whole stars 1-5 in ml-100k and ml-1m,
        half stars 0.5-5 from ml-10m on (its .dat files included)."""
        return (1.0, 5.0) if self.name in ("ml-100k", "ml-1m") else (0.5, 5.0)

    def member(self, filename: str) -> str:
        """Return the path of ``filename`` inside the zip."""
        return f"{self.folder}/{filename}"


def _csv_layout(name: str, size: int, inflated: int) -> Layout:
    return Layout(name, f"{name}.zip", name, "csv", "ratings.csv", "movies.csv", None, "utf-8",
                  size, inflated)


# size: bytes of the zip as GroupLens serves it; inflated: bytes of all its members once inflated.
# They bound a download and an archive's members (movierec.data._movielens._limits), with a margin, so
# the figures of the large archives are rounded up where only an approximate size is known.
LAYOUTS: dict[str, Layout] = {
    "ml-100k": Layout("ml-100k", "ml-100k.zip", "ml-100k", "100k",
                      "u.data", "u.item", "u.user", "latin-1", 4_943_633, 16_100_896),
    "ml-1m": Layout("ml-1m", "ml-1m.zip", "ml-1m", "dat",
                    "ratings.dat", "movies.dat", "users.dat", "latin-1", 5_917_549, 25_000_000),
    "ml-10m": Layout("ml-10m", "ml-10m.zip", "ml-10M100K", "dat",
                     "ratings.dat", "movies.dat", None, "utf-8", 65_566_137, 270_000_000),
    "ml-20m": _csv_layout("ml-20m", 198_702_078, 880_000_000),
    "ml-25m": _csv_layout("ml-25m", 261_978_986, 1_160_000_000),
    "ml-32m": _csv_layout("ml-32m", 240_000_000, 1_000_000_000),
    "ml-latest-small": _csv_layout("ml-latest-small", 978_202, 3_400_000),
}

# SHA-256 of the ml-100k members as GroupLens publishes them (u.data, u.item, u.user, u1.base and
# u1.test from shared/fixtures/README.md; the others computed from the same copy of ml-100k.zip).
# No member hashes are known for the other archives: those rely on the zip's own CRC-32.
SHA256: dict[str, dict[str, str]] = {
    "ml-100k": {
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
        "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
        "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
        "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
        "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
        "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
        "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
        "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
        "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
        "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
        "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
        "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
        "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
        "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
        "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
    },
}


# Inflated bytes of every ml-100k member, from the same copy of ml-100k.zip as the hashes.
MEMBER_SIZES: dict[str, dict[str, int]] = {
    "ml-100k": {
        "README": 6_750, "allbut.pl": 716, "mku.sh": 643, "u.data": 1_979_173, "u.genre": 202,
        "u.info": 36, "u.item": 236_344, "u.occupation": 193, "u.user": 22_628,
        "u1.base": 1_586_544, "u1.test": 392_629, "u2.base": 1_583_948, "u2.test": 395_225,
        "u3.base": 1_582_546, "u3.test": 396_627, "u4.base": 1_581_878, "u4.test": 397_295,
        "u5.base": 1_581_776, "u5.test": 397_397, "ua.base": 1_792_501, "ua.test": 186_672,
        "ub.base": 1_792_476, "ub.test": 186_697,
    },
}


def layout(name: object) -> Layout:
    """Return the layout of dataset ``name``; an unknown name raises `DatasetError`."""
    if not isinstance(name, str) or name not in LAYOUTS:
        raise DatasetError(f"unknown MovieLens dataset {name!r}; known datasets are {list(LAYOUTS)}")
    return LAYOUTS[name]


def resolve_home(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the data folder: ``path``, else ``$MOVIEREC_DATA``, else ``~/.cache/movierec``."""
    if path is None:
        path = os.environ.get(DATA_ENV) or DEFAULT_HOME
    return Path(path).expanduser().resolve()


def archive_path(name: str, data_home: str | os.PathLike[str] | None = None) -> Path:
    """Return where the zip of dataset ``name`` is (or would be) stored."""
    return resolve_home(data_home) / layout(name).zipname


def archive_url(name: str) -> str:
    """Return the download URL of ``name``: ``$MOVIEREC_MIRROR`` if set, else GroupLens."""
    base = os.environ.get(MIRROR_ENV) or GROUPLENS_URL
    return base.rstrip("/") + "/" + layout(name).zipname
