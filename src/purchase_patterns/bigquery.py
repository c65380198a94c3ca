"""The BigQuery warehouse: a :class:`~purchase_patterns.datastore.DataStore` over BigQuery
datasets, and the loader's tables there.

- Layers are datasets ``<gcp.dataset>_<layer>`` in ``gcp.project`` (``purchase_patterns_raw``,
  ``purchase_patterns_marts``, ...), as dbt's ``generate_schema_name`` names them, so
  ``store.relation("marts", "dim_customers")`` is the table dbt built.
- ``query`` sends ``@name`` parameters as typed query parameters (types inferred from the
  Python values); values never enter the SQL text. Results come back with the dtypes the
  DuckDB store gives (dates and timestamps as naive datetime64, numerics as float64).
- Frames are written as Parquet to ``_staging/`` in the GCS lake and loaded with load jobs
  from there with an explicit schema (no streaming inserts: load jobs are free, atomic per
  table and leave nothing in a streaming buffer that would block a later ``delete``).
- Every API call has a timeout and a bounded retry (``gcp.timeout_seconds``).

The loader's tables (``warehouse.TABLES``) are created when a writable store is opened, like
``warehouse.connect`` does on DuckDB; ``raw.purchases`` is partitioned by month of
``purchase_date`` and clustered by ``customer_id``. Their columns are all NULLABLE: DuckDB
enforces the NOT NULL constraints where the rows are checked before they are loaded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from . import gcp as gcp_
from .datastore import _PARAM, BATCH_ROWS, _check_ident
from .lake import Lake, open_lake
from .settings import Settings
from .warehouse import TABLES

#: DuckDB type names of ``warehouse.TABLES`` → BigQuery column types.
_BQ_TYPES = {"VARCHAR": "STRING", "BIGINT": "INT64", "INTEGER": "INT64", "DATE": "DATE",
             "DOUBLE": "FLOAT64", "BOOLEAN": "BOOL", "TIMESTAMP": "TIMESTAMP", "JSON": "STRING"}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$", re.IGNORECASE)

#: Partitioning and clustering of the loader's tables.
_PARTITION = {("raw", "purchases"): "purchase_date"}
_CLUSTER = {("raw", "purchases"): ["customer_id"], ("raw", "rejects"): ["batch_id"]}

#: (project, dataset prefix, endpoint) whose loader tables this process has created.
_ENSURED: set[tuple[str, str, str]] = set()


def field_for(name: str, duckdb_type: str) -> bigquery.SchemaField:
    """The BigQuery column of a ``warehouse.TABLES`` field."""
    m = _DECIMAL.match(duckdb_type)
    if m:
        return bigquery.SchemaField(name, "NUMERIC", precision=int(m.group(1)),
                                    scale=int(m.group(2)))
    return bigquery.SchemaField(name, _BQ_TYPES[duckdb_type.upper()])


def table_schema(layer: str, table: str) -> list[bigquery.SchemaField]:
    return [field_for(f.name, f.sql_type) for f in TABLES[layer, table]]


class BigQueryStore:
    """A :class:`~purchase_patterns.datastore.DataStore` over BigQuery."""

    target = "bigquery"

    def __init__(self, settings: Settings, *, read_only: bool,
                 client: bigquery.Client | None = None, lake: Lake | None = None) -> None:
        self.gcp = gcp_.require(settings)
        self.project: str = self.gcp.project or ""
        self.read_only = read_only
        self.client = client or gcp_.bigquery_client(self.gcp)
        self.lake = lake or open_lake(settings)
        self.tmp_dir = settings.tmp_dir
        self.timeout = self.gcp.timeout_seconds
        self.retry = gcp_.retry(self.gcp)

    # -- names --------------------------------------------------------------------------------
    def dataset(self, layer: str) -> str:
        _check_ident(layer)
        return gcp_.dataset_id(self.gcp, layer)

    def table_id(self, layer: str, table: str) -> str:
        _check_ident(layer, table)
        return f"{self.project}.{self.dataset(layer)}.{table}"

    def relation(self, layer: str, table: str) -> str:
        return f"`{self.table_id(layer, table)}`"

    # -- reading ------------------------------------------------------------------------------
    def _run(self, sql: str, params: Mapping[str, Any] | None,
             page_size: int | None = None) -> Any:
        """Run a query job to completion; returns its rows. Only the parameters the SQL
        names are sent."""
        used = set(_PARAM.findall(sql))
        config = bigquery.QueryJobConfig(
            query_parameters=[query_parameter(k, v) for k, v in (params or {}).items()
                              if k in used],
            maximum_bytes_billed=self.gcp.maximum_bytes_billed,
        )
        job = self.client.query(sql, job_config=config, timeout=self.timeout,
                                retry=self.retry, job_retry=None)
        return job.result(timeout=self.timeout, retry=self.retry, page_size=page_size)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        rows = self._run(sql, params)
        arrow = rows.to_arrow(create_bqstorage_client=False)
        frame = arrow.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(),
                                              pa.bool_(): pd.BooleanDtype()}.get)
        return _normalise(frame, rows.schema)

    def query_batches(self, sql: str, params: Mapping[str, Any] | None = None,
                      rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """:meth:`query`, one page of results at a time (pages of about ``rows`` rows; at
        least one frame, possibly empty, with the result's columns)."""
        result = self._run(sql, params, page_size=rows)
        mapper = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get
        empty = True
        for batch in result.to_arrow_iterable():
            empty = False
            yield _normalise(batch.to_pandas(types_mapper=mapper), result.schema)
        if empty:
            yield _normalise(pd.DataFrame({f.name: pd.Series(dtype=object)
                                           for f in result.schema}), result.schema)

    def has_table(self, layer: str, table: str) -> bool:
        try:
            self.client.get_table(self.table_id(layer, table), timeout=self.timeout,
                                  retry=self.retry)
        except NotFound:
            return False
        return True

    def columns(self, layer: str, table: str) -> list[str]:
        t = self.client.get_table(self.table_id(layer, table), timeout=self.timeout,
                                  retry=self.retry)
        return [f.name for f in t.schema]

    # -- writing ------------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._writable()
        self._run(sql, params)

    def write(self, layer: str, table: str, frame: pd.DataFrame) -> None:
        self.write_many(layer, {table: frame})

    def write_many(self, layer: str, tables: Mapping[str, pd.DataFrame]) -> None:
        """Replace tables. Every frame is converted first, then loaded into a staging table;
        only when all are loaded is each target replaced from its staging table with one
        ``create or replace table ... as select`` (atomic per table, and it replaces the schema
        too, which a copy job does not do on the emulator), so a frame that cannot be stored
        changes nothing."""
        self._writable()
        _check_ident(layer, *tables)
        self.ensure_dataset(layer)
        converted = {name: _to_arrow(frame) for name, frame in tables.items()}
        token = uuid.uuid4().hex[:12]
        staged: dict[str, str] = {}
        try:
            for name, (arrow, schema) in converted.items():
                staging = self.table_id(layer, f"_staging_{name}_{token}")
                staged[name] = staging
                self._load(arrow, schema, staging, "WRITE_TRUNCATE")
            for name, staging in staged.items():
                self._run(f"create or replace table {self.relation(layer, name)} "  # noqa: S608
                          f"as select * from `{staging}`", None)
        finally:
            for staging in staged.values():
                self.client.delete_table(staging, not_found_ok=True, timeout=self.timeout,
                                         retry=self.retry)

    def append(self, layer: str, table: str, frame: pd.DataFrame) -> None:
        """Add rows to an existing table, matched by column name and converted to its schema
        (columns the frame lacks are NULL)."""
        self._writable()
        target = self.client.get_table(self.table_id(layer, table), timeout=self.timeout,
                                       retry=self.retry)
        unknown = set(frame.columns) - {f.name for f in target.schema}
        if unknown:
            raise ValueError(f"{layer}.{table} has no column(s) {', '.join(sorted(unknown))}")
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [_arrow_field(f) for f in target.schema]
        arrow = pa.table(
            [arrow[f.name].cast(f.type) if f.name in arrow.column_names
             else pa.nulls(len(frame), f.type) for f in fields],
            schema=pa.schema(fields))
        self._load(arrow, list(target.schema), target.reference, "WRITE_APPEND")

    def load_lake_file(self, uri: str, layer: str, table: str) -> None:
        """Append a Parquet file of the lake (columns in table order) to a loader table with
        the table's explicit schema.

        The file is loaded from a copy under ``_staging/``: the lake's ``key=value`` folders
        (``source=kaggle/ingest_date=...``) would be read as extra hive-partition columns by
        the emulator, and a server-side copy costs nothing on GCS."""
        self._writable()
        rel = f"_staging/{uuid.uuid4().hex}.parquet"
        staged = self.lake.copy(uri, rel)
        try:
            job = self.client.load_table_from_uri(
                staged, self.table_id(layer, table), timeout=self.timeout, retry=self.retry,
                job_config=bigquery.LoadJobConfig(source_format="PARQUET",
                                                  schema=table_schema(layer, table),
                                                  write_disposition="WRITE_APPEND"))
            job.result(timeout=self.timeout, retry=self.retry)
        finally:
            self.lake.remove(rel)

    def _load(self, arrow: pa.Table, schema: Sequence[bigquery.SchemaField], destination: Any,
              disposition: str) -> None:
        rel = f"_staging/{uuid.uuid4().hex}.parquet"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.tmp_dir) as d:
            local = Path(d) / "frame.parquet"
            pq.write_table(arrow, local)
            uri = self.lake.put(local, rel)
        try:
            job = self.client.load_table_from_uri(
                uri, destination, timeout=self.timeout, retry=self.retry,
                job_config=bigquery.LoadJobConfig(source_format="PARQUET", schema=list(schema),
                                                  write_disposition=disposition))
            job.result(timeout=self.timeout, retry=self.retry)
        finally:
            self.lake.remove(rel)

    # -- datasets and the loader's tables --------------------------------------------------------
    def ensure_dataset(self, layer: str) -> None:
        ds = bigquery.Dataset(f"{self.project}.{self.dataset(layer)}")
        ds.location = self.gcp.location
        self.client.create_dataset(ds, exists_ok=True, timeout=self.timeout, retry=self.retry)

    def ensure_tables(self) -> None:
        """Create the datasets and tables of ``warehouse.TABLES`` that do not exist yet."""
        key = (self.project, self.gcp.dataset, self.gcp.bigquery_endpoint or "")
        if key in _ENSURED:
            return
        for layer in sorted({layer for layer, _ in TABLES}):
            self.ensure_dataset(layer)
            existing = {t.table_id for t in self.client.list_tables(
                f"{self.project}.{self.dataset(layer)}", timeout=self.timeout,
                retry=self.retry)}
            for (lay, name) in TABLES:
                if lay != layer or name in existing:
                    continue
                table = bigquery.Table(self.table_id(lay, name), schema=table_schema(lay, name))
                if (lay, name) in _PARTITION:
                    table.time_partitioning = bigquery.TimePartitioning(
                        type_=bigquery.TimePartitioningType.MONTH, field=_PARTITION[lay, name])
                table.clustering_fields = _CLUSTER.get((lay, name))
                self.client.create_table(table, exists_ok=True, timeout=self.timeout,
                                         retry=self.retry)
        _ENSURED.add(key)

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError("this store was opened read-only")

    def close(self) -> None:
        self.client.close()


