"""All settings in one typed place.

Values come, highest priority first, from: explicit keyword arguments (the CLI passes its
options this way), environment variables prefixed ``PURCHASE_PATTERNS_`` (nested with ``__``,
e.g. ``PURCHASE_PATTERNS_GCP__PROJECT``), an optional YAML settings file
(``PURCHASE_PATTERNS_CONFIG`` or ``--config``; ``purchase-patterns.yaml`` in the working
directory when present), then the defaults below. Paths are relative to the working directory
unless absolute; nothing here is machine-specific.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_FILE = "purchase-patterns.yaml"


class GcpSettings(BaseModel):
    """Google Cloud target (``--target bigquery``).

    Credentials come from Application Default Credentials unless a service-account key file
    is given (``credentials_file``, a secret: never stored in the repo, printed, logged or put
    in a summary or an error message). ``anonymous`` sends no credentials at all, for the GCS
    and BigQuery emulators; ``bigquery_endpoint`` and ``storage_endpoint`` point the clients
    (BigQuery client, gcsfs, dbt) at them. Production leaves all three unset.
    """

    project: str | None = None
    #: prefix of the BigQuery datasets: one dataset per layer, ``<dataset>_<layer>``
    dataset: str = Field("purchase_patterns", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,1000}$")
    location: str = "US"
    bucket: str | None = None
    credentials_file: SecretStr | None = None
    anonymous: bool = False
    bigquery_endpoint: str | None = None
    storage_endpoint: str | None = None
    #: seconds one API call or job may take before it is abandoned
    timeout_seconds: float = Field(600.0, gt=0)
    #: refuse any query that would scan (bill) more than this many bytes; None = no cap
    maximum_bytes_billed: int | None = Field(None, ge=1)


class ModelSettings(BaseModel):
    """The predict stage (CLV, churn, propensity)."""

    #: last day of the calibration period (dated data); the holdout runs from the next day to
    #: the last purchase date. Default: ``calibration_fraction`` of the span after the first
    #: purchase date.
    calibration_end: date | None = None
    calibration_fraction: float = Field(0.7, gt=0.1, lt=0.95)
    #: CLV and expected purchases cover the next ``horizon_months`` months
    horizon_months: int = Field(12, ge=1, le=120)
    #: annual rate at which future revenue is discounted (0.10 = 10% a year)
    discount_rate_annual: float = Field(0.10, ge=0.0, le=1.0)
    #: threads for scikit-learn and BLAS while modelling; 1 avoids OpenMP oversubscription,
    #: which makes tree models many times slower on a busy machine
    threads: int = Field(1, ge=1, le=256)
    #: the churn and propensity classifiers are trained and evaluated (leakage check, test
    #: split, cross-validation) on a stratified random sample of at most this many customers,
    #: then score every customer; above a few hundred thousand customers more rows do not
    #: change these low-capacity models or their accuracy figures, only the time
    max_training_customers: int = Field(200_000, ge=1_000)


class RfmSettings(BaseModel):
    """RFM scoring (dated data). Each score runs 1-5; by default the four cut points are the
    quintile boundaries of the data, or give your own four increasing values. Recency is
    days since the customer's last purchase (fewer days score higher), frequency is purchase
    occasions (customer-days), monetary is total spend in USD."""

    recency_cut_days: list[float] | None = None
    frequency_cuts: list[float] | None = None
    monetary_cuts: list[float] | None = None

    @field_validator("recency_cut_days", "frequency_cuts", "monetary_cuts")
    @classmethod
    def _four_increasing(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 4 or any(b <= a for a, b in zip(v, v[1:], strict=False))):
            raise ValueError("give four increasing cut points (they separate scores 1-5)")
        return v


class InsightsSettings(BaseModel):
    """The analyze stage: segments, clusters, peaks, significance tests, recommendations."""

    rfm: RfmSettings = RfmSettings()
    #: a period is a peak when its revenue is at least this much above its trend (0.10 = 10%)
    peak_threshold: float = Field(0.10, gt=0.0, le=5.0)
    #: minimum prominence of a month-of-year peak in the seasonal index (scipy find_peaks)
    peak_prominence: float = Field(0.05, gt=0.0, le=5.0)
    #: significance level for the tests, after Benjamini-Hochberg correction
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    #: above this many purchase lines, tests and associations use a seeded sample of this size
    sample_lines: int = Field(200_000, ge=1_000)
    #: clustering: candidate numbers of clusters, chosen by the best silhouette score
    cluster_k_min: int = Field(2, ge=2, le=20)
    cluster_k_max: int = Field(8, ge=2, le=20)
    #: customers the clusters are fitted on (a seeded sample when there are more)
    cluster_fit_customers: int = Field(20_000, ge=500)
    #: customers the silhouette score is computed on
    silhouette_customers: int = Field(2_500, ge=200)
    #: smallest group (customers, or purchase lines for tests and lift) reported on
    min_group_size: int = Field(30, ge=5)
    #: recommendations kept in the report and the table
    max_recommendations: int = Field(8, ge=1, le=50)

    @model_validator(mode="after")
    def _k_range(self) -> InsightsSettings:
        if self.cluster_k_max < self.cluster_k_min:
            raise ValueError("cluster_k_max must be at least cluster_k_min")
        return self


class ReportSettings(BaseModel):
    """The stakeholder report (HTML, and PDF printed by headless Chromium)."""

    #: Chromium or Chrome executable; default: the first of chromium, chromium-browser,
    #: google-chrome found on PATH
    chromium: Path | None = None
    pdf: bool = True
    pdf_timeout_seconds: int = Field(120, ge=10)


class DashboardSettings(BaseModel):
    """The web dashboard (``purchase-patterns dashboard``). It binds the loopback address
    unless told otherwise; serving any other address requires ``password`` (set it through
    the environment, ``PURCHASE_PATTERNS_DASHBOARD__PASSWORD``, never on a command line)."""

    address: str = "127.0.0.1"
    #: 0 picks a free port
    port: int = Field(8501, ge=0, le=65535)
    password: SecretStr | None = None
    #: the Streamlit app folder; default: ``dashboard/`` at the top of the repository
    app_dir: Path | None = None
    #: the in-memory index that answers filtered headline figures fast
    #: (purchase_patterns.filter_index): built in the background when the dashboard first
    #: reads a published warehouse (``background``; SQL answers until it is ready), before
    #: the first answer (``blocking``), or never (``off``). DuckDB warehouses only.
    filter_index: Literal["background", "blocking", "off"] = "background"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PURCHASE_PATTERNS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Path("data")
    config: Path | None = None
    target: Literal["duckdb", "bigquery"] = "duckdb"
    lake_url: str | None = None
    duckdb_memory_limit: str = "3GB"
    duckdb_threads: int = Field(2, ge=1, le=256)
    #: dbt nodes (models, tests) run at once on DuckDB; unset: see ``transform.dbt_threads``
    dbt_threads: int | None = Field(None, ge=1, le=64)
    demo_customers: int = Field(2_000, ge=10)
    seed: int = 42
    #: the dbt project folder; default: ``transform/`` at the top of the repository
    dbt_project_dir: Path | None = None
    gcp: GcpSettings = GcpSettings()
    models: ModelSettings = ModelSettings()
    insights: InsightsSettings = InsightsSettings()
    report: ReportSettings = ReportSettings()
    #: crash testing (see ``faults.py``): file to which every checkpoint reached is appended
    checkpoint_file: Path | None = None
    #: crash testing: checkpoint name (wildcards allowed) at which the run pauses, to be killed
    pause_at: str | None = None
    pause_seconds: float = Field(120.0, ge=0)
    #: crash testing: checkpoint names (wildcards allowed) at which the run fails, once each:
    #: the first time a matching checkpoint is reached (as ``checkpoint_file`` records), as a
    #: transient fault that a retry gets past
    fail_at: list[str] = []
    dashboard: DashboardSettings = DashboardSettings()

    @field_validator("home", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(v).expanduser() if isinstance(v, (str, Path)) else v

    # -- derived locations ---------------------------------------------------------------
    @property
    def lake(self) -> str:
        """Root URL of the lake: a local folder by default, ``gs://bucket`` in cloud mode."""
        if self.lake_url:
            return self.lake_url.rstrip("/")
        if self.target == "bigquery" and self.gcp.bucket:
            return f"gs://{self.gcp.bucket}"
        return str((self.home / "lake").resolve())

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def warehouse_uri(self) -> str:
        """Where the warehouse is, for people: the DuckDB file or the BigQuery datasets."""
        if self.target == "bigquery":
            return f"bigquery://{self.gcp.project or '?'}/{self.gcp.dataset}_*"
        return str(self.warehouse_path)

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def tmp_dir(self) -> Path:
        return self.home / ".tmp"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, init_settings, env_settings))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the optional YAML settings file named by ``config`` (init or env) or the default."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource,
                 env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._init = init
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        name = self._init().get("config") or self._env().get("config")
        path = Path(name) if name else Path(DEFAULT_CONFIG_FILE)
        if not path.exists():
            if name:
                from .errors import UsageError

                raise UsageError(f"{path}: settings file not found")
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            from .errors import UsageError

            raise UsageError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            from .errors import UsageError

            raise UsageError(f"{path}: settings file must hold a mapping")
        return data


def load_settings(**overrides: Any) -> Settings:
    """Build settings, dropping overrides that are None (options the user did not give)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
