"""Google Cloud connections for ``--target bigquery``: credentials, the BigQuery client, the
gcsfs options of the lake and the dataset names, all from ``settings.gcp``.

Production and the emulators go through the same code: the emulators differ only by
``gcp.anonymous`` (no credentials) and the ``gcp.bigquery_endpoint`` / ``gcp.storage_endpoint``
settings, which are passed to the clients explicitly (no ``*_EMULATOR_HOST`` variables).

The service-account key file path is a secret: it is read here and nowhere else, and it never
appears in an error message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .settings import GcpSettings, Settings

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import bigquery

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def require(settings: Settings) -> GcpSettings:
    """The GCP settings, checked: the BigQuery target needs a project and a lake bucket."""
    gcp = settings.gcp
    missing = [name for name, value in (("gcp.project", gcp.project), ("gcp.bucket", gcp.bucket))
               if not value]
    if missing:
        raise UsageError(
            f"--target bigquery needs {' and '.join(missing)} (settings file, or "
            "PURCHASE_PATTERNS_GCP__PROJECT / PURCHASE_PATTERNS_GCP__BUCKET)")
    if not settings.lake.startswith("gs://"):
        raise UsageError("--target bigquery loads from a GCS lake: lake_url must start with "
                         "gs:// (or leave it unset to use gcp.bucket)")
    return gcp


def dataset_id(gcp: GcpSettings, layer: str) -> str:
    """The dataset of a layer: ``<dataset>_<layer>``, as dbt's ``generate_schema_name``."""
    return f"{gcp.dataset}_{layer}"


def credentials(gcp: GcpSettings) -> Credentials:
    """Anonymous (emulators), a service-account key file, or Application Default Credentials."""
    return _credentials(gcp.anonymous,
                        gcp.credentials_file.get_secret_value() if gcp.credentials_file else None)


@lru_cache(maxsize=4)
def _credentials(anonymous: bool, key_file: str | None) -> Credentials:
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    if anonymous:
        return AnonymousCredentials()
    if key_file:
        try:
            return service_account.Credentials.from_service_account_file(key_file,
                                                                          scopes=SCOPES)
        except (OSError, ValueError, KeyError):
            # the exception text may name the file: say what is wrong without it
            raise UsageError("gcp.credentials_file: the service-account key file could not be "
                             "read or is not a service-account JSON key") from None
    try:
        creds, _project = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError:
        raise UsageError("no Google credentials found: run 'gcloud auth application-default "
                         "login', or set gcp.credentials_file to a service-account key "
                         "file") from None
    return creds


def bigquery_client(gcp: GcpSettings) -> bigquery.Client:
    """A BigQuery client for the project, location and endpoint in the settings."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    options = ClientOptions(api_endpoint=gcp.bigquery_endpoint) if gcp.bigquery_endpoint else None
    return bigquery.Client(project=gcp.project, location=gcp.location,
                           credentials=credentials(gcp), client_options=options)


def storage_options(gcp: GcpSettings) -> dict[str, Any]:
    """fsspec/gcsfs options for a ``gs://`` lake."""
    options: dict[str, Any] = {
        "project": gcp.project,
        "token": "anon" if gcp.anonymous else credentials(gcp),
        "requests_timeout": gcp.timeout_seconds,
    }
    if gcp.storage_endpoint:
        options["endpoint_url"] = gcp.storage_endpoint
    return options


def retry(gcp: GcpSettings) -> Any:
    """The retry policy of every API call: transient errors only, bounded by the timeout."""
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(gcp.timeout_seconds)
