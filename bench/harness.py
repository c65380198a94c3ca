"""Benchmarks: how far one machine goes, and how cost grows with rows.

For each dataset size (synthetic purchases from ``purchase-patterns generate``, cached in
``bench/cache``) it measures, each in its own process (wall time and peak RSS, median of
``--repeats`` runs), side by side in one invocation:

- floor:   DuckDB alone counting the CSV's rows, and copying the CSV to Parquet;
- ours:    ``purchase-patterns run`` end to end on a fresh home, then each stage on its own
           (``ingest`` on a fresh home; ``transform``, ``predict``, ``analyze``, ``report``
           re-run on the ingested warehouse);
- pandas:  ``bench/pandas_pipeline.py``, the script a competent analyst would write;
- clv:     BG/NBD + Gamma-Gamma fit alone (``bench/clv_fit.py``) at 100k and 1M customers;
- dashboard: filter change → re-rendered chart in headless Chromium (largest size only).

Results: ``bench/results/results.json`` and ``bench/results/results.md`` (with the ratios
ours/floor and pandas/ours and the time per row).

    python bench/harness.py                       # 100k, 1M, 10M rows, 3 repeats
    python bench/harness.py --sizes 2k --repeats 1 --out /tmp/smoke   # the smoke run of make test
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Measurement, measure  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
CLI = [str(BIN / "purchase-patterns")]
#: purchase lines per customer the generator makes with its default parameters (measured)
ROWS_PER_CUSTOMER = 4.83
STAGES = ("transform", "predict", "analyze", "report")
SEED = 1


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def dataset(rows: int, cache: Path) -> tuple[Path, int]:
    """The cached synthetic CSV of about ``rows`` purchase lines, and its exact row count."""
    customers = max(10, math.ceil(rows / ROWS_PER_CUSTOMER))
    path = cache / f"purchases_{customers}c_seed{SEED}.csv"
    truth = path.with_name(path.stem + ".truth.json")
    if not (path.exists() and truth.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        print(f"  generating {customers:,} customers → {path.name}", flush=True)
        m = measure("generate", CLI + ["generate", "--out", str(path), "--customers",
                                       str(customers), "--seed", str(SEED)], repeats=1)
        if m.returncode:
            raise SystemExit(f"generate failed ({m.returncode})")
    return path, json.loads(truth.read_text())["data"]["rows"]


def floor(csv: Path, work: Path, repeats: int) -> list[Measurement]:
    py = str(BIN / "python")
    count = ("import duckdb,sys; print(duckdb.execute("
             "'select count(*) from read_csv(?)', [sys.argv[1]]).fetchone()[0])")
    copy = ("import duckdb,sys; duckdb.execute(\"copy (select * from read_csv('\" + sys.argv[1]"
            " + \"')) to '\" + sys.argv[2] + \"' (format parquet)\")")
    out = work / "floor.parquet"
    return [measure("floor: duckdb count(*) from read_csv", [py, "-c", count, str(csv)],
                    repeats=repeats),
            measure("floor: duckdb csv → parquet", [py, "-c", copy, str(csv), str(out)],
                    repeats=repeats, before=lambda: out.unlink(missing_ok=True))]


def ours(csv: Path, work: Path, repeats: int) -> list[Measurement]:
    home = work / "home"

    def fresh() -> None:
        shutil.rmtree(home, ignore_errors=True)

    log = work / "ours.log"
    results = [measure("ours: run (end to end)",
                       CLI + ["--home", str(home), "run", "--input", str(csv)],
                       repeats=repeats, before=fresh, log=log)]
    results.append(measure("ours: ingest", CLI + ["--home", str(home), "ingest", "--input",
                                                  str(csv)], repeats=repeats, before=fresh,
                           log=log))
    for stage in STAGES:
        results.append(measure(f"ours: {stage}", CLI + ["--home", str(home), stage],
                               repeats=repeats, log=log))
    return results


def pandas_script(csv: Path, work: Path, repeats: int) -> list[Measurement]:
    return [measure("pandas: read, clean, RFM, seasonal, BG/NBD",
                    [str(BIN / "python"), str(BENCH / "pandas_pipeline.py"), str(csv)],
                    repeats=repeats, log=work / "pandas.log")]


def clv(customers: int, work: Path, repeats: int) -> list[Measurement]:
    script = BENCH / "clv_fit.py"
    return [measure(f"clv: BG/NBD + Gamma-Gamma fit, {label(customers)} customers",
                    [str(BIN / "python"), str(script), "--customers", str(customers)],
                    repeats=repeats, log=work / "clv.log")]


def dashboard(home: Path, work: Path, repeats: int) -> list[Measurement]:
    script = BENCH / "dashboard_latency.py"
    out = work / "dashboard.json"
    m = measure("dashboard: filter change → re-rendered chart",
                [str(BIN / "python"), str(script), "--home", str(home), "--out", str(out)],
                repeats=1, log=work / "dashboard.log")
    if m.returncode == 0 and out.exists():
        # the script reports the browser-side latency of each filter change itself
        m.detail = out.read_text()
    return [m]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100k,1m,10m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clv-customers", default="100k,1m")
    ap.add_argument("--only", default="floor,ours,pandas,clv,dashboard")
    ap.add_argument("--cache", type=Path, default=BENCH / "cache")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    report: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": {"cpus": __import__("os").cpu_count(),
                                "python": platform.python_version(),
                                "platform": platform.platform()},
                    "repeats": args.repeats, "sizes": []}
    work_root = args.out / "work"
    for n in sizes:
        print(f"size {label(n)}", flush=True)
        csv, rows = dataset(n, args.cache)
        work = work_root / label(n)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        ms: list[Measurement] = []
        if "floor" in parts:
            ms += floor(csv, work, args.repeats)
        if "ours" in parts:
            ms += ours(csv, work, args.repeats)
        if "pandas" in parts:
            ms += pandas_script(csv, work, args.repeats)
        if "dashboard" in parts and n == max(sizes) and "ours" in parts:
            ms += dashboard(work / "home", work, 1)
        for m in ms:
            print(f"  {m.name:55} {m.median_seconds:8.2f} s {m.median_rss_mb:8.0f} MB"
                  + ("" if m.returncode == 0 else f"  (exit {m.returncode})"), flush=True)
        report["sizes"].append({"label": label(n), "rows": rows, "csv_bytes": csv.stat().st_size,
                                "measurements": [m.as_dict() for m in ms]})
    if "clv" in parts:
        work = work_root / "clv"
        work.mkdir(parents=True, exist_ok=True)
        report["clv"] = [m.as_dict() for c in args.clv_customers.split(",")
                         for m in clv(parse_size(c), work, args.repeats)]
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    (args.out / "results.md").write_text(markdown(report))
    print(f"results: {args.out / 'results.md'}")
    failed = [m for s in report["sizes"] for m in s["measurements"] if m["returncode"]]
    failed += [m for m in report.get("clv", []) if m["returncode"]]
    return 1 if failed else 0


def _get(size: dict, name: str) -> dict | None:
    return next((m for m in size["measurements"] if m["name"] == name), None)


def markdown(report: dict) -> str:
    lines = [f"Benchmarks of {report['started']} on {report['machine']['cpus']} cores "
             f"(median of {report['repeats']}; wall seconds / peak RSS MB).", ""]
    names: list[str] = []
    for s in report["sizes"]:
        for m in s["measurements"]:
            if m["name"] not in names:
                names.append(m["name"])
    head = "| measurement | " + " | ".join(f"{s['label']} ({s['rows']:,} rows)"
                                          for s in report["sizes"]) + " |"
    lines += [head, "|---" * (1 + len(report["sizes"])) + "|"]
    for name in names:
        cells = []
        for s in report["sizes"]:
            m = _get(s, name)
            cells.append("—" if m is None else
                         f"{m['median_seconds']:.2f} s / {m['median_peak_rss_mb']:.0f} MB"
                         + ("" if m["returncode"] == 0 else f" (exit {m['returncode']})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio | " + " | ".join(s["label"] for s in report["sizes"]) + " |",
              "|---" * (1 + len(report["sizes"])) + "|"]

    def ratio(num: str, den: str, key: str = "median_seconds") -> list[str]:
        out = []
        for s in report["sizes"]:
            a, b = _get(s, num), _get(s, den)
            out.append(f"{a[key] / b[key]:.2f}×" if a and b and b[key] else "—")
        return out

    run, parquet = "ours: run (end to end)", "floor: duckdb csv → parquet"
    pandas = "pandas: read, clean, RFM, seasonal, BG/NBD"
    lines.append("| ours run / floor (csv → parquet), time | " + " | ".join(ratio(run, parquet)) + " |")
    lines.append("| ours ingest / floor (csv → parquet), time | "
                 + " | ".join(ratio("ours: ingest", parquet)) + " |")
    lines.append("| pandas / ours run, time | " + " | ".join(ratio(pandas, run)) + " |")
    lines.append("| pandas / ours run, peak memory | "
                 + " | ".join(ratio(pandas, run, "median_peak_rss_mb")) + " |")
    per_row = []
    for s in report["sizes"]:
        m = _get(s, run)
        per_row.append(f"{m['median_seconds'] / s['rows'] * 1e6:.2f} µs" if m else "—")
    lines.append("| ours run, time per row | " + " | ".join(per_row) + " |")
    if report.get("clv"):
        lines += ["", "| CLV fit | seconds | peak MB |", "|---|---|---|"]
        lines += [f"| {m['name']} | {m['median_seconds']:.2f} | {m['median_peak_rss_mb']:.0f} |"
                  for m in report["clv"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    t = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t:.0f} s)")
    raise SystemExit(code)
