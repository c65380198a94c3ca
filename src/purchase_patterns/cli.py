"""Command line: ``purchase-patterns [--home DIR] [--json] [--debug] COMMAND``.

Exit codes: 0 success; 1 a data-quality check of error severity failed; 2 unusable input or
bad usage. Errors are one line; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import EXIT_BAD_INPUT, PurchasePatternsError
from .settings import Settings, load_settings

app = typer.Typer(
    name="purchase-patterns",
    help="Customer purchase analytics: lake → validated warehouse → models → insights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


@dataclass
class Ctx:
    settings: Settings
    json: bool
    debug: bool


def _ctx(ctx: typer.Context) -> Ctx:
    return ctx.obj


def _version(value: bool) -> None:
    if value:
        out.print(f"purchase-patterns {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Folder for lake/, warehouse.duckdb and reports/ "
        "[default: ./data or $PURCHASE_PATTERNS_HOME]", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML settings file [default: ./purchase-patterns.yaml if present]")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", help="Warehouse target: duckdb (default) or bigquery")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit")] = False,
) -> None:
    """Customer purchase analytics: lake → validated warehouse → models → insights."""
    with _errors(debug):
        settings = load_settings(home=home, config=config, target=target)
    ctx.obj = Ctx(settings, json_out, debug)


@contextmanager
def _errors(debug: bool):
    try:
        yield
    except PurchasePatternsError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if debug:
            traceback.print_exc()
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err.print(f"[bold red]error:[/] {type(exc).__name__}: {first} "
                      "(run with --debug for the traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT if isinstance(exc, OSError) else 1) from None


@contextmanager
def _progress(enabled: bool):
    """A rich progress bar on stderr; yields ``update(message, fraction|None)``."""
    if not enabled:
        yield lambda _m, _f=None: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(message: str, fraction: float | None = None) -> None:
            bar.update(task, description=message, completed=fraction if fraction is not None
                       else bar.tasks[0].completed)

        yield update


def _debug_tracebacks(c: Ctx, summary) -> None:
    """With --debug, the tracebacks of per-file errors (reported, not raised, so that the
    other files go on)."""
    if c.debug:
        for tb in summary.tracebacks:
            sys.stderr.write(tb)


def _emit(c: Ctx, payload: dict[str, Any], render) -> None:
    if c.json:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        render()


# -- commands -----------------------------------------------------------------------------------


@app.command()
def generate(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="Output file: .csv, .csv.gz or .parquet")],
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed → same file)")] = 42,
    start: Annotated[str, typer.Option("--start", help="First date (YYYY-MM-DD)")] = "2023-01-01",
    end: Annotated[str, typer.Option("--end", help="Last date (YYYY-MM-DD)")] = "2025-12-31",
) -> None:
    """Generate a synthetic purchases file (Kaggle columns + purchase dates) with known truth."""
    c = _ctx(ctx)
    with _errors(c.debug):
        from .errors import UsageError
        from .generate import generate as gen

        try:
            d0, d1 = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise UsageError(f"--start/--end must be dates like 2024-01-31 ({exc})") from None
        if d1 <= d0:
            raise UsageError("--end must be after --start")
        with _progress(not c.json) as update:
            res = gen(out_file, customers, seed=seed, start=d0, end=d1,
                      progress=lambda done, total: update(
                          f"generating {done:,}/{total:,} customers", done / max(total, 1)))
        payload = {"path": str(res.path), "rows": res.rows, "customers": res.customers,
                   "truth": str(res.truth_path), "seconds": round(res.seconds, 2)}
        _emit(c, payload, lambda: out.print(
            f"wrote [bold]{res.rows:,}[/] purchases of {res.customers:,} customers to "
            f"{res.path} (truth: {res.truth_path}) in {res.seconds:.1f}s"))


InputOpt = Annotated[list[Path] | None, typer.Option(
    "--input", "-i", help="Input file or folder (repeatable)")]
FormatOpt = Annotated[str, typer.Option(
    "--format", help="Source format: auto, kaggle, cdnow or mapped")]
MappingOpt = Annotated[Path | None, typer.Option(
    "--mapping", help="YAML column mapping for any other purchases CSV")]


@app.command()
def ingest(ctx: typer.Context, inputs: InputOpt = None, fmt: FormatOpt = "auto",
           mapping: MappingOpt = None) -> None:
    """Land files in the lake, validate every row, load the warehouse (idempotent)."""
    from .errors import UsageError
    from .pipeline import finish, ingest_stage, new_summary

    c = _ctx(ctx)
    with _errors(c.debug):
        if not inputs:
            raise UsageError("ingest needs at least one --input FILE")
        summary = new_summary(c.settings, "ingest")
        with _progress(not c.json) as update:
            ingest_stage(c.settings, summary, inputs, fmt=fmt, mapping=mapping, progress=update)
        finish(c.settings, summary)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


CalibrationEndOpt = Annotated[str | None, typer.Option(
    "--calibration-end", help="Last day of the calibration period (YYYY-MM-DD); the holdout "
    "runs from the next day to the last purchase [default: models.calibration_fraction of "
    "the span]", show_default=False)]
HorizonOpt = Annotated[int | None, typer.Option(
    "--horizon-months", min=1, max=120, help="CLV horizon in months [default: 12]",
    show_default=False)]
DiscountOpt = Annotated[float | None, typer.Option(
    "--discount-rate", min=0.0, max=1.0, help="Annual discount rate of future revenue, "
    "e.g. 0.1 for 10% [default: 0.10]", show_default=False)]


def _with_models(settings: Settings, calibration_end: str | None, horizon: int | None,
                 discount: float | None) -> Settings:
    """Settings with the model options given on the command line (they win over the
    environment and the settings file), validated like every other setting."""
    from pydantic import ValidationError

    from .errors import UsageError
    from .settings import ModelSettings

    given = {k: v for k, v in {"calibration_end": calibration_end, "horizon_months": horizon,
                               "discount_rate_annual": discount}.items() if v is not None}
    if not given:
        return settings
    try:
        models = ModelSettings.model_validate({**settings.models.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    return settings.model_copy(update={"models": models})


@app.command()
def run(ctx: typer.Context, inputs: InputOpt = None, fmt: FormatOpt = "auto",
        mapping: MappingOpt = None, calibration_end: CalibrationEndOpt = None,
        horizon_months: HorizonOpt = None, discount_rate: DiscountOpt = None) -> None:
    """Run the whole job. Without --input it runs on a generated demo dataset."""
    from .pipeline import run_pipeline

    c = _ctx(ctx)
    with _errors(c.debug):
        settings = _with_models(c.settings, calibration_end, horizon_months, discount_rate)
        with _progress(not c.json) as update:
            summary = run_pipeline(settings, inputs, fmt=fmt, mapping=mapping, progress=update)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


@app.command()
def transform(ctx: typer.Context) -> None:
    """Build the dbt models and run every data-quality check on the loaded data."""
    from .pipeline import run_stages

    c = _ctx(ctx)
    with _errors(c.debug):
        with _progress(not c.json) as update:
            summary = run_stages(c.settings, ["transform"], command="transform",
                                 progress=update)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


@app.command()
def predict(ctx: typer.Context, calibration_end: CalibrationEndOpt = None,
            horizon_months: HorizonOpt = None, discount_rate: DiscountOpt = None) -> None:
    """Fit the CLV, churn and propensity models on the loaded data; write predictions and
    model cards (analytics schema and reports/<run id>/)."""
    from .pipeline import run_stages

    c = _ctx(ctx)
    with _errors(c.debug):
        settings = _with_models(c.settings, calibration_end, horizon_months, discount_rate)
        with _progress(not c.json) as update:
            summary = run_stages(settings, ["predict"], command="predict", progress=update)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


@app.command()
def analyze(ctx: typer.Context) -> None:
    """EDA, segments, clusters, trends, affinity and ranked recommendations from the marts,
    into the warehouse's analytics tables (only the analyses the data supports)."""
    from .pipeline import run_stages

    c = _ctx(ctx)
    with _errors(c.debug):
        with _progress(not c.json) as update:
            summary = run_stages(c.settings, ["analyze"], command="analyze", progress=update)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


