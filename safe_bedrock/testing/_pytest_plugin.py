"""pytest plugin (registered through the `pytest11` entry point): the `fake_bedrock` fixture."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safe_bedrock._retry import set_testing
from safe_bedrock.testing._fake import FakeBedrock

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    # Remember whether the test body failed: its own failure says more than "answers left unused".
    if call.when == "call" and getattr(report, "failed", False):
        item.stash[_CALL_FAILED] = True
    return report


@pytest.fixture
def fake_bedrock(request: pytest.FixtureRequest) -> Iterator[FakeBedrock]:
    """A fresh in-process fake Bedrock; `fake_bedrock.client()` gives a boto3 client answered by it.

    Its clients are detached at teardown, and a test that passed fails if an answer it scripted was never
    used (`fake_bedrock.allow_pending_responses()` opts out). Meanwhile the retry policy is in testing mode
    (`set_testing(True)`: attempts as configured, no waiting), so a scripted throttle costs no time.
    """
    fake = FakeBedrock()
    with set_testing(True):
        yield fake
    fake.close()
    if not fake._allow_pending and not request.node.stash.get(_CALL_FAILED, False):
        fake.assert_no_pending_responses()
