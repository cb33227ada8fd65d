"""Property: no model id outside the allowlist is ever sent, checked against the fake's request log.

Two generators, one oracle. A deterministic corpus applies every near-miss operator (case, Unicode
confusables, encoded separators, traversal, whitespace and invisible characters, partition, region and
account swaps, resource-type swaps, profile prefixes, wildcards, truncation, extension) to every allowed
id, then stacks random operators (seeded) until it holds at least 20,000 distinct ids per run
(x SAFE_BEDROCK_SOAK). Hypothesis then searches the same space with shrinking. The oracle is written
independently of the product: exact strings and regular expressions over what the allowlist says.
"""

from __future__ import annotations

import random
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safe_bedrock import InvalidModelIdError, ModelNotAllowedError, SafeBedrockClient, guard
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, NO_BOTOCORE_RETRIES, messages, safe_client
from tests.reliability.relhelpers import scaled

# Synthetic ids test matching semantics; UnknownModelWarning has its own tests (test_allowlist_catalog.py).
pytestmark = pytest.mark.filterwarnings("ignore::safe_bedrock.errors.UnknownModelWarning")

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
SEEDS = [*sorted(ALLOWED_EXACT), "meta.llama3-8b-instruct-v1:0"]

CORPUS_SIZE = scaled(20_000)
HYPOTHESIS_EXAMPLES = scaled(1_500)

