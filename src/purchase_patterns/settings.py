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
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_FILE = "purchase-patterns.yaml"


class GcpSettings(BaseModel):
    """Google Cloud target. Credentials come from Application Default Credentials unless a
    service-account file is given; neither is ever stored in the repo or printed."""

    project: str | None = None
    dataset: str = "purchase_patterns"
    location: str = "US"
    bucket: str | None = None
    credentials_file: SecretStr | None = None


class ModelSettings(BaseModel):
    calibration_end: date | None = None
    calibration_fraction: float = Field(0.7, gt=0.1, lt=0.95)
    horizon_months: int = Field(12, ge=1, le=120)
    discount_rate_annual: float = Field(0.10, ge=0.0, le=1.0)


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
    demo_customers: int = Field(2_000, ge=10)
    seed: int = 42
    #: the dbt project folder; default: ``transform/`` at the top of the repository
    dbt_project_dir: Path | None = None
    gcp: GcpSettings = GcpSettings()
    models: ModelSettings = ModelSettings()
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
