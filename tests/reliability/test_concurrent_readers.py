"""Concurrent readers: dashboard-style queries in a loop while full runs rebuild everything.

Readers go through ``open_store(settings, read_only=True, path=publish.current(settings))``
as the dashboard does: some open a fresh store for every query, one keeps its store open
across the swaps (a long dashboard session). Two ``purchase-patterns run`` processes rebuild
the warehouse (the whole CDNOW log) one after the other, each adding a file, so a copy is
published, replaced and pruned while the readers read. Every read must succeed and see one consistent state: the
marts of the file it opened agree with each other (``fct_purchases`` against
``agg_sales_by_season``) and with its raw rows, and each published file always shows the
same state (no torn reads).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from purchase_patterns.datastore import open_store
from purchase_patterns.publish import current, publish
from purchase_patterns.settings import load_settings

pytestmark = pytest.mark.slow


def run_cli(home: Path, inputs: list[Path]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    args = [a for p in inputs for a in ("--input", str(p))]
    return subprocess.Popen([sys.executable, "-m", "purchase_patterns", "--home", str(home),
                             "--json", "run", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def snapshot(store) -> tuple:
    """(rows, revenue) from the fact table, the season aggregate and the raw rows: one read
    in one connection, which must agree."""
    fct = store.query("select count(*) as n, sum(amount) as revenue from "
                      + store.relation("marts", "fct_purchases"))
    season = store.query("select sum(n_purchases) as n, sum(revenue) as revenue from "
                         + store.relation("marts", "agg_sales_by_season"))
    raw = store.query("select count(*) as n, sum(amount) as revenue from "
                      + store.relation("raw", "purchases"))
    states = [tuple(str(v) for v in frame.iloc[0]) for frame in (fct, season, raw)]
    assert states[0] == states[1] == states[2], states
    return states[0]


def test_readers_see_no_errors_and_no_torn_state_during_rebuilds(
        tmp_path, cdnow_master, built_home, home_copy):
    # the whole CDNOW log, transformed (shared with other tests), published as the old state
    home = home_copy(built_home("cdnow_master"))
    settings = load_settings(home=home)
    publish(settings, "initial")
    # two more files of real rows, as purchases of new customers (ids moved up by 100,000)
    header, *data = cdnow_master.read_text(encoding="ascii").splitlines()
    inputs = []
    for i in range(2):
        lines = [f"{int(c) + 100_000} {d} {n} {v}"
                 for c, d, n, v in (ln.split() for ln in data[500 * i:500 * (i + 1)])]
        path = tmp_path / f"new_customers_{i}.txt"
        path.write_text("\n".join([header, *lines]) + "\n", encoding="ascii")
        inputs.append(path)
    total = len(data)

    stop = threading.Event()
    errors: list[str] = []
    seen: dict[str, set[tuple]] = {}  # published file → states read from it
    reads = [0]
    lock = threading.Lock()

    def fresh_reader() -> None:
        while not stop.is_set():
            try:
                path = current(settings)
                store = open_store(settings, read_only=True, path=path)
                try:
                    state = snapshot(store)
                finally:
                    store.close()
                with lock:
                    seen.setdefault(path.name, set()).add(state)
                    reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is collected and reported
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)

    def long_session() -> None:
        path = current(settings)
        store = open_store(settings, read_only=True, path=path)
        try:
            states = set()
            while not stop.is_set():
                try:
                    states.add(snapshot(store))
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"long session: {type(exc).__name__}: {exc}")
                time.sleep(0.05)
            with lock:
                seen.setdefault(path.name, set()).update(states)
        finally:
            store.close()

    threads = [threading.Thread(target=fresh_reader) for _ in range(2)]
    threads.append(threading.Thread(target=long_session))
    for t in threads:
        t.start()
    try:
        for n in (1, 2):  # two full rebuilds, one after the other, while the readers read
            run = run_cli(home, inputs[:n])
            assert run.wait(timeout=600) == 0, run.stderr.read()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert errors == []
    assert reads[0] >= 20
    # each published file showed exactly one state, and the readers saw the old, the
    # intermediate and the new one
    assert all(len(states) == 1 for states in seen.values()), seen
    totals = sorted(int(float(next(iter(s))[0])) for s in seen.values())
    assert totals == [total, total + 500, total + 1000], seen