def open_bigquery_store(settings: Settings, *, read_only: bool = False) -> BigQueryStore:
    """The BigQuery store of the settings; a writable one creates the loader's tables."""
    store = BigQueryStore(settings, read_only=read_only)
    if not read_only:
        store.ensure_tables()
    return store


# -- parameters ---------------------------------------------------------------------------------


def _scalar_type(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "BOOL"
    if isinstance(value, (int, np.integer)):
        return "INT64"
    if isinstance(value, (float, np.floating)):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC" if _fits_numeric(value) else "BIGNUMERIC"
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return "TIMESTAMP"  # naive datetimes are UTC throughout the package
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, bytes):
        return "BYTES"
    raise TypeError(f"no BigQuery parameter type for {type(value).__name__}")


def _fits_numeric(value: decimal.Decimal) -> bool:
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= 9 and abs(value) < 10**29


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def query_parameter(name: str, value: Any) -> Any:
    """A typed BigQuery query parameter for a Python value (lists become arrays). None has no
    type to infer: write ``is null`` in the SQL instead."""
    if value is None:
        raise ValueError(f"query parameter @{name} is None: its BigQuery type cannot be "
                         "inferred; test for NULL in the SQL instead")
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        items = [_plain(v) for v in value]
        if not items or any(v is None for v in items):
            raise ValueError(f"query parameter @{name}: an array needs at least one value "
                             "and no None")
        return bigquery.ArrayQueryParameter(name, _scalar_type(items[0]), items)
    value = _plain(value)
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


