"""The transform stage: the dbt project in ``transform/`` run in-process, and the run's
data-quality results and report.

- :func:`run_transform` builds seeds, models and tests (``dbt build``) with dbt's Python
  runner against the configured warehouse (profile target ``duckdb`` or ``bigquery``, from
  ``settings.target``) and summarises what happened as a :class:`TransformResult`. Models that need purchase dates are disabled (dbt var ``dated``)
  when the data has none, and reported as skipped with the reason.
- :func:`write_quality_results` appends the ingest checks (per batch) and every dbt test to
  ``quality.dq_results``, with up to five failing rows from the test's ``store_failures`` table.
- :func:`write_quality_report` writes ``data_quality.html`` and ``data_quality.json`` for a run.
- :func:`docs` writes dbt's documentation site (one static page) to ``<out_dir>/dbt_docs``.

dbt writes its target and log folders under ``<home>/.dbt`` so that the repository stays clean.
The environment variables the profile reads are set only for the duration of a dbt call.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .datastore import DataStore, as_store, records
from .settings import Settings
from .warehouse import TABLES, now

#: The dbt project (``transform/`` at the top of the repository); override with the
#: ``dbt_project_dir`` setting.
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "transform"
DBT_PACKAGE = "purchase_patterns"
DATED_REASON = "needs purchase dates; this data has none"
UPSTREAM_REASON = "not built: an upstream model or error-severity test failed"
SAMPLE_ROWS = 5
#: Reject rate above which the ingest check is an error rather than a warning.
REJECT_RATE_ERROR = 0.5

#: dbt keeps global state (flags, adapters, logging): one invocation at a time per process.
_DBT_LOCK = threading.Lock()

@dataclass
class TransformResult:
    """What a dbt build did. ``tests`` holds one dict per data test and unit test:
    ``name, kind ('data' | 'unit'), model, severity ('error' | 'warn'), status ('pass' |
    'warn' | 'fail' | 'error' | 'skipped'), failures, message, relation`` (the
    ``store_failures`` table, ``schema.table``, when there is one), ``failures_layer`` and
    ``failures_table`` (the same table for ``DataStore.relation``) and ``seconds``."""

    success: bool
    models_built: list[str] = field(default_factory=list)
    #: (model, reason) for models that were not built
    models_skipped: list[tuple[str, str]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: one-line summary of what went wrong ("" on success)
    message: str = ""
    #: (model, summarised error) for models whose SQL failed
    models_failed: list[tuple[str, str]] = field(default_factory=list)
    seeds_loaded: list[str] = field(default_factory=list)
    run_id: str = ""
    dated: bool = True
    log_path: str = ""

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        """Error-severity tests that failed or could not run."""
        return [t for t in self.tests
                if t["status"] in ("fail", "error") and t["severity"] == "error"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [t for t in self.tests if t["status"] == "warn"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- locations and environment -----------------------------------------------------------------


def project_dir(settings: Settings) -> Path:
    """The dbt project folder (it holds ``dbt_project.yml`` and ``profiles.yml``)."""
    override = settings.dbt_project_dir
    return override.expanduser().resolve() if override else DEFAULT_PROJECT_DIR


def dbt_dir(settings: Settings) -> Path:
    """Where dbt writes its target and log folders: ``<home>/.dbt``."""
    return (settings.home / ".dbt").resolve()


def profile_env(settings: Settings) -> dict[str, str]:
    """The environment ``transform/profiles.yml`` reads, for the configured target. Secrets
    go in ``DBT_ENV_SECRET_*`` variables, which dbt scrubs from its logs."""
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PURCHASE_PATTERNS_DBT_TARGET": settings.target,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
    }
    if settings.target == "bigquery":
        from .gcp import require

        gcp = require(settings)
        method = ("oauth-secrets" if gcp.anonymous
                  else "service-account" if gcp.credentials_file else "oauth")
        env |= {
            "PURCHASE_PATTERNS_DBT_BQ_METHOD": method,
            "PURCHASE_PATTERNS_DBT_BQ_PROJECT": gcp.project or "",
            "PURCHASE_PATTERNS_DBT_BQ_DATASET": gcp.dataset,
            "PURCHASE_PATTERNS_DBT_BQ_LOCATION": gcp.location,
            "PURCHASE_PATTERNS_DBT_BQ_TIMEOUT": str(int(gcp.timeout_seconds)),
            "PURCHASE_PATTERNS_DBT_BQ_MAX_BYTES_BILLED": str(gcp.maximum_bytes_billed or ""),
            # the emulator takes any token; nothing is sent to Google
            "DBT_ENV_SECRET_BIGQUERY_TOKEN": "anonymous" if gcp.anonymous else "",
            "DBT_ENV_SECRET_BIGQUERY_KEYFILE": (gcp.credentials_file.get_secret_value()
                                                if gcp.credentials_file else ""),
        }
        if gcp.bigquery_endpoint:
            env["PURCHASE_PATTERNS_DBT_BQ_API_ENDPOINT"] = gcp.bigquery_endpoint
        return env
    return env | {
        "PURCHASE_PATTERNS_WAREHOUSE": str(settings.warehouse_path.resolve()),
        # the same DuckDB configuration as warehouse.connect()
        "PURCHASE_PATTERNS_DBT_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "PURCHASE_PATTERNS_DBT_DUCKDB_THREADS": str(settings.duckdb_threads),
        "PURCHASE_PATTERNS_DBT_TEMP_DIR": str(settings.tmp_dir.resolve()),
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _common_args(settings: Settings, project: Path, dated: bool) -> list[str]:
    base = dbt_dir(settings)
    return [
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", settings.target,
        "--target-path", str(base / "target"),
        "--log-path", str(base / "logs"),
        "--vars", json.dumps(dbt_vars(settings, dated)),
        "--log-level", "none",
        "--log-level-file", "info",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]


def dbt_vars(settings: Settings, dated: bool) -> dict[str, Any]:
    """dbt vars: ``dated`` (see ``run_transform``) and, for anonymous BigQuery connections
    (only the emulator takes those), ``bigquery_emulator`` (see ``macros/contracts.sql``)."""
    out: dict[str, Any] = {"dated": bool(dated)}
    if settings.target == "bigquery" and settings.gcp.anonymous:
        out["bigquery_emulator"] = True
    return out


#: Without ``settings.dbt_threads``: dbt runs this many nodes at once on a DuckDB warehouse
#: of at most ``PARALLEL_MAX_LINES`` purchase lines, and one at a time above. On the 10k-line
#: demo a build takes 14 s instead of 20 s (its ~150 tests are mostly dbt's own per-node
#: work); on large data each model already uses every DuckDB thread, and models side by side
#: would share one memory limit.
PARALLEL_THREADS = 4
PARALLEL_MAX_LINES = 1_000_000


def dbt_threads(settings: Settings, lines: int | None) -> int:
    """dbt's ``threads`` for a build over ``lines`` purchase lines (None: unknown)."""
    if settings.dbt_threads is not None:
        return settings.dbt_threads
    return PARALLEL_THREADS if lines is not None and lines <= PARALLEL_MAX_LINES else 1