FilterOpt = Annotated[list[str] | None, typer.Option(
    "--filter", "-f", metavar="KEY=VALUE",
    help="Restrict the report (repeatable; one key given twice means either value). Keys: "
    "season, category, state, census_region, gender, age_band, segment, subscription, "
    "date_from, date_to (dated data)")]


@app.command()
def report(ctx: typer.Context, filters: FilterOpt = None) -> None:
    """Build the stakeholder report (self-contained HTML and PDF) into reports/<run id>/."""
    from .pipeline import run_report

    c = _ctx(ctx)
    with _errors(c.debug):
        with _progress(not c.json) as update:
            summary = run_report(c.settings, filters, progress=update)
        _emit(c, summary.as_dict(), lambda: _render_summary(summary))
        _debug_tracebacks(c, summary)
    raise typer.Exit(summary.exit_code)


@app.command()
def docs(ctx: typer.Context) -> None:
    """Build the dbt documentation site (models, columns, tests, lineage) into reports/."""
    from .pipeline import data_is_dated, warehouse_exists
    from .transform import docs as build_docs

    c = _ctx(ctx)
    with _errors(c.debug):
        if not warehouse_exists(c.settings):
            from .errors import UsageError

            raise UsageError(f"{c.settings.warehouse_uri}: no warehouse yet; run "
                             "'purchase-patterns run' first")
        with _progress(not c.json) as update:
            update("building dbt docs", None)
            page = build_docs(c.settings, c.settings.reports_dir,
                              dated=data_is_dated(c.settings))
        _emit(c, {"docs": str(page)}, lambda: out.print(f"dbt docs: {page}", highlight=False))


