"""Airflow DAG ``ingest_to_lake``: land new purchase files in the lake.

Takes a file or folder (param ``path``; empty: the watched inbox ``<home>/inbox``, looked
into every ten minutes), lands each usable file unchanged in the lake (content-addressed, so
landing a file again does nothing) and, when there are batches the warehouse has not loaded
yet, updates the raw purchases asset, which starts ``load_transform_validate``. Files that
cannot be used fail ``check_files`` with one line each; the others are landed anyway.

Wiring only: the task bodies are in ``purchase_patterns.orchestration``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Param, dag, task

from purchase_patterns import orchestration as orch
from purchase_patterns.sources import FORMATS


@dag(
    dag_id="ingest_to_lake",
    description="Land new purchase files (a path, or the inbox) in the lake",
    schedule=orch.INBOX_SCHEDULE,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["purchase-patterns", "lake", "ingest"],
    default_args=orch.default_args(),
    params={
        "path": Param("", type="string",
                      description="File or folder to land; empty: the inbox under the home"),
        "format": Param("auto", enum=list(FORMATS), description="Source format"),
        "mapping": Param("", type="string",
                         description="YAML column mapping file (format 'mapped')"),
    },
    doc_md=__doc__,
)
def ingest_to_lake() -> None:
    @task
    def land(path: str, fmt: str, mapping: str) -> dict[str, Any]:
        return orch.land(path or None, fmt=fmt, mapping=mapping or None)

    @task(outlets=[orch.raw_purchases_asset()])
    def announce(landed: dict[str, Any]) -> list[str]:
        return orch.announce(landed)

    @task
    def check_files(landed: dict[str, Any]) -> int:
        return orch.check_files(landed)

    landed = land("{{ params.path }}", "{{ params.format }}", "{{ params.mapping }}")
    announce(landed)
    check_files(landed)


ingest_to_lake()