def _invoke(settings: Settings, args: list[str], run_id: str | None = None,
            threads: int = 1) -> Any:
    """Run one dbt command in-process and return dbt's result object."""
    from dbt.cli.main import dbtRunner

    env = profile_env(settings) | {"PURCHASE_PATTERNS_DBT_THREADS": str(threads)}
    if run_id:
        # recorded in the metadata of dbt's artifacts (run_results.json, manifest.json); a var
        # would do too, but would make dbt re-parse the whole project on every run
        env["DBT_ENV_CUSTOM_ENV_PURCHASE_PATTERNS_RUN_ID"] = run_id
    with _DBT_LOCK, _environment(env):
        return dbtRunner().invoke(args)


# -- summarising dbt's messages ----------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def summarise(text: object, limit: int = 300) -> str:
    """One short line from dbt's (often multi-line, indented) message or exception."""
    raw = _ANSI.sub("", str(text or ""))
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("compiled code at", "See ", "---"))]
    out = " ".join(lines)
    out = re.sub(r"\s+", " ", out)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _status(raw: object) -> str:
    value = str(getattr(raw, "value", raw)).lower()
    return {"success": "pass", "skipped": "skipped", "runtimeerror": "error"}.get(value, value)


# -- running dbt -------------------------------------------------------------------------------


