"""A 2 GB input without writing 2 GB: a sparse file (real rows, then a 2 GiB hole of NUL
bytes, then more real rows) and a gzip bomb (1 GiB of NULs in a 1 MB file), both through the
real CLI. What matters: bounded memory, a clear one-line error naming the file and line, no
crash, and nothing copied into the lake. (A valid 2 GB file is a benchmark, not a test:
``python bench/big_file.py``; see the README.)"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

GIB = 1024**3


#: Runs argv[2:] as a child and writes its peak RSS (KiB) to the file argv[1]. Measuring
#: through this small process matters: Linux carries the RSS high-water mark of the forking
#: process over fork and exec, so a child forked straight from a big pytest process would
#: report pytest's size, not its own.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str]) -> tuple[int, str, float, float]:
    """Run the CLI; return exit code, stderr, peak memory (MB) and seconds of that process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    with tempfile.TemporaryDirectory() as d:
        peak_file = Path(d) / "peak"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _MEASURE, str(peak_file), sys.executable,
                               "-m", "purchase_patterns", *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              check=False)
        seconds = time.perf_counter() - t0
        peak_kib = int(peak_file.read_text())
    return proc.returncode, proc.stderr.decode(), peak_kib / 1024, seconds


def disk_usage(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_sparse_2gb_file(tmp_path: Path, kaggle_csv: Path) -> None:
    header, *rows = kaggle_csv.read_text(encoding="utf-8").splitlines()
    head = ("\n".join([header, *rows[:100]]) + "\n").encode()
    tail = ("\n".join(rows[100:200]) + "\n").encode()
    path = tmp_path / "two_gigabytes.csv"
    with path.open("wb") as fh:
        fh.write(head)
        fh.seek(2 * GIB - len(tail))
        fh.write(tail)
    assert path.stat().st_size == 2 * GIB
    assert path.stat().st_blocks * 512 < 10 * 1024**2  # sparse: the hole takes no disk
    home = tmp_path / "home"
    code, stderr, peak_mb, _seconds = run_measured(["--home", str(home), "ingest",
                                                    "--input", str(path)])
    assert code == 2
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.splitlines() if ln.strip()]
    # the hole starts right after the 100th row (line 101): line 102 is 2 GB of NULs
    assert errors == [f"error: {path}:102: line is longer than 2,000,000 bytes: not "
                      "line-delimited text there (binary data, or line ends missing)"]
    assert peak_mb < 500, peak_mb
    assert not list((home / "lake").rglob("*.csv"))  # nothing landed
    assert disk_usage(home) < 50 * 1024**2


def test_gzip_bomb(tmp_path: Path) -> None:
    member = gzip.compress(bytes(1024**2), mtime=0)  # 1 MiB of NULs in about 1 KB
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(member * 1024)  # 1,024 concatenated members: 1 GiB when inflated
    assert path.stat().st_size < 2 * 1024**2
    home = tmp_path / "home"
    code, stderr, peak_mb, _seconds = run_measured(["--home", str(home), "ingest",
                                                    "--input", str(path)])
    assert code == 2
    assert [ln for ln in stderr.splitlines() if ln.strip()] == [
        f"error: {path}: not delimited text (binary content)"]
    assert peak_mb < 500, peak_mb


def test_max_rss_is_measured() -> None:
    """The measurement itself works (a child that allocates 200 MB shows it)."""
    code, _err, _peak, _s = run_measured(["--version"])
    assert code == 0
    proc = subprocess.Popen([sys.executable, "-c", "b = bytearray(200 * 1024**2); b[::4096] = "
                             "b'x' * len(b[::4096])"])
    _, _status, usage = os.wait4(proc.pid, 0)
    assert usage.ru_maxrss / 1024 > 200


# -- files larger than the CSV reader's buffer (32 MB): it reads them in parallel pieces -----

ROWS = 360_000  # about 40 MB of real rows


def big_rows(kaggle_csv: Path) -> tuple[str, list[list[str]]]:
    """The real rows repeated with fresh customer ids: row i (0-based) has id ``c<i>``."""
    header, *rows = kaggle_csv.read_text(encoding="utf-8").splitlines()
    fields = [r.split(",") for r in rows]
    return header, [[f"c{i}", *fields[i % len(fields)][1:]] for i in range(ROWS)]


