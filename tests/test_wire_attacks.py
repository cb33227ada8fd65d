"""Attacks on the wire check: each test asserts the promise, so a successful attack is a failing test.

The promise (README, "The guard: what it promises"): no request for a model outside the allowlist leaves
through a guarded client or session, by any path. Every test counts what reached the fake's request log
(in-process `FakeBedrock`, or `FakeBedrockServer` over real sockets), never what the library says.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import botocore.signers
import pytest
from botocore.config import Config

from safe_bedrock import (
    InvalidModelIdError,
    ModelAllowlist,
    ModelNotAllowedError,
    RetryConfig,
    SafeBedrockClient,
    SafeBedrockError,
    guard,
)
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.clienthelpers import HAIKU, LLAMA, NO_BOTOCORE_RETRIES, messages

REFUSED = LLAMA
Q_HAIKU, Q_REFUSED = quote(HAIKU, safe=""), quote(REFUSED, safe="")
ASYNC_ARGS: dict[str, Any] = {
    "modelInput": {"prompt": "hi"},
    "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket/out"}},
}


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


def _converse(client: Any, model_id: str = HAIKU) -> Any:
    return client.converse(modelId=model_id, messages=messages())


def _sent_refused(requests: list[Any]) -> list[object]:
    """Every trace of a refused model in the log: the path's model, the body's modelId, the raw bytes."""
    found: list[object] = []
    for request in requests:
        if request.model_id not in (None, HAIKU):
            found.append(request.model_id)
        if isinstance(request.json, dict) and request.json.get("modelId") not in (None, HAIKU):
            found.append(request.json.get("modelId"))
        if REFUSED.encode() in (request.body or b"") or Q_REFUSED in request.path.partition("?")[0]:
            found.append(("raw", request.path, bytes(request.body[:120])))
    return found


def _to_refused(request: Any, **_: Any) -> None:
    request.url = request.url.replace(Q_HAIKU, Q_REFUSED)


def _attempt(call: Callable[[], Any]) -> None:
    """Run a call that may be refused; the assertion is on the fake's log, not on what was raised."""
    with contextlib.suppress(SafeBedrockError):
        call()


# --- 1. lifetime: the wire check on a wrapped client is keyed by a weak reference to its shell --------------


def test_the_wrapped_client_stays_guarded_after_its_shell_is_dropped(fake: FakeBedrock) -> None:
    # README: "Calls made on the wrapped boto3 client directly (`client.client.converse(...)`) are checked on
    # the wire too." A framework handed `SafeBedrockClient(...).client` keeps only the boto3 client, and the
    # shell (the only key of its wire rules, in a WeakKeyDictionary) is collected at once.
    inner = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES)).client

    _attempt(lambda: _converse(inner, REFUSED))

    assert _sent_refused(fake.requests) == []


def test_a_client_the_shell_built_stays_guarded_after_the_shell_is_dropped(fake: FakeBedrock) -> None:
    # As in ChatBedrockConverse(client=SafeBedrockClient(allow=..., session=...).client).
    inner = SafeBedrockClient(allow=[HAIKU], session=fake.session(), config=NO_BOTOCORE_RETRIES).client
    gc.collect()

    _attempt(lambda: _converse(inner, REFUSED))

    assert _sent_refused(fake.requests) == []


def test_a_kept_bound_method_keeps_the_wire_check(fake: FakeBedrock) -> None:
    # The method-level check lives in the cached method closure, which does not keep the shell alive; once
    # the shell is collected, a rewriting handler is no longer caught on the wire.
    raw = fake.client(config=NO_BOTOCORE_RETRIES)
    converse = SafeBedrockClient(allow=[HAIKU], client=raw).converse
    gc.collect()
    raw.meta.events.register("before-send.bedrock-runtime", _to_refused)

    _attempt(lambda: converse(modelId=HAIKU, messages=messages()))

    assert _sent_refused(fake.requests) == []


# --- 2. presigning through botocore's own (public) function, not the instance attribute ---------------------


