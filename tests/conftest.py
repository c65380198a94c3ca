"""Shared fixtures. Real data is read from ../shared/data beside the repository (or
$PURCHASE_PATTERNS_SHARED_DATA). In CI (CI=true) missing data is a failure, not a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    return Path(os.environ.get("PURCHASE_PATTERNS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not (path / "shopping_trends.csv").exists():
        msg = f"real test data not found at {path} (expected shopping_trends.csv and cdnow/)"
        if os.environ.get("CI") == "true" and not os.environ.get(
            "PURCHASE_PATTERNS_ALLOW_MISSING_DATA"
        ):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def kaggle_csv(shared_data: Path) -> Path:
    return shared_data / "shopping_trends.csv"


@pytest.fixture(scope="session")
def cdnow_master(shared_data: Path) -> Path:
    return shared_data / "cdnow" / "CDNOW_master.txt"


@pytest.fixture(scope="session")
def cdnow_sample(shared_data: Path) -> Path:
    return shared_data / "cdnow" / "CDNOW_sample.txt"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path):
    from purchase_patterns.settings import load_settings

    return load_settings(home=home)
