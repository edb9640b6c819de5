"""Shared fixtures: where the MovieLens archive and the outside fixtures are, a seeded rng."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_data_home() -> Path:
    """Return the folder holding ml-100k.zip: $MOVIEREC_DATA, else ../shared/data."""
    return Path(os.environ.get("MOVIEREC_DATA", SHARED / "data")).resolve()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Return the outside-software fixtures folder: $MOVIEREC_FIXTURES, else ../shared/fixtures."""
    home = Path(os.environ.get("MOVIEREC_FIXTURES") or SHARED / "fixtures").resolve()
    if not (home / "README.md").is_file():
        pytest.fail(f"{home} holds no fixtures: set MOVIEREC_FIXTURES to the shared fixtures folder")
    return home


@pytest.fixture(scope="session")
def data_home() -> Path:
    home = shared_data_home()
    if not (home / "ml-100k.zip").is_file():
        pytest.fail(f"ml-100k.zip not found in {home}: set MOVIEREC_DATA to the folder that holds it")
    return home


@pytest.fixture(scope="session")
def u1(data_home):
    from movierec.data.movielens import official_folds

    return official_folds("ml-100k", which=("u1",), data_home=data_home)[0]


@pytest.fixture(scope="session")
def ml100k(data_home):
    from movierec.data.movielens import load_movielens

    return load_movielens("ml-100k", data_home=data_home, download=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