@pytest.mark.parametrize(
    "presign",
    [
        lambda client, *a, **k: type(client).generate_presigned_url(client, *a, **k),
        botocore.signers.generate_presigned_url,
    ],
    ids=["class-attribute", "botocore.signers"],
)
def test_a_presigned_url_for_a_refused_model_cannot_be_minted_and_used(presign: Callable[..., str]) -> None:
    with FakeBedrockServer() as server:
        client = guard(server.client(region_name="us-east-1", config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
        try:
            url = presign(client, "invoke_model", Params={"modelId": REFUSED, "body": b"{}"})
        except SafeBedrockError:
            url = None
        if url is not None:  # whoever holds the URL sends it, as a presigned URL is meant to be used
            request = urllib.request.Request(url, data=b'{"prompt": "hi"}', method="POST")  # noqa: S310
            with urllib.request.urlopen(request) as response:  # noqa: S310 - the local fake server
                response.read()

        assert _sent_refused(server.requests) == []


# --- 3. objects that read differently to the check and to the transport -------------------------------------


class _LyingBytes(bytes):
    """Bytes whose `decode` (what json.loads calls) shows an allowed body; the socket sends the real ones."""

    def decode(self, *_: Any, **__: Any) -> str:  # type: ignore[override]
        return json.dumps({"modelId": HAIKU, **ASYNC_ARGS})


def _lying_body(request: Any, **_: Any) -> None:
    # request-created runs before signing: the signature covers the real (refused) bytes, as AWS would check.
    body = json.loads(request.data)
    body["modelId"] = REFUSED
    request.data = _LyingBytes(json.dumps(body).encode())


def test_a_bytes_subclass_body_cannot_show_the_check_another_model() -> None:
    with FakeBedrockServer() as server:
        client = guard(server.client(region_name="us-east-1", config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
        client.meta.events.register("request-created.bedrock-runtime", _lying_body)

        _attempt(lambda: client.start_async_invoke(modelId=HAIKU, **ASYNC_ARGS))

        assert _sent_refused(server.requests) == []


class _LyingURL(str):
    """A URL whose first `lstrip` (the first urlsplit: the wire check's) shows the allowed model."""

    reads = 0

    def __hash__(self) -> int:  # defeats urlsplit's lru_cache
        _LyingURL.reads += 1
        return _LyingURL.reads

    def lstrip(self, *_: Any) -> str:  # type: ignore[override]
        _LyingURL.reads += 1000
        text = str.__str__(self)
        return text.replace(Q_REFUSED, Q_HAIKU) if _LyingURL.reads < 2000 else text


def test_a_str_subclass_url_cannot_show_the_check_another_model() -> None:
    _LyingURL.reads = 0

    def lying_url(request: Any, **_: Any) -> None:
        request.url = _LyingURL(request.url.replace(Q_HAIKU, Q_REFUSED))

    with FakeBedrockServer() as server:
        client = guard(server.client(region_name="us-east-1", config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
        client.meta.events.register("before-send.bedrock-runtime", lying_url)

        _attempt(lambda: _converse(client))

        assert _sent_refused(server.requests) == []


def test_a_thread_cannot_change_the_request_between_the_check_and_the_send(fake: FakeBedrock) -> None:
    # Plain str values: the check reads request.url, then the transport reads it again. A thread flipping it
    # lands between the two reads in a fraction of the calls.
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    latest: list[Any] = []
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            if latest:
                request = latest[-1]
                request.url = request.url.replace(Q_HAIKU, Q_REFUSED)
                request.url = request.url.replace(Q_REFUSED, Q_HAIKU)

    client.meta.events.register("before-send.bedrock-runtime", lambda request, **_: latest.append(request))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline and not _sent_refused(fake.requests[-1:]):
            _attempt(lambda: _converse(client))
    finally:
        stop.set()
        flipper.join()
        sys.setswitchinterval(interval)

    assert _sent_refused(fake.requests) == []


# --- 4. bodies that parsers read differently ----------------------------------------------------------------


def _body_rewrite(prefix: str) -> Callable[..., None]:
    def rewrite(request: Any, **_: Any) -> None:
        request.data = request.data.decode().replace("{", "{" + prefix, 1).encode()

    return rewrite


@pytest.mark.parametrize(
    "prefix",
    [f'"modelId": "{REFUSED}", ', f'"ModelId": "{REFUSED}", ', f'"modelid": "{REFUSED}", '],
    ids=["duplicate-key-first-wins", "case-variant-key", "lower-case-key"],
)
def test_a_start_async_invoke_body_naming_two_models_is_refused(fake: FakeBedrock, prefix: str) -> None:
    # Python's json takes the last duplicate (the allowed one); a first-wins or case-insensitive parser on
    # the service side would read the refused one. The raw bytes carry a refused model either way.
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    client.meta.events.register("request-created.bedrock-runtime", _body_rewrite(prefix))

    _attempt(lambda: client.start_async_invoke(modelId=HAIKU, **ASYNC_ARGS))

    assert _sent_refused(fake.requests) == []


@pytest.mark.parametrize(
    "make_body",
    [
        io.BytesIO,
        bytearray,
        lambda data: data.decode(),
        lambda data: data.decode().encode("utf-16"),
        lambda data: b"\xef\xbb\xbf" + data,
        memoryview,
    ],
    ids=["file", "bytearray", "str", "utf-16", "utf-8-bom", "memoryview"],
)
def test_a_start_async_invoke_body_in_another_type_is_decided(fake: FakeBedrock, make_body: Any) -> None:
    def rewrite(request: Any, **_: Any) -> None:
        body = json.loads(request.body)
        body["modelId"] = REFUSED
        request.body = make_body(json.dumps(body).encode())

    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    client.meta.events.register("before-send.bedrock-runtime", rewrite)

    _attempt(lambda: client.start_async_invoke(modelId=HAIKU, **ASYNC_ARGS))

    assert _sent_refused(fake.requests) == []


# --- 5. URLs that parsers read differently (all refused or harmless today) ----------------------------------

HOST = "bedrock-runtime.us-east-1.fake-bedrock.invalid"
PATH = f"/model/{Q_HAIKU}/converse"
URL_REWRITES: dict[str, Callable[[str], str]] = {
    "fragment": lambda u: u.replace(PATH, f"/model/{Q_REFUSED}/converse#{PATH}"),
    "double-slash": lambda u: u.replace(PATH, f"//model/{Q_REFUSED}/converse"),
    "dot-segments": lambda u: u.replace(PATH, f"/model/{Q_HAIKU}/../{Q_REFUSED}/converse"),
    "leading-dot-segment": lambda u: u.replace(PATH, f"/x/../model/{Q_REFUSED}/converse"),
    "encoded-slash": lambda u: u.replace(PATH, f"/model/{Q_HAIKU}%2F..%2F{Q_REFUSED}/converse"),
    "semicolon-segment": lambda u: u.replace(PATH, f"/model/{Q_REFUSED};x/converse"),
    "semicolon-params": lambda u: u.replace(PATH, f"/model/{Q_REFUSED}/converse;x"),
    "trailing-slash": lambda u: u.replace(PATH, f"/model/{Q_REFUSED}/converse/"),
    "upper-case-path": lambda u: u.replace(PATH, f"/MODEL/{Q_REFUSED}/converse"),
    "lower-case-escapes": lambda u: u.replace(Q_HAIKU, Q_REFUSED.lower()),
    "tab-in-label": lambda u: u.replace(Q_HAIKU, Q_REFUSED[:4] + "\t" + Q_REFUSED[4:]),
    "newline-after-path": lambda u: u.replace(PATH, f"/model/{Q_REFUSED}/converse\n"),
    "leading-space": lambda u: " " + u.replace(Q_HAIKU, Q_REFUSED),
    "backslash": lambda u: u.replace(PATH, f"\\model/{Q_REFUSED}/converse"),
    "upper-case-host": lambda u: u.replace(HOST, HOST.upper()).replace(Q_HAIKU, Q_REFUSED),
    "explicit-port": lambda u: u.replace(HOST, HOST + ":443").replace(Q_HAIKU, Q_REFUSED),
    "userinfo": lambda u: u.replace(HOST, f"{HOST}@{HOST}").replace(Q_HAIKU, Q_REFUSED),
    "ipv6-host": lambda u: u.replace(HOST, "[::1]").replace(Q_HAIKU, Q_REFUSED),
    "absolute-path-in-query": lambda u: u.replace(PATH, f"{PATH}?x=/model/{Q_REFUSED}/converse"),
}


@pytest.mark.parametrize("rewrite", URL_REWRITES.values(), ids=URL_REWRITES.keys())
def test_an_odd_url_never_carries_a_refused_model(fake: FakeBedrock, rewrite: Callable[[str], str]) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    def handler(request: Any, **_: Any) -> None:
        request.url = rewrite(request.url)

    client.meta.events.register("before-send.bedrock-runtime", handler)

    _attempt(lambda: _converse(client))

    assert _sent_refused(fake.requests) == []


@pytest.mark.parametrize("method", ["post", "GET", None, "", "POST "])
def test_an_odd_method_never_carries_a_refused_model(fake: FakeBedrock, method: str | None) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    def handler(request: Any, **_: Any) -> None:
        request.method = method
        _to_refused(request)

    client.meta.events.register("before-send.bedrock-runtime", handler)

    _attempt(lambda: _converse(client))

    assert _sent_refused(fake.requests) == []


@pytest.mark.parametrize(
    "http_method", ["POST", "GET", "PUT"], ids=lambda m: f"presigned-list-async-invokes-as-{m}"
)
def test_presigning_a_modelless_operation_with_another_method_carries_no_model(http_method: str) -> None:
    with FakeBedrockServer() as server:
        client = guard(server.client(region_name="us-east-1"), allow=[HAIKU])
        url = _attempt(
            lambda: client.generate_presigned_url(
                "get_async_invoke",
                Params={"invocationArn": f"x/../../model/{REFUSED}/invoke"},
                HttpMethod=http_method,
            )
        )
        if isinstance(url, str):  # minted: send it as its holder would
            data = b"{}" if http_method != "GET" else None
            request = urllib.request.Request(url, data=data)  # noqa: S310 - an http URL to the local fake
            request.method = http_method
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - the local fake server

        assert _sent_refused(server.requests) == []


# --- 6. retries, sessions, shared clients -------------------------------------------------------------------


def test_a_botocore_retry_of_a_request_rewritten_only_on_the_retry_sends_nothing(fake: FakeBedrock) -> None:
    client = guard(
        fake.client(config=Config(retries={"total_max_attempts": 2, "mode": "standard"})), allow=[HAIKU]
    )
    fake.add_client_error("ThrottlingException")
    seen: list[int] = []

    def on_retry(request: Any, **_: Any) -> None:
        seen.append(1)
        if len(seen) > 1:
            _to_refused(request)

    def on_needs_retry(request_dict: dict[str, Any], **_: Any) -> None:
        request_dict["url"] = request_dict["url"].replace(Q_HAIKU, Q_REFUSED)

    client.meta.events.register("before-send.bedrock-runtime", on_retry)
    client.meta.events.register("needs-retry.bedrock-runtime", on_needs_retry)

    _attempt(lambda: _converse(client))

    assert _sent_refused(fake.requests) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"region_name": "us-west-2"}, {"endpoint_url": "https://bedrock-runtime.us-west-2.amazonaws.com"}],
    ids=["other-region", "other-endpoint"],
)
def test_a_guarded_session_guards_clients_with_overrides(fake: FakeBedrock, kwargs: dict[str, Any]) -> None:
    session = guard(fake.session(), allow=[f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"])
    client = session.client("bedrock-runtime", config=NO_BOTOCORE_RETRIES, **kwargs)

    _attempt(lambda: _converse(client))  # allowed only where the request is signed for us-east-1
    _attempt(lambda: _converse(client, REFUSED))

    # The fake reads the region from the SigV4 scope (as AWS does: a scope that does not match the host's
    # region is rejected there), so HAIKU signed for us-east-1 is the allowed ARN.
    sent = [(request.model_id, request.region) for request in fake.requests]
    assert [entry for entry in sent if entry != (HAIKU, "us-east-1")] == []


@pytest.mark.parametrize("event", ["before-call", "request-created", "before-send", "after-call"])
def test_a_direct_call_on_a_shared_client_from_inside_another_shells_call_satisfies_every_shell(
    fake: FakeBedrock, event: str
) -> None:
    # README: "several SafeBedrockClients may share one boto3 client, each with its own allowlist"; a call
    # made on the boto3 client directly must satisfy every shell wrapping it, even when it runs inside
    # the broader shell's call (a handler on the shared client, say a framework's follow-up request).
    shared = fake.client(config=NO_BOTOCORE_RETRIES)
    narrow = SafeBedrockClient(allow=[HAIKU], client=shared)
    broad = SafeBedrockClient(allow=[HAIKU, REFUSED], client=shared)
    pending = [REFUSED]

    def follow_up(**_: Any) -> None:
        if pending:
            _attempt(lambda: _converse(shared, pending.pop()))

    shared.meta.events.register(f"{event}.bedrock-runtime.Converse", follow_up)

    _attempt(lambda: _converse(narrow))
    pending.append(REFUSED)
    _converse(broad)  # its own request is decided by its own allowlist: it goes out

    assert _sent_refused(fake.requests) == []  # the nested direct calls never did
    assert [request.model_id for request in fake.requests] == [HAIKU, HAIKU]
    assert narrow is not None


def test_botocores_own_retry_of_a_shell_call_on_a_shared_client_is_decided_by_that_shell(
    fake: FakeBedrock,
) -> None:
    shared = fake.client(config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))
    with pytest.warns(UserWarning, match="retries on its own"):
        narrow = SafeBedrockClient(allow=[HAIKU], client=shared, retry=RetryConfig.disabled())
    with pytest.warns(UserWarning, match="retries on its own"):
        broad = SafeBedrockClient(allow=[HAIKU, REFUSED], client=shared, retry=RetryConfig.disabled())
    fake.add_client_error("ThrottlingException")

    broad.converse(modelId=REFUSED, messages=messages())

    assert [request.model_id for request in fake.requests] == [REFUSED, REFUSED]
    assert narrow is not None


def test_wrappers_created_while_another_thread_calls_the_shared_client_break_nothing(
    fake: FakeBedrock,
) -> None:
    shared = fake.client(config=NO_BOTOCORE_RETRIES)
    keep = SafeBedrockClient(allow=[HAIKU], client=shared)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            SafeBedrockClient(allow=[HAIKU], client=shared)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(200):
            try:
                _converse(shared)
            except Exception as exc:  # noqa: BLE001, PERF203 - any error is the finding
                errors.append(exc)
    finally:
        stop.set()
        worker.join()

    assert errors == []
    assert keep is not None


def test_handing_out_the_boto3_client_again_and_again_adds_no_check() -> None:
    with FakeBedrock() as fake:
        shared = fake.client(config=NO_BOTOCORE_RETRIES)
        allowlist = ModelAllowlist([HAIKU])
        for _ in range(50):
            SafeBedrockClient(allow=allowlist, client=shared).client  # noqa: B018 - handing it out

        assert len(shared._endpoint._safe_bedrock_wire_checks.explicit) == 1


def test_a_rewritten_host_header_is_refused(fake: FakeBedrock) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    def other_region(request: Any, **_: Any) -> None:
        request.headers["Host"] = "bedrock-runtime.us-west-2.amazonaws.com"

    client.meta.events.register("before-send.bedrock-runtime", other_region)

    with pytest.raises(ModelNotAllowedError, match="host"):
        _converse(client)
    assert fake.requests == []


@pytest.mark.parametrize("body", [b'[["modelId", "x"]]', b"[1]", b'[["modelId","a"],{"modelId":"b"}]'])
def test_a_start_async_invoke_body_that_is_no_json_object_is_refused_as_such(
    fake: FakeBedrock, body: bytes
) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    def replace(request: Any, **_: Any) -> None:
        request.body = body

    client.meta.events.register("before-send.bedrock-runtime", replace)

    with pytest.raises(InvalidModelIdError):
        client.start_async_invoke(
            modelId=HAIKU, modelInput={}, outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://b/o"}}
        )
    assert fake.requests == []


def test_a_guarded_client_is_freed_without_the_garbage_collector() -> None:
    with FakeBedrock() as fake:
        client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
        endpoint = weakref.ref(client._endpoint)
        fake.detach(client)
        gc.disable()
        try:
            del client
            assert endpoint() is None
        finally:
            gc.enable()