CONFUSABLES = {
    "a": ["а", "ɑ", "ａ"],  # noqa: RUF001 - Cyrillic a, Latin alpha, fullwidth a: the point of the test
    "e": ["е", "ё"],  # noqa: RUF001
    "o": ["о", "ο", "0"],  # noqa: RUF001
    "c": ["с", "ϲ"],  # noqa: RUF001
    "i": ["і", "ı", "1", "l"],  # noqa: RUF001
    "l": ["1", "I", "ӏ"],  # noqa: RUF001
    "m": ["rn", "ｍ"],  # noqa: RUF001
    ".": ["․", "。", "．"],  # noqa: RUF001
    "-": ["‐", "‑", "–", "−", "_"],  # noqa: RUF001
    ":": ["꞉", "：", "ː"],  # noqa: RUF001
    "/": ["∕", "⁄", "／", "\\"],  # noqa: RUF001
    "1": ["l", "I", "１"],  # noqa: RUF001
    "0": ["O", "о"],  # noqa: RUF001
}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u2060", "\u202e"]
WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2028", "\u3000"]
CONTROL = ["\x00", "\x01", "\x1b", "\x7f"]
REGIONS = ["us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "cn-north-1", "us-gov-west-1", ""]
PARTITIONS = ["aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "AWS", "aws-xx"]
ACCOUNTS = ["210987654321", "000000000000", "12345678901", "1234567890123", "*", "?????????????"]
PREFIXES = ["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.", "US.", "us..", ".us."]
RESOURCE_TYPES = [
    "foundation-model",
    "inference-profile",
    "application-inference-profile",
    "provisioned-model",
    "custom-model",
    "imported-model",
    "prompt",
    "Foundation-Model",
]
TRAVERSAL = ["../", "./", "/..", "/.", "..%2F", "%2e%2e/", "..\\", "/../../", "%2F..%2F"]


def _allowed(model_id: str) -> bool:
    return (
        model_id in ALLOWED_EXACT
        or WILDCARD_ORACLE.fullmatch(model_id) is not None
        or PROFILE_ORACLE.fullmatch(model_id) is not None
    )


# --- the near-miss operators: each maps a seed to some variants ---------------------------------------------

Operator = Callable[[str, random.Random], list[str]]


def _case(seed: str, rng: random.Random) -> list[str]:
    i = rng.randrange(len(seed))
    flipped = seed[:i] + seed[i].swapcase() + seed[i + 1 :]
    return [seed.upper(), seed.swapcase(), seed.title(), seed.capitalize(), flipped]


def _confusable(seed: str, rng: random.Random) -> list[str]:
    out = []
    for ch, lookalikes in CONFUSABLES.items():
        if ch in seed:
            out.append(seed.replace(ch, rng.choice(lookalikes), 1))
            positions = [i for i, c in enumerate(seed) if c == ch]
            i = rng.choice(positions)
            out.append(seed[:i] + rng.choice(lookalikes) + seed[i + 1 :])
    return out


def _encoded(seed: str, _rng: random.Random) -> list[str]:
    return [
        seed.replace(":", "%3A"),
        seed.replace(":", "%3a"),
        seed.replace("/", "%2F"),
        seed.replace("/", "%252F"),
        seed.replace(".", "%2E"),
        urllib.parse.quote(seed, safe=""),
        urllib.parse.quote(urllib.parse.quote(seed, safe=""), safe=""),
        seed.replace("-", "%2D"),
        seed + "%00",
        seed.replace("/", "\\/"),
        seed.replace(":", "&#58;"),
    ]


def _traversal(seed: str, rng: random.Random) -> list[str]:
    piece = rng.choice(TRAVERSAL)
    i = rng.randrange(len(seed) + 1)
    return [piece + seed, seed + "/" + piece + "x", seed[:i] + piece + seed[i:], f"x/{piece}{seed}"]


def _whitespace(seed: str, rng: random.Random) -> list[str]:
    space = rng.choice(WHITESPACE + INVISIBLE + CONTROL)
    i = rng.randrange(len(seed) + 1)
    return [space + seed, seed + space, seed[:i] + space + seed[i:], f" {seed} "]


def _region(seed: str, rng: random.Random) -> list[str]:
    region = rng.choice(REGIONS)
    out = [seed.replace("us-east-1", region)] if "us-east-1" in seed else []
    out.append(f"arn:aws:bedrock:{region}::foundation-model/{seed.rsplit('/', 1)[-1]}")
    return out


def _partition(seed: str, rng: random.Random) -> list[str]:
    bare = seed.rsplit("/", 1)[-1]
    partition = rng.choice(PARTITIONS)
    out = [seed.replace("arn:aws:", f"arn:{partition}:")] if seed.startswith("arn:aws:") else []
    out.extend(
        [
            f"arn:{partition}:bedrock:us-east-1::foundation-model/{bare}",
            f"arn:aws:bedrock-runtime:us-east-1::foundation-model/{bare}",
            f"arn:aws:sagemaker:us-east-1::foundation-model/{bare}",
            f"ARN:aws:bedrock:us-east-1::foundation-model/{bare}",
        ]
    )
    return out


def _account(seed: str, rng: random.Random) -> list[str]:
    bare = seed.rsplit("/", 1)[-1]
    account = rng.choice(ACCOUNTS)
    out = [seed.replace("123456789012", account)] if "123456789012" in seed else []
    out.append(f"arn:aws:bedrock:us-east-1:{account}:foundation-model/{bare}")
    out.append(f"arn:aws:bedrock:us-east-1:{account}:inference-profile/{bare}")
    return out


def _resource_type(seed: str, rng: random.Random) -> list[str]:
    bare = seed.rsplit("/", 1)[-1]
    kind = rng.choice(RESOURCE_TYPES)
    return [
        f"arn:aws:bedrock:us-east-1::{kind}/{bare}",
        f"arn:aws:bedrock:us-east-1:123456789012:{kind}/{bare}",
        f"arn:aws:bedrock:us-east-1:123456789012:{kind}/{bare}/extra",
    ]


def _profile_prefix(seed: str, rng: random.Random) -> list[str]:
    bare = seed.rsplit("/", 1)[-1]
    stripped = bare.split(".", 1)[1] if bare.startswith(("us.", "eu.", "global.")) else bare
    prefix = rng.choice(PREFIXES)
    return [
        prefix + stripped,
        prefix + bare,
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{prefix}{stripped}",
        f"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/{stripped}",
        stripped,
    ]


def _wildcards(seed: str, rng: random.Random) -> list[str]:
    i = rng.randrange(len(seed) + 1)
    return [seed[:i] + "*", seed[:i] + "?" + seed[i + 1 :], "*", "?", seed + "*", "meta.llama3-*", "%2A"]


def _edits(seed: str, rng: random.Random) -> list[str]:
    i = rng.randrange(len(seed))
    j = rng.randrange(len(seed) + 1)
    char = rng.choice("abcdefghijklmnopqrstuvwxyz0123456789.-:_/@#?&=+ ")
    return [
        seed[:-1],
        seed + "0",
        seed + ":1",
        seed[:i] + seed[i + 1 :],
        seed[:j] + char + seed[j:],
        seed[:i] + char + seed[i + 1 :],
        seed + seed,
        seed[:i],
        seed + "?x=1",
        seed + "#frag",
        seed * rng.randrange(2, 40),
    ]


OPERATORS: tuple[Operator, ...] = (
    _case,
    _confusable,
    _encoded,
    _traversal,
    _whitespace,
    _region,
    _partition,
    _account,
    _resource_type,
    _profile_prefix,
    _wildcards,
    _edits,
)


def corpus(size: int, *, seed: int = 20240307) -> list[str]:
    """At least `size` distinct ids: every operator on every seed, then stacked operators at random."""
    rng = random.Random(seed)
    ids: dict[str, None] = dict.fromkeys(SEEDS)
    for base in SEEDS:
        for operator in OPERATORS:
            ids.update(dict.fromkeys(operator(base, rng)))
    pool = list(ids)
    while len(ids) < size:
        current = rng.choice(pool) if rng.random() < 0.7 else rng.choice(SEEDS)
        for _ in range(rng.randrange(1, 4)):
            variants = rng.choice(OPERATORS)(current or "x", rng)
            if variants:
                current = rng.choice(variants)
        if current not in ids:
            ids[current] = None
            pool.append(current)
    return list(ids)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[*sorted(ALLOWED_EXACT), WILDCARD])


@pytest.fixture(scope="module")
def session_client(fake: FakeBedrock) -> Any:
    """A plain boto3 client, as a framework builds it, from a session guarded with the same allowlist."""
    session = guard(fake.session(), allow=[*sorted(ALLOWED_EXACT), WILDCARD])
    return session.client("bedrock-runtime", config=NO_BOTOCORE_RETRIES)


def _send(client: Any, model_id: str) -> str:
    """Calls converse; returns "refused", "sent" or "failed" (the fake itself answered with an error)."""
    try:
        client.converse(modelId=model_id, messages=messages())
    except (InvalidModelIdError, ModelNotAllowedError):
        return "refused"
    except Exception:  # noqa: BLE001 - the fake may reject odd ids: what matters is what was sent
        return "failed"
    return "sent"


def test_the_corpus_holds_every_kind_of_near_miss() -> None:
    ids = corpus(CORPUS_SIZE)
    assert len(ids) >= CORPUS_SIZE
    assert len(set(ids)) == len(ids)
    joined = "\n".join(ids)
    for marker in (
        "%2F",
        "../",
        "\u200b",
        "\u0430nthropic",  # Cyrillic a
        "arn:aws-cn:",
        "us-west-2",
        "210987654321",
        "eu.",
        "*",
    ):
        assert marker in joined, marker


def _send_corpus(fake: FakeBedrock, client: Any) -> tuple[dict[str, int], list[str]]:
    """Sends every id of the corpus; returns the outcomes and the model ids the fake received."""
    fake.reset()
    outcomes = {"refused": 0, "sent": 0, "failed": 0}
    for model_id in corpus(CORPUS_SIZE):
        outcomes[_send(client, model_id)] += 1
    return outcomes, [request.model_id or "" for request in fake.requests]


@pytest.mark.parametrize("through", ["SafeBedrockClient", "guarded session"])
def test_no_id_of_twenty_thousand_near_misses_outside_the_allowlist_is_ever_sent(
    fake: FakeBedrock, client: SafeBedrockClient, session_client: Any, through: str
) -> None:
    # Through a guarded session the ids are decided only on the wire: botocore serialises and signs each,
    # and the check reads the model back from the URL the request is about to be sent to.
    outcomes, sent = _send_corpus(fake, client if through == "SafeBedrockClient" else session_client)

    assert sorted({model_id for model_id in sent if not _allowed(model_id)}) == []
    # Deny by default is not "deny everything": the allowed ids themselves went through.
    assert set(SEEDS) <= set(sent)
    if through == "SafeBedrockClient":  # its errors are all typed: every id is counted exactly once
        assert outcomes["sent"] + outcomes["failed"] == len(sent)
        assert outcomes["refused"] == sum(outcomes.values()) - len(sent)


model_ids = st.one_of(
    st.sampled_from(SEEDS).flatmap(
        lambda seed: st.randoms(use_true_random=False).flatmap(
            lambda rng: (
                st.sampled_from(OPERATORS).map(lambda op: op(seed, rng)).filter(bool).flatmap(st.sampled_from)
            )
        )
    ),
    st.sampled_from(SEEDS),
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9.:/*?\-]{1,60}", fullmatch=True),
    st.builds(
        lambda prefix, kind, account, bare: f"{prefix}:bedrock:us-east-1:{account}:{kind}/{bare}",
        st.sampled_from(["arn:aws", "arn:aws-cn", "arn:aws-us-gov", "arn:AWS"]),
        st.sampled_from(RESOURCE_TYPES),
        st.sampled_from(["", "123456789012", *ACCOUNTS]),
        st.sampled_from([HAIKU, PROFILE, "meta.llama3-8b-instruct-v1:0", "meta.llama3-*"]),
    ),
)


@settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model_id=model_ids)
def test_no_generated_id_outside_the_allowlist_is_ever_sent(
    fake: FakeBedrock, client: SafeBedrockClient, model_id: str
) -> None:
    before = len(fake.requests)
    if _send(client, model_id) == "refused":
        assert len(fake.requests) == before
        return
    sent = fake.requests[before:]
    assert all(_allowed(request.model_id or "") for request in sent), (model_id, sent)


# --- random allowlists -------------------------------------------------------------------------------------

FAMILY = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-opus-20240229-v1:0",
    "meta.llama3-8b-instruct-v1:0",
    "meta.llama3-70b-instruct-v1:0",
    "amazon.titan-text-express-v1",
    "amazon.nova-pro-v1:0",
    "mistral.mistral-large-2402-v1:0",
]
ARN = "arn:aws:bedrock:us-east-1::foundation-model/"


def _entry_pattern(entry: str) -> re.Pattern[str]:
    # IAM wildcards on the bare foundation-model id: * any run of characters, everything else literal.
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in entry))


entries = st.one_of(
    st.sampled_from(FAMILY),
    # A prefix that pins the provider (anything shorter needs allow_any=True), then a wildcard.
    st.tuples(st.sampled_from(FAMILY), st.integers(min_value=0, max_value=22)).map(
        lambda pair: pair[0][: pair[0].index(".") + 1 + pair[1]] + "*"
    ),
)


@pytest.fixture(scope="module")
def shared_boto3_client(fake: FakeBedrock) -> Any:
    return fake.client(config=NO_BOTOCORE_RETRIES)


@settings(
    max_examples=scaled(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    allow=st.lists(entries, min_size=1, max_size=5),
    tried=st.lists(
        st.one_of(
            st.sampled_from(FAMILY),
            st.sampled_from(FAMILY).map(lambda bare: ARN + bare),
            st.sampled_from(FAMILY).map(lambda bare: "us." + bare),
            st.sampled_from(FAMILY).map(str.upper),
            st.sampled_from(FAMILY).map(lambda bare: bare[:-1]),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_a_random_allowlist_lets_through_exactly_what_its_entries_cover(
    fake: FakeBedrock, shared_boto3_client: Any, allow: list[str], tried: list[str]
) -> None:
    patterns = [_entry_pattern(entry) for entry in allow]

    def covered(model_id: str) -> bool:
        bare = model_id.removeprefix(ARN)
        return "/" not in bare and any(p.fullmatch(bare) for p in patterns)

    fake.reset()
    client = SafeBedrockClient(allow=allow, client=shared_boto3_client)
    for model_id in tried:
        _send(client, model_id)
    sent = [request.model_id or "" for request in fake.requests]
    assert all(covered(model_id) for model_id in sent), (allow, sent)
    # Deny by default never means "deny everything": every well-formed id the entries cover is sent.
    well_formed = {*FAMILY, *(ARN + bare for bare in FAMILY)}
    assert sorted(m for m in sent if m in well_formed) == sorted(
        m for m in tried if m in well_formed and covered(m)
    ), (allow, tried, sent)
