"""Publishing: readers get a finished copy, swapped atomically; a failed run keeps the old one."""

from __future__ import annotations

import duckdb

from purchase_patterns.pipeline import run_pipeline
from purchase_patterns.publish import current


def _count(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select count(*) from raw.purchases").fetchall()[0][0]
    finally:
        con.close()


def test_run_publishes_and_failed_run_keeps_previous(settings, kaggle_csv, tmp_path):
    assert current(settings) is None
    first = run_pipeline(settings, [kaggle_csv])
    assert first.exit_code == 0
    pub = current(settings)
    assert pub is not None and first.run_id in pub.name
    assert _count(pub) == 3900
    # the published copy opens read-only while the working warehouse is open for writing
    writer = duckdb.connect(str(settings.warehouse_path))
    try:
        assert _count(pub) == 3900
    finally:
        writer.close()

    bad = tmp_path / "bad.csv"
    bad.write_text("nothing useful here\n")
    failed = run_pipeline(settings, [bad])
    assert failed.exit_code == 2
    assert [(s.name, s.status) for s in failed.stages if s.name == "publish"] == [
        ("publish", "skipped")]
    assert current(settings) == pub

    cdnow = kaggle_csv.parent / "cdnow" / "CDNOW_sample.txt"
    third = run_pipeline(settings, [cdnow])
    assert third.exit_code == 0 and current(settings) != pub
    assert _count(current(settings)) == 3900 + 6919
