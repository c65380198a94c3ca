"""Fixtures for the dashboard tests: published warehouses built from the real data (with or
without contract analytics tables), and the app under ``streamlit.testing``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import FULL_STAGES

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboard"
if str(DASHBOARD) not in sys.path:  # the app's modules import each other as top-level names
    sys.path.insert(0, str(DASHBOARD))
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


def publish_home(src: Path, dest: Path, *, run_id: str) -> Path:
    """Copy the warehouse of the built home ``src`` into a new home ``dest``, mark its runs
    finished (as the pipeline does before publishing), and publish it."""
    import duckdb

    from purchase_patterns.publish import publish
    from purchase_patterns.settings import load_settings

    dest.mkdir(parents=True)
    shutil.copyfile(src / "warehouse.duckdb", dest / "warehouse.duckdb")
    con = duckdb.connect(str(dest / "warehouse.duckdb"))
    try:
        con.execute("update meta.runs set status = 'succeeded', exit_code = 0, "
                    "finished_at = current_timestamp where status = 'running'")
    finally:
        con.close()
    publish(load_settings(home=dest), run_id)
    return dest


@pytest.fixture(scope="session")
def published_home(built_home, tmp_path_factory):
    """``published_home(name, analytics=False)`` → a home whose published copy holds the
    built dataset ``name`` (see ``built_home``) after the transform, and with ``analytics``
    after every stage (predictions, insights, report). Built once per session; treat it as read-only."""
    cache: dict[tuple[str, bool], Path] = {}

    def make(name: str, analytics: bool = False) -> Path:
        key = (name, analytics)
        if key not in cache:
            dest = tmp_path_factory.mktemp(f"published-{name}-{int(analytics)}") / "home"
            stages = FULL_STAGES if analytics else ("transform",)
            cache[key] = publish_home(built_home(name, stages), dest,
                                      run_id=f"test-{name}-{int(analytics)}")
        return cache[key]

    return make


@pytest.fixture
def loopback():
    """Streamlit's server.address as ``purchase-patterns dashboard`` sets it (AppTest has no
    server, so the option is otherwise unset, which the app treats as every interface)."""
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)


@pytest.fixture
def app(monkeypatch, loopback):
    """``app(home, page=None)`` → an ``AppTest`` of the dashboard on ``home``, run once (and
    switched to ``views/<page>.py`` and run again when ``page`` is given)."""
    from streamlit.testing.v1 import AppTest

    def make(home: Path, page: str | None = None):
        monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))
        at = AppTest.from_file(str(DASHBOARD / "streamlit_app.py"), default_timeout=120)
        at.run()
        if page:
            at.switch_page(str(DASHBOARD / "views" / f"{page}.py"))
            at.run()
        return at

    return make
