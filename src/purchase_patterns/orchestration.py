"""Task bodies for the Airflow DAGs: thin, idempotent wrappers over ``pipeline``.

The DAG files in ``dags/`` only wire these together; everything they do is here, so the CLI
and Airflow run the same code. Every function takes plain values and returns JSON-able
values (XCom), and is safe to retry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import EXIT_OK, PurchasePatternsError
from .settings import Settings, load_settings


def settings_for(home: str | None = None) -> Settings:
    return load_settings(home=home)


def inbox(settings: Settings) -> Path:
    """The folder ``ingest_to_lake`` watches when no path is given."""
    return settings.home / "inbox"


def land(path: str | None = None, home: str | None = None) -> list[dict[str, Any]]:
    """Land a file, or every file of a folder (default: the inbox), in the lake.
    Files already landed are returned as they are (same content, same batch)."""
    from .pipeline import land_inputs

    settings = settings_for(home)
    target = Path(path) if path else inbox(settings)
    if not path:
        target.mkdir(parents=True, exist_ok=True)
        if not any(p.is_file() and not p.name.startswith(".") for p in target.iterdir()):
            return []
    entries = land_inputs(settings, [target])
    return [{k: e.get(k) for k in ("batch_id", "source_file", "format", "raw_uri", "status")}
            for e in entries]


def load(run_id: str, home: str | None = None) -> dict[str, Any]:
    """Load every landed batch that is not in the warehouse yet."""
    from .pipeline import load_pending, new_summary

    settings = settings_for(home)
    summary = new_summary(settings, "airflow", run_id=run_id)
    load_pending(settings, summary)
    if summary.exit_code != EXIT_OK and not any(i.get("rows_loaded") for i in summary.inputs):
        raise PurchasePatternsError("; ".join(summary.errors) or "nothing could be loaded")
    return {"run_id": run_id, "inputs": summary.inputs, "errors": summary.errors,
            "dated": _dated(settings)}


def _dated(settings: Settings) -> bool:
    from .pipeline import data_is_dated

    return data_is_dated(settings)


def finish_and_publish(run_id: str, home: str | None = None) -> dict[str, Any]:
    """Record the run as succeeded and publish the warehouse for readers."""
    from .pipeline import finish, new_summary, publish_stage

    settings = settings_for(home)
    summary = new_summary(settings, "airflow", run_id=run_id)
    finish(settings, summary)
    publish_stage(settings, summary)
    finish(settings, summary)
    return {"run_id": run_id, "stages": [s.name + ":" + s.status for s in summary.stages]}
