"""Every Python sample in docs/ runs, page by page, in the order a reader meets it.

Each page gets one namespace and a fake Bedrock server on localhost that the standard AWS environment
variables point at (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, dummy keys, a region), so a sample reads like
production code, `SafeBedrockClient(allow=[...])`, and nothing can reach AWS. Hidden
`<!-- invisible-code-block: python -->` blocks assert what the page claims; `fake_server` is that server.
A sample needing a library this environment lacks (aiobotocore lives in .venv-aio, the frameworks in
.venv) is skipped by a `<!-- skip: next if(...) -->` note on its page, named in the skip's reason.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import SkipTest

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from safe_bedrock.testing import FakeBedrockServer, set_testing

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(page for page in DOCS.rglob("*.md") if "```python" in page.read_text(encoding="utf-8"))
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])


def missing(module: str) -> bool:
    """For a page's skip note: `<!-- skip: next if(missing("aiobotocore"), reason="...") -->`."""
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # a parent package is missing
        return True


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBedrockServer]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "SAFE_BEDROCK_")):
            monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with FakeBedrockServer() as server, set_testing(True):
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
        monkeypatch.chdir(tmp_path)  # samples that write a file write it here
        yield server
    # Pages that show logging set-up (basicConfig, structlog.configure) must not leak it into later tests.
    root.handlers[:], root.level = handlers, level


def test_the_docs_have_samples_to_run() -> None:
    assert len(PAGES) >= 10, PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_every_sample_on_the_page_runs(page: Path, aws_env: FakeBedrockServer) -> None:
    document = SYBIL.parse(page)
    document.namespace.update(fake_server=aws_env, missing=missing)
    examples, skipped = list(document), []
    for example in examples:
        try:
            example.evaluate()
        except SkipTest as skip:  # noqa: PERF203 - one skip note must not stop the rest of the page
            skipped.append(f"line {example.line}: {skip}")
    if len(skipped) == len(examples):
        pytest.skip("; ".join(skipped))
