"""Loading checked batches into BigQuery: idempotent and crash-safe without transactions.

A file is validated locally exactly as for DuckDB (``validate.py`` in a scratch DuckDB
database, see ``ingest.load_landed``); its valid and rejected rows are written as Parquet to
the GCS lake. Then, for one batch:

1. rows of the batch already in ``raw.purchases`` or ``raw.rejects`` while ``raw.batches``
   has no row for it are left over from a load that died half-way: they are deleted;
2. the two Parquet files are appended with load jobs from their ``gs://`` URIs, with the
   explicit schema of ``warehouse.TABLES`` (a load job is atomic per table);
3. ``rows_in = rows_loaded + rows_rejected`` is checked on what BigQuery now holds; on a
   mismatch the batch's rows are deleted again and the load fails;
4. the batch row is appended to ``raw.batches`` last: it is what makes the batch count as
   loaded, so a re-run skips a recorded batch and redoes an unrecorded one from step 1.

One loader at a time per warehouse (the CLI run or the Airflow DAG, which runs one at a time);
two loaders racing on the same new file could both load it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import duckdb
import pandas as pd

from .bigquery import BigQueryStore
from .ingest import BatchResult
from .sources import SourceSpec
from .warehouse import now


class BigQueryBatches:
    """The :class:`~purchase_patterns.ingest.BatchTarget` of a BigQuery warehouse."""

    def __init__(self, store: BigQueryStore) -> None:
        self.store = store
        self.purchases = store.relation("raw", "purchases")
        self.rejects = store.relation("raw", "rejects")
        self.batches = store.relation("raw", "batches")

    def loaded(self, batch_id: str) -> tuple[Any, ...] | None:
        rows = self.store.query(
            "select rows_in, rows_loaded, rows_rejected, lake_parquet_uri, dated "  # noqa: S608
            f"from {self.batches} where batch_id = @batch_id", {"batch_id": batch_id})
        if rows.empty:
            return None
        r = rows.iloc[0]
        return (int(r["rows_in"]), int(r["rows_loaded"]), int(r["rows_rejected"]),
                r["lake_parquet_uri"], bool(r["dated"]))

    def loaded_ids(self, run_id: str | None = None) -> set[str]:
        if run_id is None:
            rows = self.store.query(f"select batch_id from {self.batches}")  # noqa: S608
        else:
            rows = self.store.query(f"select batch_id from {self.batches} "  # noqa: S608
                                    "where run_id = @run_id", {"run_id": run_id})
        return set(rows["batch_id"])

    def atomic(self) -> Any:
        # nothing to roll back in the scratch database; BigQuery is made consistent by
        # record() (delete what a failed attempt left, record the batch last)
        return nullcontext()

    def counts(self, batch_id: str) -> tuple[int, int]:
        """(rows in raw.purchases, distinct rejected lines in raw.rejects) of a batch."""
        got = self.store.query(
            f"select (select count(*) from {self.purchases} where batch_id = @b) as loaded, "  # noqa: S608
            f"(select count(distinct line) from {self.rejects} where batch_id = @b) "
            "as rejected", {"b": batch_id})
        return int(got["loaded"].iloc[0]), int(got["rejected"].iloc[0])

    def discard(self, batch_id: str) -> None:
        """Delete a batch's rows (never a recorded batch's: see ``record``)."""
        for rel in (self.purchases, self.rejects):
            self.store.execute(f"delete from {rel} where batch_id = @b",  # noqa: S608
                               {"b": batch_id})

    def record(self, con: duckdb.DuckDBPyConnection, spec: SourceSpec, entry: dict[str, Any],
               run_id: str, result: BatchResult, rejects_uri: str) -> None:
        sha = entry["batch_id"]
        if self.counts(sha) != (0, 0):
            self.discard(sha)  # left by a load that did not finish
        self.store.load_lake_file(str(result.lake_parquet_uri), "raw", "purchases")
        if result.rows_rejected:
            self.store.load_lake_file(rejects_uri, "raw", "rejects")
        loaded, rejected = self.counts(sha)
        if (loaded, rejected) != (result.rows_loaded, result.rows_rejected) \
                or loaded + rejected != result.rows_in:
            self.discard(sha)
            raise RuntimeError(
                f"{entry['source_file']}: reconciliation failed in BigQuery: "
                f"{result.rows_in} rows in, {loaded} loaded + {rejected} rejected")
        self.store.append("raw", "batches", pd.DataFrame([{
            "batch_id": sha, "run_id": run_id,
            "source_file": entry.get("source_path") or entry["source_file"],
            "source_format": spec.format, "variant": spec.variant,
            "size_bytes": entry.get("size_bytes"), "rows_in": result.rows_in,
            "rows_loaded": loaded, "rows_rejected": rejected,
            "dated": "purchase_date" in spec.fields, "lake_raw_uri": entry.get("raw_uri"),
            "lake_parquet_uri": result.lake_parquet_uri, "loaded_at": now(), "seconds": None,
        }]))

    def release(self, con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
        """The scratch database keeps nothing once the batch is in BigQuery."""
        for table in ("raw.purchases", "raw.rejects"):
            con.execute(f"delete from {table} where batch_id = ?", [batch_id])  # noqa: S608
