"""Model tests run scikit-learn and BLAS on one thread, as the predict stage does by default
(``models.threads``): on a shared 2-core machine OpenMP oversubscription makes tree models
many times slower."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    with threadpool_limits(limits=1):
        yield
