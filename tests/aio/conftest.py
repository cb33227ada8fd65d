"""The async client's tests need the `aio` extra; without aiobotocore (the main venv) they are skipped."""

from __future__ import annotations

import importlib.util

import pytest

# Not collected at all without aiobotocore: the modules import it, and the anyio marker needs anyio.
if importlib.util.find_spec("aiobotocore") is None:  # pragma: no cover - depends on the venv
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def anyio_backend() -> str:
    # aiobotocore (aiohttp) runs on asyncio only.
    return "asyncio"
