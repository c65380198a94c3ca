"""Airflow DAG ``load_transform_validate``: from landed batches to a published warehouse.

Runs when ``ingest_to_lake`` updates the raw purchases asset (or when triggered by hand):
loads the batches not loaded yet, runs the dbt project through cosmos (per model a run task
and a test task, so a failure shows where), records the data-quality results and report for
the run, runs each later pipeline stage (predict, analyze, report, ... as registered in
``pipeline.DOWNSTREAM``) as its own task, and publishes the warehouse for the dashboard. A
failure anywhere stops publishing; the previous published warehouse stays in place.

Wiring only: the task bodies are in ``purchase_patterns.orchestration``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import TriggerRule, dag, task

from purchase_patterns import orchestration as orch


@dag(
    dag_id="load_transform_validate",
    description="Load landed batches, run dbt and the checks, the analytics, then publish",
    schedule=[orch.raw_purchases_asset()],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # DuckDB allows one writer per file: the tasks of a run take turns
    max_active_tasks=orch.max_active_tasks(),
    tags=["purchase-patterns", "warehouse", "dbt", "quality"],
    default_args=orch.default_args(),
    doc_md=__doc__,
)
def load_transform_validate() -> None:
    @task(task_id=orch.LOAD_TASK_ID)
    def load(dag_run_id: str) -> dict[str, Any]:
        return orch.load(dag_run_id)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def record_quality(summary: dict[str, Any] | None) -> dict[str, Any]:
        return orch.record_quality(summary)

    @task
    def stage(name: str, summary: dict[str, Any]) -> dict[str, Any]:
        return orch.run_stage(name, summary)

    @task
    def publish(summary: dict[str, Any]) -> dict[str, Any]:
        return orch.finish_and_publish(summary)

    loaded = load("{{ run_id }}")
    dbt = orch.dbt_task_group()
    summary = record_quality(loaded)
    loaded >> dbt >> summary
    for name in orch.stages_after_transform():
        summary = stage.override(task_id=name)(name, summary)
    publish(summary)


load_transform_validate()