@app.command()
def status(ctx: typer.Context,
           limit: Annotated[int, typer.Option("--limit", help="Runs to show")] = 10) -> None:
    """Show loaded batches and recent runs from the warehouse's run log."""
    from .datastore import store
    from .pipeline import warehouse_exists

    c = _ctx(ctx)
    with _errors(c.debug):
        if not warehouse_exists(c.settings):
            from .errors import UsageError

            raise UsageError(f"{c.settings.warehouse_uri}: no warehouse yet; run "
                             "'purchase-patterns run' or 'ingest' first")
        with store(c.settings, read_only=True) as s:
            runs_rel, log_rel = s.relation("meta", "runs"), s.relation("meta", "run_log")
            batches = _rows(s, "select batch_id, source_file, source_format, rows_in, "  # noqa: S608
                               "rows_loaded, rows_rejected, loaded_at from "
                               f"{s.relation('raw', 'batches')} order by loaded_at")
            runs = _rows(s, "select run_id, command, status, exit_code, started_at, "  # noqa: S608
                            f"finished_at from {runs_rel} order by started_at desc "
                            "limit @limit", {"limit": limit})
            recent = {r["run_id"] for r in runs}
            log = [r for r in _rows(s, "select run_id, stage, status, seconds, rows, "  # noqa: S608
                                       f"detail from {log_rel} order by started_at")
                   if r["run_id"] in recent]
        payload = {"warehouse": c.settings.warehouse_uri, "batches": batches,
                   "runs": runs, "stages": log}

        def render() -> None:
            t = Table(title="Batches")
            for col in ("batch", "file", "format", "rows in", "loaded", "rejected", "loaded at"):
                t.add_column(col)
            for b in batches:
                t.add_row(b["batch_id"][:12], Path(b["source_file"]).name, b["source_format"],
                          f"{b['rows_in']:,}", f"{b['rows_loaded']:,}", f"{b['rows_rejected']:,}",
                          str(b["loaded_at"])[:19])
            out.print(t)
            r = Table(title="Recent runs")
            for col in ("run", "command", "status", "exit", "started", "stages"):
                r.add_column(col)
            for run_ in runs:
                stages = ", ".join(f"{s['stage']}:{s['status']}" for s in log
                                   if s["run_id"] == run_["run_id"])
                shown = run_["status"]
                r.add_row(run_["run_id"], run_["command"], shown, str(run_["exit_code"]),
                          str(run_["started_at"])[:19], stages)
            out.print(r)

        _emit(c, payload, render)


