"""Crash safety: ``purchase-patterns run`` killed with SIGKILL at points spread over every
stage, then run again.

A first run, uninterrupted, lists every checkpoint the pipeline announces (``faults.py``)
and when; the kill points are chosen from that list, so stages added later are covered
without editing this test: every checkpoint inside the ingest transaction and the publish
sequence and the run's start, and, for each stage after ingest, a moment halfway through
it (a kill inside dbt, for the transform) and its last checkpoint.

Each killed run adds one new file (a slice of the real CDNOW log) and is started with all
the files so far; the next run is the re-run. After every kill: the warehouse opens, every
batch is whole (its rows and rejects match its counts, no row without a batch), the lake's
manifest never claims a batch the warehouse lacks, and the published copy is either the old
one or the new one, complete and consistent. After the last, uninterrupted run: every file
is loaded exactly once, the run log shows each killed run as 'interrupted', and nothing the
killed processes left behind remains.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from purchase_patterns.lake import Lake
from purchase_patterns.publish import current, published_dir
from purchase_patterns.settings import load_settings

pytestmark = pytest.mark.slow

SLICE = 250  # CDNOW lines per added file
#: ingest checkpoints to kill at: landing, reading, and each step of the load transaction
INGEST = ("ingest:*:landing raw file in the lake", "ingest:*:reading and validating",
          "ingest:*:loading: rows inserted, not committed",
          "ingest:*:loading: lake files written, not committed", "ingest:*:loading: committed")


@dataclass
class Mark:
    time: float
    pid: int
    run_id: str
    name: str


def read_marks(path: Path) -> list[Mark]:
    if not path.exists():
        return []
    marks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        t, pid, run_id, name = line.split(" ", 3)
        marks.append(Mark(float(t), int(pid), run_id, name))
    return marks


def launch(home: Path, inputs: list[Path], marks: Path, pause_at: str | None = None,
           ) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    env["PURCHASE_PATTERNS_CHECKPOINT_FILE"] = str(marks)
    if pause_at:
        env["PURCHASE_PATTERNS_PAUSE_AT"] = pause_at
        env["PURCHASE_PATTERNS_PAUSE_SECONDS"] = "600"
    args = [a for p in inputs for a in ("--input", str(p))]
    log = (marks.parent / f"{marks.stem}.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "purchase_patterns", "--home", str(home), "--json", "run", *args],
        stdout=log, stderr=log, env=env)


def wait_for(marks: Path, pid: int, pattern: str, timeout: float = 300) -> Mark:
    """The first checkpoint of process ``pid`` matching ``pattern`` (wildcards allowed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in read_marks(marks):
            if m.pid == pid and fnmatch.fnmatchcase(m.name, pattern):
                return m
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never reached {pattern!r}")


@dataclass
class Kill:
    """Where to kill: at checkpoint ``pause_at``, or ``delay`` seconds after ``after``."""

    label: str
    pause_at: str | None = None
    after: str | None = None
    delay: float = 0.0


def stage_of(name: str) -> str:
    """The stage a checkpoint belongs to: ``stage:<name>:…`` → name, else its first part."""
    parts = name.split(":")
    return parts[1] if parts[0] == "stage" else parts[0]


def stages_of(discovery: list[Mark]) -> list[str]:
    """The stages after ingest, in the order the run announced them."""
    return [stage_of(m.name) for m in discovery
            if m.name.startswith("stage:") and m.name.endswith(":start")
            and m.name != "stage:ingest:start"]


def plan(discovery: list[Mark]) -> list[Kill]:
    """Kill points from an uninterrupted run's checkpoints (see the module docstring)."""
    names = [m.name for m in discovery]
    kills = [Kill("run:start", pause_at="run:start")]
    for pattern in INGEST:
        assert any(fnmatch.fnmatchcase(n, pattern) for n in names), pattern
        kills.append(Kill(pattern, pause_at=pattern))
    at = {m.name: m.time for m in discovery}
    stages = stages_of(discovery)
    assert stages, "no stage after ingest announced itself"
    for stage in stages:
        start, end = f"stage:{stage}:start", f"stage:{stage}:end"
        kills.append(Kill(f"inside {stage}", after=start, delay=(at[end] - at[start]) / 2))
        inner = [n for n in names[names.index(start) + 1:names.index(end)]
                 if not n.startswith("stage:")]
        if inner:  # the stage's last step (each kill after a stage costs a whole stage)
            kills.append(Kill(inner[-1], pause_at=inner[-1]))
    kills += [Kill(n, pause_at=n) for n in names if n.startswith("publish:")]
    return kills


# -- invariants --------------------------------------------------------------------------------


def open_copy(db: Path, scratch: Path) -> duckdb.DuckDBPyConnection:
    """Open a copy of a warehouse file (with its WAL, if any) read-write, as the next run
    would, without changing the original."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    shutil.copyfile(db, scratch / db.name)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, scratch / wal.name)
    return duckdb.connect(str(scratch / db.name))


def check_batches(con: duckdb.DuckDBPyConnection, expected: dict[str, int]) -> set[str]:
    """Every batch whole, no row without a batch, only known files; returns the batch ids."""
    batches = con.execute("select batch_id, rows_in, rows_loaded, rows_rejected, "
                          "(select count(*) from raw.purchases p where p.batch_id = b.batch_id), "
                          "(select count(distinct line) from raw.rejects r "
                          " where r.batch_id = b.batch_id) from raw.batches b").fetchall()
    for bid, rows_in, loaded, rejected, n_rows, n_rejects in batches:
        assert bid in expected, bid
        assert (loaded, rejected, n_rows, n_rejects) == (expected[bid], 0, expected[bid], 0)
        assert rows_in == loaded + rejected
    ids = {b[0] for b in batches}
    assert len(ids) == len(batches)
    orphans = con.execute("select count(*) from raw.purchases where batch_id not in "
                          "(select batch_id from raw.batches)").fetchone()[0]
    assert orphans == 0
    return ids


def check_published(path: Path, expected: dict[str, int]) -> str:
    """The published copy opens read-only, its own run succeeded, its marts agree with each
    other and with its raw rows, and its batches are whole; returns its run id."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        run_id = path.stem.removeprefix("warehouse-")
        assert con.execute("select status from meta.runs where run_id = ?",
                           [run_id]).fetchall() == [("succeeded",)]
        fct = con.execute("select count(*), sum(amount) from marts.fct_purchases").fetchone()
        season = con.execute("select sum(n_purchases), sum(revenue) "
                             "from marts.agg_sales_by_season").fetchone()
        raw = con.execute("select count(*), sum(amount) from raw.purchases").fetchone()
        assert fct == season == raw
        check_batches(con, expected)
        return run_id
    finally:
        con.close()


def check_lake(lake: Lake, batch_ids: set[str]) -> None:
    """A manifest entry says 'loaded' only for a batch the warehouse has."""
    for entry in lake.manifest():
        if entry["status"] == "loaded":
            assert entry["batch_id"] in batch_ids, entry["source_file"]


# -- the test ----------------------------------------------------------------------------------


def test_sigkill_at_every_stage_then_rerun(tmp_path: Path, cdnow_master: Path) -> None:
    import hashlib

    header, *data = cdnow_master.read_text(encoding="ascii").splitlines()
    files: list[Path] = []
    expected: dict[str, int] = {}

    def add_file(lines: list[str]) -> Path:
        path = tmp_path / "inputs" / f"cdnow_part_{len(files)}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join([header, *lines]) + "\n", encoding="ascii")
        expected[hashlib.sha256(path.read_bytes()).hexdigest()] = len(lines)
        files.append(path)
        return path

    home = tmp_path / "home"
    settings = load_settings(home=home)
    marks = tmp_path / "marks.txt"
    add_file(data[:1500])
    add_file(data[1500:1500 + SLICE])

    # an uninterrupted run: the checkpoints, their timing, and a first published copy
    proc = launch(home, files, marks)
    assert proc.wait(timeout=600) == 0, (tmp_path / "marks.log").read_text()
    discovery = [m for m in read_marks(marks) if m.pid == proc.pid]
    kills = plan(discovery)
    assert len(kills) >= 10
    published = current(settings)
    assert published is not None

    killed_runs: list[str] = []
    landed: list[str] = []
    for i, kill in enumerate(kills):
        add_file(data[1500 + SLICE * (i + 1):1500 + SLICE * (i + 2)])
        proc = launch(home, files, marks, pause_at=kill.pause_at)
        if kill.pause_at:
            wait_for(marks, proc.pid, f"paused {kill.pause_at}")
        else:
            wait_for(marks, proc.pid, kill.after)
            time.sleep(kill.delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, f"{kill.label}: ended before the kill"
        ours = [m for m in read_marks(marks) if m.pid == proc.pid]
        landed.append(ours[-1].name)
        killed_runs.append(next(m.run_id for m in ours if m.name == "run:start"))

        # the published copy is the old one or the killed run's, complete either way
        now_published = current(settings)
        assert now_published is not None
        assert now_published.name in (published.name, f"warehouse-{killed_runs[-1]}.duckdb")
        check_published(now_published, expected)
        published = now_published
        # the warehouse opens; every batch is whole; the lake claims nothing it lacks
        con = open_copy(settings.warehouse_path, tmp_path / "scratch")
        try:
            ids = check_batches(con, expected)
        finally:
            con.close()
        check_lake(Lake(settings.lake), ids)

    # the kills landed in every stage
    hit = {stage_of(n.removeprefix("paused ")) for n in landed}
    assert {"run", "ingest", "publish"} | set(stages_of(discovery)) <= hit, landed

    # the re-run after the last kill completes
    proc = launch(home, files, marks)
    assert proc.wait(timeout=600) == 0, (tmp_path / "marks.log").read_text()
    final_run = next(m.run_id for m in read_marks(marks)
                     if m.pid == proc.pid and m.name == "run:start")

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        assert check_batches(con, expected) == set(expected)  # every file, exactly once
        assert con.execute("select count(*) from raw.purchases").fetchone()[0] == sum(
            expected.values())
        status = dict(con.execute("select run_id, status from meta.runs").fetchall())
    finally:
        con.close()
    assert [status[r] for r in killed_runs] == ["interrupted"] * len(killed_runs)
    assert status[final_run] == "succeeded"
    assert "running" not in status.values()

    assert check_published(current(settings), expected) == final_run
    folder = published_dir(settings)
    assert len(list(folder.glob("warehouse-*.duckdb"))) <= 2
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    # nothing the killed processes left behind remains
    assert not list((Path(settings.lake) / "_tmp").glob("*"))
    leftovers = [p.name for p in settings.tmp_dir.iterdir()
                 if p.name.startswith(("ingest-", "duckdb_temp_", "reader-"))]
    assert leftovers == []
