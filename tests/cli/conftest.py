from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from safe_bedrock.testing import FakeBedrockServer
from safe_bedrock.testing._control_plane import ControlPlane
from tests.cli.clihelpers import control_plane


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


@dataclass
class Aws:
    """The fake Bedrock server and its control plane (fake STS, IAM, Bedrock control plane), one URL."""

    server: FakeBedrockServer
    plane: ControlPlane
    endpoint_url: str


@pytest.fixture
def aws(server: FakeBedrockServer) -> Aws:
    return Aws(server, control_plane(server), server.endpoint_url)