def test_lines_stay_exact_across_read_buffers(tmp_path: Path, kaggle_csv: Path) -> None:
    """Every 1,000th row has an item with a quoted line break, every 5,000th an impossible
    age, every 7,000th too few fields: each row's line, loaded or rejected, is where it was
    written, also in the pieces the reader handles in parallel."""
    from purchase_patterns import warehouse
    from purchase_patterns.ingest import ingest_file
    from purchase_patterns.lake import Lake
    from purchase_patterns.settings import load_settings

    header, rows = big_rows(kaggle_csv)
    out, line, expect_line, bad_age, short = [header], 2, {}, set(), set()
    for i, r in enumerate(rows):
        if i % 7000 == 6999:
            r = r[:3]
            short.add(f"c{i}")
        elif i % 5000 == 4999:
            r = [r[0], "999", *r[2:]]
            bad_age.add(f"c{i}")
        elif i % 1000 == 999:
            r = [*r[:3], '"Blouse\nwith a line break"', *r[4:]]
        out.append(",".join(r))
        expect_line[f"c{i}"] = line
        line += 2 if i % 1000 == 999 and f"c{i}" not in bad_age | short else 1
    path = tmp_path / "big.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    assert path.stat().st_size > 32 * 1024**2
    settings = load_settings(home=tmp_path / "home")
    con = warehouse.connect(settings)
    try:
        res = ingest_file(con, Lake(settings.lake), path, run_id="big")
        assert (res.rows_in, res.rows_rejected) == (ROWS, len(bad_age) + len(short))
        got = dict(con.execute("select customer_id, source_line from raw.purchases").fetchall())
        assert got == {c: n for c, n in expect_line.items() if c not in bad_age | short}
        rejected = con.execute("select line, column_name, reason from raw.rejects").fetchall()
        by_line = {c: n for c, n in expect_line.items()}
        assert sorted(ln for ln, col, _r in rejected if col == "Age") == sorted(
            by_line[c] for c in bad_age)
        assert sorted(ln for ln, col, r in rejected if r.startswith("MISSING COLUMNS")) == sorted(
            by_line[c] for c in short)
    finally:
        con.close()


def test_unterminated_quote_in_a_file_larger_than_the_read_buffer(tmp_path: Path,
                                                                   kaggle_csv: Path) -> None:
    """DuckDB's parallel reader loses part of the file after a quote that never closes (the
    rest runs into the reject, whose text it cuts, until the next piece): the file stops,
    naming the line, instead of loading with rows missing."""
    from purchase_patterns import warehouse
    from purchase_patterns.errors import InputFileError
    from purchase_patterns.ingest import ingest_file
    from purchase_patterns.lake import Lake
    from purchase_patterns.settings import load_settings

    header, rows = big_rows(kaggle_csv)
    rows[49][7] = '"L'  # the Size of the row on line 51
    path = tmp_path / "big_unterminated.csv"
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    settings = load_settings(home=tmp_path / "home")
    con = warehouse.connect(settings)
    try:
        with pytest.raises(InputFileError) as exc:
            ingest_file(con, Lake(settings.lake), path, run_id="big")
        assert str(exc.value).startswith(f"{path}:51: ")
        assert "could not be read as records" in str(exc.value) or "never ends" in str(exc.value)
        assert con.execute("select count(*) from raw.batches").fetchone()[0] == 0
    finally:
        con.close()


def test_clean_file_lines_follow_the_file_across_read_buffers(tmp_path: Path,
                                                              kaggle_csv: Path) -> None:
    """A file with no rejects, blank lines or line breaks in values (the common case) is
    numbered by the order the check pass stores its records, not by a row counter: that
    order is the file's, also when the reader handles its pieces in parallel."""
    from purchase_patterns import warehouse
    from purchase_patterns.ingest import ingest_file
    from purchase_patterns.lake import Lake
    from purchase_patterns.settings import load_settings

    header, rows = big_rows(kaggle_csv)
    path = tmp_path / "big_clean.csv"
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    assert path.stat().st_size > 32 * 1024**2
    settings = load_settings(home=tmp_path / "home")
    assert settings.duckdb_threads >= 2
    con = warehouse.connect(settings)
    try:
        res = ingest_file(con, Lake(settings.lake), path, run_id="big")
        assert (res.rows_in, res.rows_loaded) == (ROWS, ROWS)
        wrong = con.execute("select count(*) from raw.purchases "
                            "where source_line <> cast(substr(customer_id, 2) as bigint) + 2"
                            ).fetchone()[0]
        assert wrong == 0
    finally:
        con.close()
