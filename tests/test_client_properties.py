"""Property: no model id outside the allowlist is ever sent, checked against the fake's request log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safe_bedrock import InvalidModelIdError, ModelNotAllowedError, SafeBedrockClient
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, messages, safe_client

PROFILE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
ALLOWED_EXACT = {
    HAIKU,
    f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
    PROFILE,
    f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{PROFILE}",
}
WILDCARD = "meta.llama3-*"
WILDCARD_ORACLE = re.compile(r"(arn:aws:bedrock:us-east-1::foundation-model/)?meta\.llama3-[^/]*")
# A bare system-profile entry stands for that profile in the caller's own account, whichever it is.
PROFILE_ORACLE = re.compile(rf"arn:aws:bedrock:us-east-1:\d{{12}}:inference-profile/{re.escape(PROFILE)}")

CONFUSABLES = {"a": "а", "e": "е", "o": "о", "c": "с", ".": "․", "-": "‐", ":": "꞉"}  # noqa: RUF001
SEEDS = [*sorted(ALLOWED_EXACT), "meta.llama3-8b-instruct-v1:0"]


def _mutations(seed: str) -> st.SearchStrategy[str]:
    position = st.integers(min_value=0, max_value=len(seed))
    swaps = [
        st.just(seed.upper()),
        st.just(seed.swapcase()),
        st.just(seed.replace(":", "%3A")),
        st.just(seed.replace("/", "%2F")),
        st.just(seed.replace("us-east-1", "us-west-2")),
        st.just(seed.replace("us-east-1", "eu-west-1")),
        st.just(seed.replace("arn:aws:", "arn:aws-cn:")),
        st.just(seed.replace("arn:aws:", "arn:aws-us-gov:")),
        st.just(seed.replace("123456789012", "210987654321")),
        st.just(seed.replace("foundation-model", "inference-profile")),
        st.just(seed.replace("inference-profile", "application-inference-profile")),
        st.just("eu." + seed),
        st.just("global." + seed),
        st.just(seed.removeprefix("us.")),
        st.just("../" + seed),
        st.just(seed + "/../x"),
        st.just(" " + seed),
        st.just(seed + "\t"),
        st.just(seed + "\x00"),
        st.just(seed[:-1]),
        st.just(seed + "0"),
        st.sampled_from(sorted(CONFUSABLES)).map(lambda ch: seed.replace(ch, CONFUSABLES[ch], 1)),
        st.tuples(position, st.characters()).map(lambda pc: seed[: pc[0]] + pc[1] + seed[pc[0] :]),
        st.tuples(position, position).map(lambda ab: seed[: min(ab)] + seed[max(ab) :]),
    ]
    return st.one_of(swaps)


model_ids = st.one_of(
    st.sampled_from(SEEDS).flatmap(_mutations),
    st.sampled_from(SEEDS),
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9.:/*?\-]{1,60}", fullmatch=True),
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[*sorted(ALLOWED_EXACT), WILDCARD])


def _allowed(model_id: str) -> bool:
    return (
        model_id in ALLOWED_EXACT
        or WILDCARD_ORACLE.fullmatch(model_id) is not None
        or PROFILE_ORACLE.fullmatch(model_id) is not None
    )


@settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model_id=model_ids)
def test_no_model_id_outside_the_allowlist_is_ever_sent(
    fake: FakeBedrock, client: SafeBedrockClient, model_id: str
) -> None:
    before = len(fake.requests)
    try:
        client.converse(modelId=model_id, messages=messages())
    except (InvalidModelIdError, ModelNotAllowedError):
        assert len(fake.requests) == before
        return
    except Exception:  # noqa: BLE001, S110 - the fake may reject odd ids: what matters is what was sent
        pass
    sent = fake.requests[before:]
    assert all(_allowed(request.model_id or "") for request in sent), (model_id, sent)
