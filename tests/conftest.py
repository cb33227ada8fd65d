from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    # capture_logs() leaves structlog marked as configured; every test starts as an app that configured
    # nothing.
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
