from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from safe_bedrock.testing import FakeBedrockServer
from safe_bedrock.testing._control_plane import ControlPlane
from tests.cli.clihelpers import FrontDoor


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


@dataclass
class Aws:
    """The fake Bedrock server and its control plane, and the one URL every client is pointed at."""

    server: FakeBedrockServer
    plane: ControlPlane
    endpoint_url: str


@pytest.fixture
def aws(server: FakeBedrockServer) -> Iterator[Aws]:
    plane = getattr(server, "control_plane", None)
    if isinstance(plane, ControlPlane):
        yield Aws(server, plane, server.endpoint_url)
        return
    # The server does not dispatch control-plane calls itself (yet): put a front door before it.
    plane = ControlPlane(core=getattr(server, "_core", None))
    front = FrontDoor(server, plane)
    try:
        yield Aws(server, plane, front.endpoint_url)
    finally:
        front.close()
