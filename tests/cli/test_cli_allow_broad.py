"""Commands that take --allow refuse an entry that names no provider before sending anything."""

from __future__ import annotations

import pytest

from safe_bedrock.testing import FakeBedrockServer
from tests.cli.clihelpers import endpoint_args, run

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.mark.parametrize("entry", ["*0", "us.*"])
def test_invoke_with_a_broad_allow_entry_is_a_usage_error_and_sends_nothing(
    server: FakeBedrockServer, entry: str
) -> None:
    model = HAIKU if entry == "*0" else f"us.{HAIKU}"
    result = run("invoke", model, "Hello", "--allow", entry, *endpoint_args(server))
    assert result.code == 2, result.stderr
    assert f"'{entry}'" in result.stderr
    assert "covers models of every provider" in result.stderr
    assert server.requests == []


def test_invoke_with_an_allow_entry_naming_the_provider_works(server: FakeBedrockServer) -> None:
    result = run("invoke", HAIKU, "Hello", "--allow", "anthropic.*", *endpoint_args(server))
    assert result.code == 0, result.stderr
    assert len(server.requests) == 1