def run_transform(settings: Settings, run_id: str, *, dated: bool,
                  select: str | None = None, lines: int | None = None) -> TransformResult:
    """Load the seeds and build models, data tests and unit tests in DAG order with one
    ``dbt build`` (which includes ``dbt seed``; a model whose tests fail stops what depends on
    it).

    ``dated`` is False when the data has no purchase dates: the models that need dates are
    disabled and reported in ``models_skipped``. ``lines``, the purchase lines in the
    warehouse when known, sets how many nodes run at once (:func:`dbt_threads`). ``select`` is a dbt selection (``--select``)
    to build only part of the project (the seeds are always included). Never raises for dbt
    problems: they are summarised in ``message`` with ``success`` False.
    """
    t0 = time.perf_counter()
    result = TransformResult(success=False, run_id=run_id, dated=dated,
                             log_path=str(dbt_dir(settings) / "logs" / "dbt.log"))
    project = project_dir(settings)
    if not (project / "dbt_project.yml").exists():
        result.message = f"dbt project not found at {project}"
        result.seconds = time.perf_counter() - t0
        return result
    args = ["build", *_common_args(settings, project, dated)]
    if select:
        # the seeds are tiny and the models read them: always (re)load them with a selection
        args += ["--select", f"{select} resource_type:seed"]
    try:
        res = _invoke(settings, args, run_id, threads=dbt_threads(settings, lines))
    except Exception as exc:  # dbt's runner catches most errors itself; be safe anyway
        result.message = f"dbt could not run: {summarise(exc)}"
        result.seconds = time.perf_counter() - t0
        return result
    collect_results(result, res)
    if res.exception is None:  # else the manifest on disk may be stale
        result.models_skipped[:0] = _disabled_models(settings, dated)
    result.success = bool(res.success) and res.exception is None
    if not result.success and not result.message:
        result.message = failure_message(result)
    result.seconds = time.perf_counter() - t0
    return result


def collect_results(result: TransformResult, res: Any) -> None:
    """Add what a dbt invocation (``dbtRunner`` result, or its artifacts) did to ``result``."""
    if res.exception is not None:
        result.message = f"dbt failed: {summarise(res.exception)}"
    for r in getattr(res.result, "results", None) or []:
        node = r.node
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        status = _status(r.status)
        if kind == "model":
            if status == "pass":
                result.models_built.append(node.name)
            elif status == "skipped":
                result.models_skipped.append((node.name, UPSTREAM_REASON))
            else:
                result.models_failed.append((node.name, summarise(r.message)))
        elif kind == "seed":
            if status == "pass":
                result.seeds_loaded.append(node.name)
        elif kind in ("test", "unit_test"):
            result.tests.append(_test_record(r, node, kind, status))


def _test_record(r: Any, node: Any, kind: str, status: str) -> dict[str, Any]:
    config = node.config
    severity = str(getattr(config, "severity", "error") or "error").lower()
    attached = getattr(node, "attached_node", None) or getattr(node, "tested_node_unique_id",
                                                                None)
    model = attached.split(".")[-1] if attached else None
    if kind == "unit_test":
        model = getattr(node, "model", None) or model
    relation = layer = None
    if kind == "test" and getattr(config, "store_failures", False):
        relation = f"{node.schema}.{node.alias}"
        # the custom schema (``+schema: quality``) is the DataStore layer on every target
        layer = getattr(config, "schema", None) or node.schema
    failures = r.failures
    if status == "pass":
        message = ""
    elif kind == "unit_test" and status == "fail":
        message = "unit test: actual rows differ from the expected rows"
    elif status in ("fail", "warn"):
        message = f"{failures} failing row(s)" if failures is not None else summarise(r.message)
    else:
        message = summarise(r.message)
    return {
        "name": node.name,
        "unique_id": node.unique_id,
        "kind": "unit" if kind == "unit_test" else "data",
        "model": model,
        "severity": "warn" if severity == "warn" else "error",
        "status": status,
        "failures": failures,
        "message": message,
        "relation": relation,
        "failures_layer": layer,
        "failures_table": node.alias if relation else None,
        "seconds": round(float(r.execution_time or 0.0), 3),
    }


