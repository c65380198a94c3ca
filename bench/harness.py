"""Benchmarks: how far one machine goes, and how cost grows with rows (issue 9).

For each dataset size (synthetic purchases from :func:`purchase_patterns.generate.generate`,
cached in ``bench/.cache``) it measures, each command in its own process (wall time and peak
RSS from ``wait4``, median of ``--repeats`` runs), side by side in one invocation:

- floor:     DuckDB alone counting the CSV's rows, and copying the CSV to Parquet
             (``bench/floor.py``);
- ours:      ``purchase-patterns run`` end to end on a fresh home, then each stage on its own:
             ``ingest`` on a fresh home, and ``transform`` (without dbt's parse cache, as
             in a first run), ``predict``, ``analyze``, ``report`` re-run in turn on the
             warehouse that ingest loaded;
- pandas:    ``bench/pandas_pipeline.py``, the script a competent analyst would write (read,
             clean, RFM, seasonal aggregates, BG/NBD fit); its RFM score counts and seasonal
             totals are compared with ours (``agreement``);

and once per invocation:

- clv:       BG/NBD + Gamma-Gamma fit alone on simulated customers (``--clv-customers``,
             ``bench/bench_predict_fit.py``; its own fit time is the figure);
- dashboard: filter change → re-rendered chart in headless Chromium on the warehouse the
             end-to-end run published, at 10M rows or else the largest size
             (``bench/bench_dashboard.py``).

Results: ``results.json`` and ``results.md`` in ``--out`` (default ``bench/results``; another
set of sizes goes to ``bench/results/<sizes>``, the smoke run to ``bench/results/smoke``): every
measurement, the ratios ours/floor and pandas/ours, the time per row at each scale, and the
targets of issue 9 marked met / not met from these measurements.

    python bench/harness.py                                   # 100k, 1M, 10M rows, 3 repeats
    python bench/harness.py --sizes 100M --repeats 1 --only floor,run,pandas
                                          # the 100M run, separately (into bench/results/100M)
    python bench/harness.py --smoke       # 2k rows, 1 repeat (make test runs it)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from purchase_patterns import __version__, generate
from purchase_patterns.publish import current
from purchase_patterns.settings import load_settings
from purchase_patterns.transform import dbt_dir
from purchase_patterns.warehouse import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Measurement, measure  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
PY = str(BIN / "python")
CLI = [str(BIN / "purchase-patterns")]
#: "run" is the end-to-end run alone (no per-stage runs): for sizes where one run is long
ALL_PARTS = ("floor", "ours", "run", "pandas", "clv", "dashboard")
DEFAULT_SIZES = "100k,1M,10M"
SMOKE = "2k"
#: purchase lines per customer the generator makes with its default parameters (measured:
#: 4.8-4.9), so a size is approximate; the report gives each file's exact rows
ROWS_PER_CUSTOMER = 4.83
STAGES = ("transform", "predict", "analyze", "report")
SEED = 1
GB = 1024.0  # MB per GB

#: what each measurement key is called in the tables
NAMES = {
    "floor_count": "floor: DuckDB count(*) from read_csv",
    "floor_parquet": "floor: DuckDB CSV → Parquet",
    "ours_run": "ours: run (end to end)",
    "ours_ingest": "ours: ingest",
    **{f"ours_{s}": f"ours: {s}" for s in STAGES},
    "ours_analytics": "ours: RFM + seasonal + BG/NBD over the marts",
    "pandas": "pandas + SciPy script",
}


def parse_size(text: str) -> int:
    """``"2k"`` → 2,000; ``"1.5M"`` → 1,500,000."""
    text = text.strip()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text.rstrip("kKmM")) * mult)


def label(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    return f"{n / 1_000:g}k" if n >= 1_000 else str(n)


def child_env() -> dict[str, str]:
    """The environment of every measured command: ours with its defaults (no
    ``PURCHASE_PATTERNS_*`` settings from the caller's shell), no dbt telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
    return env


def _generator_fingerprint() -> str:
    """Changes whenever the generated file could: the package version and the sources of
    the generator and the schema it draws from."""
    h = hashlib.sha256(__version__.encode())
    for module in ("generate.py", "schema.py"):
        h.update((Path(generate.__file__).parent / module).read_bytes())
    return h.hexdigest()[:10]


def dataset(rows: int, cache: Path) -> tuple[Path, int, int]:
    """The cached synthetic CSV of about ``rows`` purchase lines: (path, rows, customers).
    Generated once (into a temporary folder, then renamed, so a killed run leaves no
    half file in the cache)."""
    customers = max(10, math.ceil(rows / ROWS_PER_CUSTOMER))
    path = cache / f"purchases_{customers}c_seed{SEED}_{_generator_fingerprint()}.csv"
    truth = generate.truth_path_for(path)
    if not (path.exists() and truth.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        print(f"  generating {customers:,} customers → {path.name}", flush=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            made = generate.generate(Path(tmp) / path.name, customers, seed=SEED)
            os.replace(made.truth_path, truth)
            os.replace(made.path, path)
    data = json.loads(truth.read_text(encoding="utf-8"))["data"]
    return path, int(data["rows"]), int(data["customers"])


class Runner:
    """Measures commands with the invocation's repeats, environment and logs."""

    def __init__(self, repeats: int, logs: Path) -> None:
        self.repeats, self.logs, self.env = repeats, logs, child_env()
        logs.mkdir(parents=True, exist_ok=True)

    def __call__(self, key: str, cmd: list[str], *, name: str | None = None,
                 before: Callable[[], None] | None = None,
                 reports: Path | None = None) -> Measurement:
        m = measure(key, name or NAMES[key], cmd, repeats=self.repeats,
                    env=self.env, cwd=ROOT, log=self.logs / f"{key}.log", before=before,
                    reports=reports)
        print(f"  {m.name:48} {m.median_seconds:9.2f} s {m.median_rss_mb:8.0f} MB"
              + ("" if m.ok else f"  FAILED (exit {m.returncode}, see {m.log})"), flush=True)
        return m


def floor(run: Runner, csv: Path, work: Path) -> list[Measurement]:
    out = work / "floor.parquet"
    script = str(BENCH / "floor.py")
    ms = [run("floor_count", [PY, script, "count", str(csv)]),
          run("floor_parquet", [PY, script, "parquet", str(csv), str(out)],
              before=lambda: out.unlink(missing_ok=True))]
    out.unlink(missing_ok=True)
    return ms


def _fresh(home: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(home, ignore_errors=True)


def ours(run: Runner, csv: Path, work: Path, *, stages_too: bool = True) -> list[Measurement]:
    """End to end in ``work/run`` (left published, for the dashboard), then (unless
    ``stages_too`` is false) the stages one by one in ``work/stages``."""
    home, stages = work / "run", work / "stages"
    ms = [run("ours_run", CLI + ["--home", str(home), "run", "--input", str(csv)],
              before=_fresh(home))]
    if ms[0].ok:
        report = work / "ours_analytics.json"
        ms.append(run("ours_analytics", [PY, str(BENCH / "ours_analytics.py"), "--home",
                                         str(home), "--json", str(report)], reports=report))
    if not stages_too:
        return ms
    ms.append(run("ours_ingest", CLI + ["--home", str(stages), "ingest", "--input", str(csv)],
                  before=_fresh(stages)))
    # every transform starts, as the end-to-end run's does, without dbt's parse cache
    dbt_cache = dbt_dir(load_settings(home=stages))
    for stage in STAGES:
        if not ms[-1].ok:
            break  # a stage needs the one before it
        ms.append(run(f"ours_{stage}", CLI + ["--home", str(stages), stage],
                      before=_fresh(dbt_cache) if stage == "transform" else None))
    return ms


def pandas_script(run: Runner, csv: Path, work: Path) -> list[Measurement]:
    report = work / "pandas.json"
    return [run("pandas", [PY, str(BENCH / "pandas_pipeline.py"), str(csv), "--json",
                           str(report)], reports=report)]


def agreement(home: Path, pandas: dict) -> dict:
    """Do the pandas script's RFM score counts and seasonal totals equal ours (the
    warehouse the end-to-end run published)? Evidence that both did the same work."""
    settings = load_settings(home=home)
    con = connect(settings, read_only=True, path=current(settings))
    try:
        rfm = {col: {str(k): int(n) for k, n in con.execute(
            f"select {col}, count(*) from analytics.customer_segments "  # noqa: S608 - fixed names
            f"where scheme = 'rfm' group by 1 order by 1").fetchall()}
            for col in ("r_score", "f_score", "m_score")}
        seasons = {s: {"revenue": round(float(rev), 2), "purchases": int(n)} for s, rev, n in
                   con.execute("select season, revenue, n_purchases "
                               "from marts.agg_sales_by_season").fetchall()}
    finally:
        con.close()
    theirs = pandas.get("season_totals") or {}
    # revenue to the cent: the script sums floats, the warehouse decimals
    same_seasons = set(seasons) == set(theirs) and all(
        v["purchases"] == theirs[s]["purchases"]
        and abs(v["revenue"] - theirs[s]["revenue"]) < 0.01 for s, v in seasons.items())
    return {"rfm_counts_equal": rfm == pandas.get("rfm_counts"),
            "season_totals_equal": same_seasons,
            "ours": {"rfm_counts": rfm, "season_totals": seasons}}


def clv(run: Runner, customers: int, work: Path) -> Measurement:
    report = work / f"clv_{label(customers)}.json"
    return run(f"clv_{label(customers)}",
               [PY, str(BENCH / "bench_predict_fit.py"), "--customers", str(customers),
                "--json", str(report)],
               name=f"clv: BG/NBD + Gamma-Gamma, {label(customers)} customers",
               reports=report)


def dashboard(run: Runner, home: Path, work: Path) -> Measurement:
    report = work / "dashboard.json"
    return run("dashboard", [PY, str(BENCH / "bench_dashboard.py"), "--home", str(home),
                             "--repeat", "1", "--json", str(report)],
               name="dashboard: filter change → chart (Chromium)", reports=report)


def machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"cpus": os.cpu_count(), "memory_gb": round(mem, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "duckdb": duckdb.__version__, "purchase_patterns": __version__, "commit": commit}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="purchase rows, e.g. 100k,1M,10M")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command (median)")
    ap.add_argument("--clv-customers", default="100k,1M")
    ap.add_argument("--only", default=",".join(ALL_PARTS), help="subset of " + ",".join(ALL_PARTS))
    ap.add_argument("--smoke", action="store_true",
                    help=f"the smoke run of make test: --sizes {SMOKE} --repeats 1 "
                         f"--clv-customers {SMOKE}")
    ap.add_argument("--cache", type=Path, default=BENCH / ".cache",
                    help="generated datasets, and the work folders of this run")
    ap.add_argument("--out", type=Path, help="default: bench/results for the default sizes, "
                    "bench/results/smoke for --smoke, else bench/results/<sizes>")
    ap.add_argument("--keep-homes", action="store_true",
                    help="keep every size's homes (by default only logs stay)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeats, args.clv_customers = SMOKE, 1, SMOKE
    parts = set(args.only.split(","))
    if parts - set(ALL_PARTS):
        ap.error(f"unknown parts {sorted(parts - set(ALL_PARTS))}; choose from {ALL_PARTS}")
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    if args.out is None:
        labels = "-".join(label(n) for n in sizes)
        default = "-".join(label(parse_size(s)) for s in DEFAULT_SIZES.split(","))
        args.out = BENCH / "results" / ("smoke" if args.smoke else
                                        "" if labels == default else labels)
    dash_size = next((n for n in sizes if n == 10_000_000), sizes[-1])
    report: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": machine(), "load_average_start": os.getloadavg(),
                    "repeats": args.repeats, "sizes": [], "clv": [], "dashboard": None}
    work_root = args.cache / "work"
    for n in sizes:
        print(f"size {label(n)}", flush=True)
        csv, rows, customers = dataset(n, args.cache)
        work = work_root / label(n)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        run = Runner(args.repeats, work / "logs")
        ms: list[Measurement] = []
        if "floor" in parts:
            ms += floor(run, csv, work)
        if "ours" in parts or "run" in parts:
            ms += ours(run, csv, work, stages_too="ours" in parts)
        if "pandas" in parts:
            ms += pandas_script(run, csv, work)
        entry = {"label": label(n), "rows": rows, "customers": customers,
                 "csv_bytes": csv.stat().st_size, "csv": str(csv),
                 "home": str(work / "run") if args.keep_homes else None,
                 "measurements": [m.as_dict() for m in ms]}
        pandas_m = next((m for m in ms if m.key == "pandas" and m.ok and m.details), None)
        run_m = next((m for m in ms if m.key == "ours_run" and m.ok), None)
        if pandas_m and run_m:
            entry["agreement"] = agreement(work / "run", pandas_m.details[-1])
            print(f"  pandas agrees with ours: RFM counts "
                  f"{entry['agreement']['rfm_counts_equal']}, seasonal totals "
                  f"{entry['agreement']['season_totals_equal']}", flush=True)
        if "dashboard" in parts and n == dash_size and run_m:
            m = dashboard(run, work / "run", work)
            report["dashboard"] = {"size": label(n), "rows": rows, **m.as_dict()}
        report["sizes"].append(entry)
        if not args.keep_homes:
            for home in ("run", "stages"):
                shutil.rmtree(work / home, ignore_errors=True)
    if "clv" in parts:
        work = work_root / "clv"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        run = Runner(args.repeats, work / "logs")
        for c in args.clv_customers.split(","):
            report["clv"].append({"customers": parse_size(c),
                                  **clv(run, parse_size(c), work).as_dict()})
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["load_average_end"] = os.getloadavg()
    report["targets"] = targets(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (args.out / "results.md").write_text(markdown(report), encoding="utf-8")
    print(f"results: {args.out / 'results.md'}")
    every = [m for s in report["sizes"] for m in s["measurements"]] + report["clv"] \
        + ([report["dashboard"]] if report["dashboard"] else [])
    # the pandas script may run out of memory at 100M rows: reported, not a failure of ours
    return 1 if any(m["returncode"] for m in every if m["key"] != "pandas") else 0


# -- reading the report ------------------------------------------------------------------------


def _get(size: dict, key: str) -> dict | None:
    """The successful measurement ``key`` of one size, or None."""
    return next((m for m in size["measurements"] if m["key"] == key and m["returncode"] == 0),
                None)


def _detail_median(m: dict, *path: str) -> float | None:
    """Median over the runs of one number the command reported (``details[i][p0][p1]...``)."""
    values = []
    for d in m["details"]:
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        if isinstance(d, int | float):
            values.append(float(d))
    return statistics.median(values) if values else None


def analytics(size: dict) -> dict | None:
    """The same work on both sides: ours = ``bench/ours_analytics.py`` (RFM, seasonal
    aggregates and the BG/NBD fit through the package's functions over the published marts:
    its process's wall time and peak RSS); pandas = the script's wall time less its own read
    and clean time, and its peak RSS (the frame it works on is in memory throughout). Both
    times include starting the interpreter and importing the libraries. Also, for scale,
    ``stages_seconds``: our whole ``predict`` + ``analyze`` stages, which do much more."""
    ours_m, pd_m = _get(size, "ours_analytics"), _get(size, "pandas")
    if not (ours_m and pd_m):
        return None
    read = _detail_median(pd_m, "seconds", "read")
    clean = _detail_median(pd_m, "seconds", "clean")
    if read is None or clean is None:
        return None
    pred, ana = _get(size, "ours_predict"), _get(size, "ours_analyze")
    return {"ours_seconds": ours_m["median_seconds"],
            "ours_peak_rss_mb": ours_m["median_peak_rss_mb"],
            "pandas_seconds": pd_m["median_seconds"] - read - clean,
            "pandas_peak_rss_mb": pd_m["median_peak_rss_mb"],
            "stages_seconds": (pred["median_seconds"] + ana["median_seconds"]
                               if pred and ana else None)}


def per_row_us(size: dict, key: str) -> float | None:
    m = _get(size, key)
    return m["median_seconds"] / size["rows"] * 1e6 if m else None


def _target(name: str, measured: str | None, ok: bool | None) -> dict:
    status = "not measured" if ok is None else ("met" if ok else "not met")
    return {"target": name, "measured": measured or "—", "status": status}


def targets(report: dict) -> list[dict]:
    """The targets of issue 9, item 2, each met / not met / not measured, computed from the
    measurements of this report (the size-independent ones at its largest size)."""
    by_label = {s["label"]: s for s in report["sizes"]}
    largest = report["sizes"][-1] if report["sizes"] else None
    out = []

    s10 = by_label.get("10M")
    m = _get(s10, "ours_run") if s10 else None
    out.append(_target("10M rows end to end ≤ 60 s with peak RSS ≤ 3 GB",
                       m and f"{m['median_seconds']:.1f} s, {m['median_peak_rss_mb'] / GB:.2f} GB",
                       m and (m["median_seconds"] <= 60
                              and m["median_peak_rss_mb"] <= 3 * GB)))

    s1 = by_label.get("1M")
    a, b = (per_row_us(s10, "ours_run") if s10 else None,
            per_row_us(s1, "ours_run") if s1 else None)
    out.append(_target("time per row at 10M within 20% of that at 1M",
                       a and b and f"{a:.2f} µs vs {b:.2f} µs per row ({a / b:.2f}×)",
                       None if not (a and b) else a / b <= 1.2))

    ing = _get(largest, "ours_ingest") if largest else None
    flo = _get(largest, "floor_parquet") if largest else None
    out.append(_target("ingest ≤ 2× DuckDB's CSV → Parquet copy of the same file",
                       ing and flo and (f"{ing['median_seconds']:.2f} s vs "
                                        f"{flo['median_seconds']:.2f} s at {largest['label']} "
                                        f"({ing['median_seconds'] / flo['median_seconds']:.2f}×)"),
                       None if not (ing and flo)
                       else ing["median_seconds"] <= 2 * flo["median_seconds"]))

    an = analytics(largest) if largest else None
    out.append(_target("our analytics over the marts ≥ 2× faster than the pandas script's",
                       an and (f"RFM + seasonal + BG/NBD: ours {an['ours_seconds']:.2f} s vs "
                               f"pandas {an['pandas_seconds']:.2f} s at "
                               f"{largest['label']} "
                               f"({an['pandas_seconds'] / an['ours_seconds']:.2f}× faster)"),
                       None if not an else an["pandas_seconds"] >= 2 * an["ours_seconds"]))
    out.append(_target("our analytics over the marts ≤ 1/3 of the pandas script's memory",
                       an and (f"{an['ours_peak_rss_mb']:.0f} MB vs "
                               f"{an['pandas_peak_rss_mb']:.0f} MB at {largest['label']} "
                               f"({an['ours_peak_rss_mb'] / an['pandas_peak_rss_mb']:.2f}×)"),
                       None if not an
                       else an["ours_peak_rss_mb"] * 3 <= an["pandas_peak_rss_mb"]))

    s100 = by_label.get("100M")
    run100 = next((m for m in s100["measurements"] if m["key"] == "ours_run"), None) \
        if s100 else None
    out.append(_target("a 100M-row run completes (report its time)",
                       run100 and (f"{run100['median_seconds']:.0f} s, "
                                   f"{run100['median_peak_rss_mb'] / GB:.2f} GB"
                                   if run100["returncode"] == 0
                                   else f"failed (exit {run100['returncode']})"),
                       None if not run100 else run100["returncode"] == 0))

    fit = next((c for c in report["clv"] if c["customers"] == 1_000_000
                and c["returncode"] == 0), None)
    secs = _detail_median(fit, "fit_seconds") if fit else None
    out.append(_target("BG/NBD + Gamma-Gamma fit on 1M customers ≤ 3 s",
                       secs is not None and (f"{secs:.2f} s "
                                             f"({_detail_median(fit, 'fit_cpu_seconds'):.2f} s CPU)"),
                       None if secs is None else secs <= 3))

    d = report["dashboard"]
    ms = _detail_median(d, "browser", "median_ms") if d and d["returncode"] == 0 else None
    out.append(_target("dashboard filter change ≤ 300 ms (median of the changes)",
                       ms is not None and (f"{ms:.0f} ms (slowest "
                                           f"{_detail_median(d, 'browser', 'max_ms'):.0f} ms) "
                                           f"on {d['size']} rows"),
                       None if ms is None else ms <= 300))
    return out


def _cell(m: dict | None) -> str:
    if m is None:
        return "—"
    if m["returncode"]:
        return f"failed (exit {m['returncode']})"
    return f"{m['median_seconds']:.2f} s / {m['median_peak_rss_mb']:.0f} MB"


def _fmt(value: float | None, unit: str = "×", digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def markdown(report: dict) -> str:
    sizes = report["sizes"]
    mc = report["machine"]
    lines = [f"# Benchmarks, {report['started']}", "",
             f"{mc['cpus']} cores, {mc['memory_gb']} GB, Python {mc['python']}, DuckDB "
             f"{mc['duckdb']}, purchase-patterns {mc['purchase_patterns']} "
             f"(commit {mc['commit']}). Load average at start "
             f"{report['load_average_start'][0]:.1f}, at end {report['load_average_end'][0]:.1f}. "
             f"Each figure is the median of {report['repeats']} run(s), each in its own "
             "process: wall seconds / peak RSS (MB).", ""]
    if sizes:
        head = " | ".join(f"{s['label']} ({s['rows']:,} rows)" for s in sizes)
        sep = "|---" * (1 + len(sizes)) + "|"
        lines += [f"| measurement | {head} |", sep]
        keys = [k for k in NAMES if any(m["key"] == k for s in sizes for m in s["measurements"])]
        for k in keys:
            cells = [_cell(next((m for m in s["measurements"] if m["key"] == k), None))
                     for s in sizes]
            lines.append(f"| {NAMES[k]} | " + " | ".join(cells) + " |")
        lines += ["", f"| ratio | {' | '.join(s['label'] for s in sizes)} |", sep]

        def ratio(num: str, den: str, field: str = "median_seconds") -> str:
            cells = []
            for s in sizes:
                a, b = _get(s, num), _get(s, den)
                cells.append(_fmt(a[field] / b[field] if a and b and b[field] else None))
            return " | ".join(cells)

        def an_ratio(fn: Callable[[dict], float]) -> str:
            return " | ".join(_fmt(fn(a) if (a := analytics(s)) else None) for s in sizes)

        lines += [
            f"| ours run / floor CSV → Parquet, time | {ratio('ours_run', 'floor_parquet')} |",
            f"| ours ingest / floor CSV → Parquet, time | "
            f"{ratio('ours_ingest', 'floor_parquet')} |",
            f"| pandas / ours run, time | {ratio('pandas', 'ours_run')} |",
            f"| pandas / ours run, peak memory | "
            f"{ratio('pandas', 'ours_run', 'median_peak_rss_mb')} |",
            "| pandas / ours analytics over the marts, time | "
            + an_ratio(lambda a: a["pandas_seconds"] / a["ours_seconds"]) + " |",
            "| ours / pandas analytics over the marts, peak memory | "
            + an_ratio(lambda a: a["ours_peak_rss_mb"] / a["pandas_peak_rss_mb"]) + " |",
        ]
        lines += ["", f"| time per row (µs) | {' | '.join(s['label'] for s in sizes)} |", sep]
        for k in ("ours_run", "ours_ingest", "floor_parquet", "pandas"):
            lines.append(f"| {NAMES[k]} | "
                         + " | ".join(_fmt(per_row_us(s, k), "", 2) for s in sizes) + " |")
        agree = [(s["label"], s["agreement"]) for s in sizes if "agreement" in s]
        if agree:
            lines += ["", "The pandas script's RFM score counts and seasonal totals equal ours: "
                      + ", ".join(f"{lab}: RFM {'yes' if a['rfm_counts_equal'] else 'NO'}, "
                                  f"seasons {'yes' if a['season_totals_equal'] else 'NO'}"
                                  for lab, a in agree) + "."]
        lines += ["", "Analytics over the marts, the same work on both sides (RFM scores, "
                  "seasonal aggregates, BG/NBD fit): ours = `bench/ours_analytics.py`, the "
                  "package's own functions over the published marts (its process: wall, peak "
                  "RSS); pandas = the script's wall time less its own read and clean time "
                  "(peak RSS of the script). Our whole `predict` + `analyze` stages do much "
                  "more (churn and propensity models, Gamma-Gamma and CLV, clusters, "
                  "recommendations, writing tables): "
                  + ", ".join(f"{s['label']} {a['stages_seconds']:.1f} s"
                              for s in sizes if (a := analytics(s)) and a["stages_seconds"])
                  + ". The floor is DuckDB with its defaults (Snappy Parquet; our lake "
                  "writes Zstd)."]
    if report["clv"]:
        lines += ["", "| CLV fit alone | process wall / peak RSS | BG/NBD + Gamma-Gamma fit "
                  "| fit CPU |", "|---|---|---|---|"]
        for c in report["clv"]:
            fit = _detail_median(c, "fit_seconds")
            cpu = _detail_median(c, "fit_cpu_seconds")
            lines.append(f"| {c['customers']:,} customers | {_cell(c)} | "
                         f"{_fmt(fit, ' s')} | {_fmt(cpu, ' s')} |")
    d = report["dashboard"]
    if d:
        lines += ["", f"Dashboard on the {d['size']}-row warehouse ({d['rows']:,} rows), "
                  f"filter change → re-rendered chart in headless Chromium: "]
        if d["returncode"] == 0 and d["details"]:
            b = d["details"][-1]["browser"]
            lines[-1] += (f"median {_detail_median(d, 'browser', 'median_ms'):.0f} ms, slowest "
                          f"{_detail_median(d, 'browser', 'max_ms'):.0f} ms ("
                          + ", ".join(f"{c['change']} {c['ms']:.0f} ms" for c in b["changes"])
                          + f"); first load {b['first_load_seconds']:.1f} s; server peak RSS "
                          f"{b['server_peak_rss_mb']:.0f} MB.")
        else:
            lines[-1] += f"failed (exit {d['returncode']}, see {d['log']})."
    lines += ["", "| target (issue 9) | measured | status |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | **{t['status']}** |"
              for t in report["targets"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    t = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t:.0f} s)")
    raise SystemExit(code)
