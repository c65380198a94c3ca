"""Shared fixtures. Real data is read from ../shared/data beside the repository (or
$PURCHASE_PATTERNS_SHARED_DATA). In CI (CI=true) missing data is a failure, not a skip."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Test files that take minutes, longest first (durations of `make test`, 2026-12-06). They
#: are collected first, and `make test` hands files to its two workers in collection order
#: (``--dist loadfile --no-loadscope-reorder``): the longest start at once instead of last,
#: so the two workers finish together.
SLOW_FILES = (
    "test_airflow_dags.py",               # ~7 min: both DAGs built, retried, re-run
    "reliability/test_crash.py",          # 3-5.5 min: ~17 runs killed and re-run
    "dashboard/test_dashboard_pages.py",
    "test_bench_harness.py",
    "reliability/test_concurrent_readers.py",
    "test_insights.py",
    "test_end_to_end.py",
    "test_publish.py",
    "cloud/test_cloud_run.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(
        item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))  # stable

# Airflow's own configuration, read once when airflow is first imported, so it is set here:
# a private AIRFLOW_HOME (never ~/airflow) with a SQLite metadata database, this repository's
# DAGs, no example DAGs, no telemetry. Each pytest process (xdist worker) gets its own.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pp-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "AIRFLOW__COSMOS__CACHE_DIR": str(_AIRFLOW_HOME / "cosmos"),
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
})


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


# -- warehouses built once per session ----------------------------------------------------------

#: Inputs of the prebuilt warehouses: name → (files under shared data | "synthetic").
BUILT_INPUTS = {
    "kaggle": ["shopping_trends.csv"],
    "cdnow_master": ["cdnow/CDNOW_master.txt"],
    "cdnow_sample": ["cdnow/CDNOW_sample.txt"],
    "synthetic": "synthetic",
}
SYNTHETIC_CUSTOMERS = 3000
SYNTHETIC_SEED = 7


@pytest.fixture(scope="session")
def built_home(tmp_path_factory, shared_data):
    """``built_home(name, stages=("transform",))`` → a home whose warehouse holds the named
    dataset ingested and put through the given downstream stages (in pipeline order), built
    once per session and per (name, stages). Treat it as read-only: use ``home_copy`` to
    change it. ``synthetic`` is 3,000 generated customers (seed 7) with its truth file at
    ``<home>/input/synthetic.truth.json``."""
    import shutil

    from purchase_patterns.generate import generate
    from purchase_patterns.pipeline import DOWNSTREAM, ingest_stage, new_summary
    from purchase_patterns.settings import load_settings

    cache: dict[tuple[str, tuple[str, ...]], Path] = {}

    def build(name: str, stages: tuple[str, ...] = ("transform",)) -> Path:
        key = (name, tuple(stages))
        if key in cache:
            return cache[key]
        home = tmp_path_factory.mktemp(f"built-{name}") / "home"
        settings = load_settings(home=home)
        spec = BUILT_INPUTS[name]
        if spec == "synthetic":
            out = home / "input" / "synthetic.csv"
            out.parent.mkdir(parents=True)
            generate(out, SYNTHETIC_CUSTOMERS, seed=SYNTHETIC_SEED)
            files = [out]
        else:
            files = []
            for rel in spec:
                dest = home / "input" / Path(rel).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shared_data / rel, dest)
                files.append(dest)
        summary = new_summary(settings, "test")
        ingest_stage(settings, summary, files)
        for stage, fn in DOWNSTREAM:
            if stage in stages:
                fn(settings, summary, lambda *_a: None)
        assert summary.exit_code == 0, summary.errors
        cache[key] = home
        return home

    return build


@pytest.fixture
def home_copy(tmp_path):
    """``home_copy(built)`` → a private copy of a built home (safe to change)."""
    import shutil

    def copy(src: Path) -> Path:
        dest = tmp_path / "home-copy"
        shutil.copytree(src, dest)
        return dest

    return copy


# -- Airflow --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_db():
    """Airflow's metadata database (SQLite in the private AIRFLOW_HOME above), for the tests
    of a module that run the DAGs with ``dag.test()`` (see ``airflow_helpers.py``)."""
    import gc

    from airflow.utils import db
    from airflow_helpers import restored_environ

    with restored_environ():
        db.initdb()
        yield
    gc.unfreeze()  # see airflow_helpers.run_dag