@app.command()
def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(
        "--port", min=0, max=65535,
        help="Port to serve on; 0 picks a free one [default: 8501 or the setting]",
        show_default=False)] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="Address to bind [default: 127.0.0.1]; any other address "
        "needs PURCHASE_PATTERNS_DASHBOARD__PASSWORD", show_default=False)] = None,
) -> None:
    """Serve the interactive dashboard on the published warehouse and print its URL."""
    from .dashboard import serve

    c = _ctx(ctx)
    with _errors(c.debug):
        code = serve(c.settings, port=port, address=address,
                     announce=lambda url: out.print(f"dashboard: [bold]{url}[/] "
                                                    "(Ctrl+C to stop)", highlight=False))
    raise typer.Exit(code)


def _rows(store, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Query results as plain Python values (NULL → None), for the table and --json."""
    from .datastore import records

    return records(store.query(sql, params))


def _render_summary(summary) -> None:
    t = Table(title=f"Run {summary.run_id}")
    for col in ("file", "format", "rows in", "loaded", "rejected"):
        t.add_column(col, overflow="fold")
    for i in summary.inputs:
        t.add_row(Path(i["file"]).name, i["format"] or "-", f"{i['rows_in']:,}",
                  f"{i['rows_loaded']:,}", f"{i['rows_rejected']:,}")
    if summary.inputs:
        out.print(t)
    else:
        out.print(f"Run {summary.run_id} ({summary.command})", highlight=False)
    for i in summary.inputs:
        name = Path(i["file"]).name
        if i["duplicate_skipped"]:
            out.print(f"  {name}: already loaded (batch {i['batch_id'][:12]}): skipped",
                      highlight=False)
        for note in i.get("notes") or []:
            out.print(f"  {name}: {note}", highlight=False)
        for r in i.get("top_rejects") or []:
            out.print(f"  [yellow]rejected[/] {r['rows']:,} row(s) of {name}: "
                      f"{r['column']}: {r['reason']}", highlight=False)
    for s in summary.stages:
        mark = {"ran": "[green]ran[/]", "skipped": "[yellow]skipped[/]",
                "failed": "[red]failed[/]"}.get(s.status, s.status)
        reason = f" — {s.reason}" if s.reason else ""
        out.print(f"  {s.name}: {mark} ({s.seconds:.1f}s){reason}", highlight=False)
        models = s.detail.get("models")  # the predict stage: status of each model
        for model, info in (models.items() if isinstance(models, dict) else ()):
            why = f" — {info['reason']}" if info.get("reason") else ""
            out.print(f"    {model}: {info['status']}{why}", highlight=False)
        for a in s.detail.get("analyses") or []:
            note = "[green]ran[/]" if a["status"] == "ran" else "[yellow]skipped[/]"
            out.print(f"      {a['analysis']}: {note} — {a['reason']}", highlight=False,
                      soft_wrap=True)
        for key in ("html", "pdf"):
            if s.detail.get(key):
                out.print(f"      {key}: {s.detail[key]}", highlight=False, soft_wrap=True)
    out.print(f"warehouse: {summary.warehouse}", highlight=False, soft_wrap=True)
    out.print(f"lake:      {summary.lake}", highlight=False, soft_wrap=True)
    out.print(f"reports:   {summary.reports}", highlight=False, soft_wrap=True)
    for e in summary.errors:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