# -- frames ---------------------------------------------------------------------------------------

_ARROW_TO_BQ = (
    (pa.types.is_boolean, "BOOL"),
    (pa.types.is_integer, "INT64"),
    (pa.types.is_floating, "FLOAT64"),
    (pa.types.is_string, "STRING"),
    (pa.types.is_large_string, "STRING"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_binary, "BYTES"),
)


def _to_arrow(frame: pd.DataFrame) -> tuple[pa.Table, list[bigquery.SchemaField]]:
    """A frame as an Arrow table BigQuery can load, and its explicit BigQuery schema."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns, fields = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_null(kind) or pa.types.is_dictionary(kind):
            column = column.cast(pa.string())
            kind = column.type
        if pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz="UTC") if kind.tz else pa.timestamp("us"))
        if pa.types.is_decimal(kind):
            bq_type = "NUMERIC" if kind.precision <= 38 and kind.scale <= 9 else "BIGNUMERIC"
            fields.append(bigquery.SchemaField(name, bq_type))
        else:
            bq_type = next((t for test, t in _ARROW_TO_BQ if test(kind)), None)
            if bq_type is None:
                raise TypeError(f"column {name!r}: {kind} cannot be stored in BigQuery")
            fields.append(bigquery.SchemaField(name, bq_type))
        columns.append(column)
    return pa.table(columns, names=table.column_names), fields


def _arrow_field(field: bigquery.SchemaField) -> pa.Field:
    kinds = {"STRING": pa.string(), "INT64": pa.int64(), "INTEGER": pa.int64(),
             "FLOAT64": pa.float64(), "FLOAT": pa.float64(), "BOOL": pa.bool_(),
             "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"),
             "BYTES": pa.binary()}
    if field.field_type in ("NUMERIC", "BIGNUMERIC"):
        return pa.field(field.name, pa.decimal128(field.precision or 38, field.scale or 9))
    return pa.field(field.name, kinds[field.field_type])


def _normalise(frame: pd.DataFrame, schema: Sequence[bigquery.SchemaField]) -> pd.DataFrame:
    """Give query results the dtypes the DuckDB store gives: DATE/DATETIME/TIMESTAMP as naive
    ``datetime64`` (UTC), NUMERIC as float64, INT64/BOOL as plain numpy dtypes when there is
    no NULL."""
    for field in schema:
        name, kind = field.name, field.field_type
        if name not in frame.columns or field.mode == "REPEATED":
            continue
        col = frame[name]
        if kind == "DATE":
            frame[name] = pd.to_datetime(col.astype("object"), errors="coerce").astype(
                "datetime64[us]")
        elif kind in ("TIMESTAMP", "DATETIME"):
            conv = pd.to_datetime(col, utc=kind == "TIMESTAMP")
            if getattr(conv.dt, "tz", None) is not None:
                conv = conv.dt.tz_convert("UTC").dt.tz_localize(None)
            frame[name] = conv.astype("datetime64[us]")
        elif kind in ("NUMERIC", "BIGNUMERIC"):
            frame[name] = pd.to_numeric(col.astype("object"), errors="coerce").astype("float64")
        elif kind in ("INT64", "INTEGER") and not col.isna().any():
            frame[name] = col.astype("int64")
        elif kind in ("BOOL", "BOOLEAN") and not col.isna().any():
            frame[name] = col.astype("bool")
    return frame
