"""Session fixtures of the cloud tests: both emulators started once on 127.0.0.1 and stopped
by PID at the end; settings for a BigQuery target on them, one dataset prefix per use."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from emulators import available, start

# gcsfs releases that default to the hierarchical-namespace code path stall ~60 s per call
# against the GCS emulator; must be set before gcsfs is imported
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    if not available():
        msg = ".venv-emulators is missing: 'make test' builds it (see Makefile)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    emu = start(tmp_path_factory.mktemp("emulators"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def cloud_settings(emulators, tmp_path_factory):
    """``cloud_settings(name, **gcp)`` → Settings for ``--target bigquery`` on the emulators,
    with a fresh dataset prefix (``<name>_<random>``) and home folder."""
    from purchase_patterns.settings import load_settings

    def make(name: str, **gcp: object):
        dataset = f"{name}_{uuid.uuid4().hex[:6]}"
        home: Path = tmp_path_factory.mktemp(f"cloud-{name}") / "home"
        return load_settings(**emulators.settings(home, dataset, **gcp))

    return make