def _disabled_models(settings: Settings, dated: bool) -> list[tuple[str, str]]:
    """Models of this project that are disabled (by ``dated: false``), from dbt's manifest."""
    path = dbt_dir(settings) / "target" / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names = sorted({
        n["name"]
        for uid, nodes in (manifest.get("disabled") or {}).items()
        for n in nodes
        if uid.startswith(f"model.{DBT_PACKAGE}.")
    })
    reason = DATED_REASON if not dated else "disabled in the dbt project configuration"
    return [(name, reason) for name in names]


def failure_message(result: TransformResult) -> str:
    """One line saying why a transform failed (failing checks first, then models)."""
    parts = []
    failed = result.failed_checks
    if failed:
        names = ", ".join(t["name"] for t in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        parts.append(f"{len(failed)} error-severity check(s) failed: {names}{more}")
    if result.models_failed:
        name, msg = result.models_failed[0]
        parts.append(f"model {name} failed: {msg}")
    return "; ".join(parts) or "dbt build did not succeed (see the dbt log)"


def docs(settings: Settings, out_dir: Path, *, dated: bool = True) -> Path:
    """Generate dbt's documentation as one self-contained page (``dbt docs generate --static``)
    plus ``manifest.json`` and ``catalog.json`` in ``out_dir/dbt_docs``; returns the page."""
    from .errors import StageError

    project = project_dir(settings)
    if not (project / "dbt_project.yml").exists():
        raise StageError(f"dbt project not found at {project}")
    res = _invoke(settings, ["docs", "generate", "--static",
                             *_common_args(settings, project, dated)])
    if not res.success:
        raise StageError("dbt docs generate failed: "
                         + summarise(res.exception or "see the dbt log"))
    target = dbt_dir(settings) / "target"
    dest = Path(out_dir) / "dbt_docs"
    dest.mkdir(parents=True, exist_ok=True)
    page = dest / "index.html"
    static = target / "static_index.html"
    shutil.copyfile(static if static.exists() else target / "index.html", page)
    for name in ("manifest.json", "catalog.json"):
        if (target / name).exists():
            shutil.copyfile(target / name, dest / name)
    return page


# -- data-quality results ----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _sample(store: DataStore, test: dict[str, Any]) -> str | None:
    """Up to SAMPLE_ROWS rows of a test's store_failures table, as a JSON array (None if
    absent)."""
    layer, table = test.get("failures_layer"), test.get("failures_table")
    if not layer or not table:
        return None
    try:
        frame = store.query(f"select * from {store.relation(layer, table)} "  # noqa: S608
                            f"limit {SAMPLE_ROWS}")
    except Exception:  # noqa: BLE001 - a sample is a courtesy: never fail the report for it
        return None
    return json.dumps(records(frame), default=_json_default)


def _ingest_checks(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    for b in batches:
        label = Path(str(b.get("file") or b.get("batch_id") or "?")).name
        if b.get("error") or not b.get("batch_id"):
            checks.append({
                "check_name": f"ingest {label}: file loaded", "severity": "error",
                "status": "error", "failing_rows": None, "sample": None,
                "message": summarise(b.get("error") or "file was not loaded"),
            })
            continue
        rows_in = int(b.get("rows_in") or 0)
        loaded = int(b.get("rows_loaded") or 0)
        rejected = int(b.get("rows_rejected") or 0)
        counts = {"batch_id": b["batch_id"], "file": label, "rows_in": rows_in,
                  "rows_loaded": loaded, "rows_rejected": rejected}
        balanced = rows_in == loaded + rejected
        checks.append({
            "check_name": f"ingest {label}: rows_in = rows_loaded + rows_rejected",
            "severity": "error", "status": "pass" if balanced else "fail",
            "failing_rows": 0 if balanced else abs(rows_in - loaded - rejected),
            "sample": None if balanced else json.dumps([counts]),
            "message": "" if balanced else
            f"{rows_in} rows in, {loaded} loaded + {rejected} rejected",
        })
        rate = rejected / rows_in if rows_in else 0.0
        if rate == 0:
            severity, status = "warn", "pass"
        elif rate <= REJECT_RATE_ERROR:
            severity, status = "warn", "warn"
        else:
            severity, status = "error", "fail"
        top = b.get("top_rejects") or []
        checks.append({
            "check_name": f"ingest {label}: reject rate", "severity": severity,
            "status": status, "failing_rows": rejected,
            "sample": json.dumps(top[:SAMPLE_ROWS], default=_json_default) if top else None,
            "message": f"{rejected} of {rows_in} rows rejected ({rate:.1%})"
            + ("" if rate <= REJECT_RATE_ERROR else
               f"; more than {REJECT_RATE_ERROR:.0%} is an error"),
        })
    return checks


def write_quality_results(store: DataStore | duckdb.DuckDBPyConnection, run_id: str,
                          ingest_batches: list[dict[str, Any]],
                          transform: TransformResult) -> int:
    """Append this run's checks to ``quality.dq_results``: the ingest checks per batch and
    every dbt test, with sample failing rows. Returns the rows written."""
    store = as_store(store)
    checked_at = now()
    rows: list[list[Any]] = []
    for c in _ingest_checks(ingest_batches):
        rows.append([run_id, checked_at, c["check_name"], "ingest", c["severity"], c["status"],
                     c["failing_rows"], c["sample"], c["message"]])
    for t in transform.tests:
        failing = t["status"] in ("fail", "warn") and (t.get("failures") or 0) > 0
        sample = _sample(store, t) if failing else None
        rows.append([run_id, checked_at, t["name"], "dbt", t["severity"], t["status"],
                     t.get("failures"), sample, t.get("message") or ""])
    for name, msg in transform.models_failed:
        rows.append([run_id, checked_at, f"model {name} builds", "dbt", "error", "error",
                     None, None, msg])
    if not transform.success and not transform.tests and not transform.models_failed:
        rows.append([run_id, checked_at, "dbt build", "dbt", "error", "error", None, None,
                     transform.message or "dbt build did not succeed"])
    if rows:
        frame = pd.DataFrame(rows, columns=[f.name for f in TABLES["quality", "dq_results"]])
        frame["failing_rows"] = frame["failing_rows"].astype("Int64")
        store.append("quality", "dq_results", frame)
    return len(rows)


def blocking_checks(store: DataStore | duckdb.DuckDBPyConnection,
                    run_id: str) -> list[dict[str, Any]]:
    """The run's error-severity checks (ingest and dbt) that failed or could not run."""
    return [c for c in _quality_rows(as_store(store), run_id)
            if c["severity"] == "error" and c["status"] in ("fail", "error")]


def _quality_rows(store: DataStore, run_id: str) -> list[dict[str, Any]]:
    if not store.has_table("quality", "dq_results"):
        return []
    frame = store.query(
        f"""select check_name, source, severity, status, failing_rows, sample, message,
                  checked_at
           from {store.relation("quality", "dq_results")} where run_id = @run_id
           order by case status when 'error' then 0 when 'fail' then 1 when 'warn' then 2
                    when 'skipped' then 3 else 4 end,
                    case severity when 'error' then 0 else 1 end, source desc, check_name""",  # noqa: S608
        {"run_id": run_id},
    )
    out = []
    for rec in records(frame):
        rec["sample"] = json.loads(rec["sample"]) if rec["sample"] else None
        rec["checked_at"] = rec["checked_at"].isoformat() if rec["checked_at"] else None
        out.append(rec)
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933;
background:#f7f9fb}
h1{font-size:1.5rem;margin:0 0 .25rem}.meta{color:#616e7c;margin-bottom:1.25rem}
.cards{display:flex;gap:.75rem;margin-bottom:1.5rem;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:.75rem 1.25rem;box-shadow:0 1px 3px #0002;
min-width:7rem}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 3px #0002;
border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid #e4e7eb;vertical-align:top;
font-size:.9rem}th{background:#eef2f7;font-weight:600}
.badge{display:inline-block;border-radius:999px;padding:.1rem .6rem;font-weight:600;
font-size:.8rem}
.pass{background:#e3f9e5;color:#207227}.warn{background:#fff3c4;color:#8d6708}
.fail,.error{background:#ffe3e3;color:#a61b1b}.skipped{background:#e4e7eb;color:#52606d}
tr.row-fail td,tr.row-error td{background:#fff8f8}tr.row-warn td{background:#fffdf2}
details summary{cursor:pointer;color:#2680c2}
pre{white-space:pre-wrap;font-size:.8rem;background:#f5f7fa;padding:.5rem;border-radius:4px;
max-width:60rem;overflow:auto}
"""


def write_quality_report(store: DataStore | duckdb.DuckDBPyConnection, run_id: str,
                         out_dir: Path) -> tuple[Path, Path]:
    """Write ``data_quality.html`` (self-contained) and ``data_quality.json`` for a run from
    ``quality.dq_results``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checks = _quality_rows(as_store(store), run_id)
    counts: dict[str, int] = {}
    for c in checks:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    blocking = [c for c in checks if c["status"] in ("fail", "error") and c["severity"] == "error"]
    generated = now().isoformat(timespec="seconds")
    payload = {
        "run_id": run_id,
        "generated_at": generated,
        "passed": not blocking,
        "counts": counts,
        "checks": checks,
    }
    json_path = out_dir / "data_quality.json"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default), encoding="utf-8")

    esc = html.escape
    cards = "".join(
        f'<div class="card"><span class="badge {s}">{s}</span><b>{counts.get(s, 0)}</b></div>'
        for s in ("pass", "warn", "fail", "error", "skipped") if counts.get(s) or s == "pass"
    )
    body_rows = []
    for c in checks:
        sample = ""
        if c["sample"]:
            sample = ("<details><summary>sample</summary><pre>"
                      + esc(json.dumps(c["sample"], indent=2, default=_json_default))
                      + "</pre></details>")
        failing = "" if c["failing_rows"] is None else str(c["failing_rows"])
        body_rows.append(
            f'<tr class="row-{esc(c["status"])}">'
            f'<td><span class="badge {esc(c["status"])}">{esc(c["status"])}</span></td>'
            f'<td>{esc(c["severity"])}</td><td>{esc(c["source"])}</td>'
            f'<td>{esc(c["check_name"])}</td><td>{failing}</td>'
            f'<td>{esc(c["message"] or "")}{sample}</td></tr>'
        )
    verdict = ("all error-severity checks passed" if not blocking
               else f"{len(blocking)} error-severity check(s) failed")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data quality — run {esc(run_id)}</title><style>{_CSS}</style></head>
<body><h1>Data quality</h1>
<div class="meta">run <code>{esc(run_id)}</code> · generated {esc(generated)} UTC ·
{len(checks)} checks · {esc(verdict)}</div>
<div class="cards">{cards}</div>
<table><thead><tr><th>status</th><th>severity</th><th>source</th><th>check</th>
<th>failing rows</th><th>message</th></tr></thead>
<tbody>{"".join(body_rows) or '<tr><td colspan="6">no checks recorded for this run</td></tr>'}
</tbody></table></body></html>
"""
    html_path = out_dir / "data_quality.html"
    html_path.write_text(page, encoding="utf-8")
    return html_path, json_path
