"""Decided twice: whatever happens between the method call and the socket, no refused model is sent.

Every test counts what reached the fake (its request log), never what the library says of itself. The
in-process fake sits where the HTTP session would be, after every botocore event handler, so what it
records is what would have left the process; a subset runs over real sockets against FakeBedrockServer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

import safe_bedrock
from safe_bedrock import InvalidModelIdError, ModelNotAllowedError, SafeBedrockClient, guard
from safe_bedrock._client import PASS_THROUGH
from safe_bedrock._service import operation_specs
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.clienthelpers import HAIKU, LLAMA, NO_BOTOCORE_RETRIES, messages

REFUSED = LLAMA


def _rewrite_params(params: dict[str, Any], **_: Any) -> None:
    params["modelId"] = REFUSED


def _rewrite_request_dict(params: dict[str, Any], **_: Any) -> None:
    # before-call hands over the request dict: botocore has already built the URL from modelId.
    params["url_path"] = params["url_path"].replace(quote(HAIKU, safe=""), quote(REFUSED, safe=""))
    params["url"] = params["url"].replace(quote(HAIKU, safe=""), quote(REFUSED, safe=""))


def _rewrite_url(request: Any, **_: Any) -> None:
    request.url = request.url.replace(quote(HAIKU, safe=""), quote(REFUSED, safe=""))


def _rewrite_host(request: Any, **_: Any) -> None:
    scheme, _, rest = request.url.partition("://")
    request.url = f"{scheme}://elsewhere.example.invalid/{rest.partition('/')[2]}"


def _rewrite_path_to_unknown(request: Any, **_: Any) -> None:
    request.url = request.url.replace("/converse", "/converse-v2")


# Every event botocore emits for a call before the request leaves, with a handler that rewrites the model,
# the URL or the body at that point.
REWRITES: list[tuple[str, Callable[..., None]]] = [
    ("provide-client-params", _rewrite_params),
    ("before-parameter-build", _rewrite_params),
    ("before-call", _rewrite_request_dict),
    ("request-created", _rewrite_url),
    ("before-sign", _rewrite_url),
    ("before-send", _rewrite_url),
    ("before-send", _rewrite_host),
    ("before-send", _rewrite_path_to_unknown),
]
REGISTER = ["register_first", "register", "register_last"]


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


def _converse(client: Any, model_id: str = HAIKU) -> Any:
    return client.converse(modelId=model_id, messages=messages())


@pytest.mark.parametrize("how", REGISTER)
@pytest.mark.parametrize(("event", "handler"), REWRITES, ids=lambda v: getattr(v, "__name__", v))
def test_a_handler_that_rewrites_the_request_after_the_check_sends_nothing(
    fake: FakeBedrock, event: str, handler: Callable[..., None], how: str
) -> None:
    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))
    getattr(client.meta.events, how)(f"{event}.bedrock-runtime.Converse", handler)

    with pytest.raises(ModelNotAllowedError):
        _converse(client)

    assert fake.requests == []


@pytest.mark.parametrize(("event", "handler"), REWRITES, ids=lambda v: getattr(v, "__name__", v))
def test_a_rewriting_handler_on_a_guarded_boto3_client_sends_nothing(
    fake: FakeBedrock, event: str, handler: Callable[..., None]
) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    client.meta.events.register(f"{event}.bedrock-runtime", handler)

    with pytest.raises(ModelNotAllowedError):
        _converse(client)

    assert fake.requests == []


def test_the_same_handlers_on_an_allowed_rewrite_let_the_call_through(fake: FakeBedrock) -> None:
    # The check reads the request back: a rewrite to another allowed model is a call like any other.
    client = SafeBedrockClient(allow=[HAIKU, REFUSED], client=fake.client(config=NO_BOTOCORE_RETRIES))
    client.meta.events.register("before-send.bedrock-runtime", _rewrite_url)

    _converse(client)

    assert [request.model_id for request in fake.requests] == [REFUSED]


def test_a_rewritten_start_async_invoke_body_sends_nothing(fake: FakeBedrock) -> None:
    # StartAsyncInvoke carries modelId in the JSON body, not in the path.
    def rewrite_body(request: Any, **_: Any) -> None:
        body = json.loads(request.body)
        body["modelId"] = REFUSED
        request.body = json.dumps(body).encode()

    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))
    client.meta.events.register("before-send.bedrock-runtime", rewrite_body)

    with pytest.raises(ModelNotAllowedError):
        client.start_async_invoke(
            modelId=HAIKU,
            modelInput={"prompt": "hi"},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://bucket/out"}},
        )

    assert fake.requests == []


def test_calls_on_the_wrapped_client_itself_are_checked_on_the_wire(fake: FakeBedrock) -> None:
    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))

    with pytest.raises(ModelNotAllowedError):
        _converse(client.client, REFUSED)
    _converse(client.client)

    assert [request.model_id for request in fake.requests] == [HAIKU]


# --- presigned URLs ----------------------------------------------------------------------------------------


def test_presigning_a_refused_model_raises_and_mints_no_url(fake: FakeBedrock) -> None:
    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))

    with pytest.raises(ModelNotAllowedError) as caught:
        client.generate_presigned_url("invoke_model", Params={"modelId": REFUSED, "body": b"{}"})
    url = client.generate_presigned_url("invoke_model", Params={"modelId": HAIKU, "body": b"{}"})

    assert caught.value.model_id == REFUSED
    assert quote(HAIKU, safe="") in url
    assert "X-Amz-Signature=" in url


def test_presigning_on_a_guarded_boto3_client_is_decided_like_a_call(fake: FakeBedrock) -> None:
    client = guard(fake.client(), allow=[HAIKU])

    with pytest.raises(ModelNotAllowedError):
        client.generate_presigned_url("converse", Params={"modelId": REFUSED, "messages": messages()})
    client.meta.events.register("before-sign.bedrock-runtime", _rewrite_url)
    with pytest.raises(ModelNotAllowedError):  # a signing handler cannot change the model either
        client.generate_presigned_url("converse", Params={"modelId": HAIKU, "messages": messages()})


def test_an_operation_whose_model_travels_in_the_body_is_never_presigned(fake: FakeBedrock) -> None:
    # A presigned URL carries no body, and whoever holds it may send any: the model could not be decided.
    client = guard(fake.client(), allow=[HAIKU])

    with pytest.raises(ModelNotAllowedError, match="travels in the body"):
        client.generate_presigned_url(
            "start_async_invoke",
            Params={
                "modelId": HAIKU,
                "modelInput": {},
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o"}},
            },
        )


def test_members_that_cannot_address_a_model_pass_through(fake: FakeBedrock) -> None:
    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))

    assert client.can_paginate("list_async_invokes") is True
    pages = list(client.get_paginator("list_async_invokes").paginate())
    assert [page["ResponseMetadata"]["HTTPStatusCode"] for page in pages] == [200]
    assert client.exceptions.AccessDeniedException is client.client.exceptions.AccessDeniedException
    assert client.meta.region_name == "us-east-1"


# --- guard(): what apps and frameworks build ---------------------------------------------------------------


def test_guard_on_a_boto3_session_guards_every_client_created_from_it_later(fake: FakeBedrock) -> None:
    session = guard(fake.session(), allow=[HAIKU])
    first, second = session.client("bedrock-runtime"), session.client("bedrock-runtime")

    for client in (first, second):
        with pytest.raises(ModelNotAllowedError):
            _converse(client, REFUSED)
        _converse(client)

    assert [request.model_id for request in fake.requests] == [HAIKU, HAIKU]


def test_guard_on_a_botocore_session_guards_its_clients(fake: FakeBedrock) -> None:
    core = botocore.session.Session()
    guard(core, allow=[HAIKU])
    client = fake.attach(
        core.create_client(
            "bedrock-runtime",
            region_name="us-east-1",
            aws_access_key_id="AKIAFAKE",
            aws_secret_access_key="fake",
        )
    )

    with pytest.raises(ModelNotAllowedError):
        _converse(client, REFUSED)

    assert fake.requests == []


def test_a_refusal_through_guard_is_the_typed_error_boto3_code_already_catches(fake: FakeBedrock) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        _converse(client, REFUSED)

    assert isinstance(caught.value, ClientError)
    assert isinstance(caught.value, ModelNotAllowedError)
    assert caught.value.entry_to_add == REFUSED


def test_guard_refuses_a_malformed_id_on_the_wire_as_invalid(fake: FakeBedrock) -> None:
    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])

    with pytest.raises(InvalidModelIdError):
        _converse(client, "anthropic.claude-3-haiku-20240307-v1:0/../x")

    assert fake.requests == []


def test_guard_takes_only_a_bedrock_runtime_client_or_a_session() -> None:
    s3 = boto3.session.Session(region_name="us-east-1").client("s3")

    with pytest.raises(TypeError, match="bedrock-runtime"):
        guard(s3, allow=[HAIKU])
    with pytest.raises(TypeError, match="client or session"):
        guard(object(), allow=[HAIKU])


@pytest.mark.parametrize("order", ["broad first", "narrow first"])
def test_guarding_twice_applies_both_allowlists(fake: FakeBedrock, order: str) -> None:
    allowlists = [[HAIKU, REFUSED], [HAIKU]]
    first, second = allowlists if order == "broad first" else allowlists[::-1]
    client = guard(guard(fake.client(), allow=first), allow=second)

    with pytest.raises(ModelNotAllowedError):
        _converse(client, REFUSED)
    _converse(client)

    assert [request.model_id for request in fake.requests] == [HAIKU]


def test_guard_is_exported() -> None:
    assert safe_bedrock.guard is guard


# --- the real wire -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "handler"), REWRITES[3:6], ids=lambda v: getattr(v, "__name__", v))
def test_over_real_sockets_a_rewritten_request_never_reaches_the_server(
    event: str, handler: Callable[..., None]
) -> None:
    with FakeBedrockServer() as server:
        client = SafeBedrockClient(
            allow=[HAIKU], client=server.client(region_name="us-east-1", config=NO_BOTOCORE_RETRIES)
        )
        client.meta.events.register(f"{event}.bedrock-runtime", handler)
        with pytest.raises(ModelNotAllowedError):
            _converse(client)
        client.meta.events.unregister(f"{event}.bedrock-runtime", handler)
        _converse(client)

        assert [request.model_id for request in server.requests] == [HAIKU]


def test_over_real_sockets_a_guarded_session_sends_only_allowed_models() -> None:
    with FakeBedrockServer() as server:
        session = guard(server.session(region_name="us-east-1"), allow=[HAIKU])
        client = session.client("bedrock-runtime", endpoint_url=server.endpoint_url)
        for model_id in (REFUSED, f"us.{HAIKU}"):
            with pytest.raises(ModelNotAllowedError):
                _converse(client, model_id)
        _converse(client)

        assert [request.model_id for request in server.requests] == [HAIKU]


def test_clients_sharing_one_boto3_client_each_keep_their_own_allowlist(fake: FakeBedrock) -> None:
    shared = fake.client(config=NO_BOTOCORE_RETRIES)
    haiku_only = SafeBedrockClient(allow=[HAIKU], client=shared)
    llama_only = SafeBedrockClient(allow=[REFUSED], client=shared)

    _converse(haiku_only)
    _converse(llama_only, REFUSED)
    with pytest.raises(ModelNotAllowedError):
        _converse(haiku_only, REFUSED)
    with pytest.raises(ModelNotAllowedError):  # called directly, a request must satisfy every wrapper
        _converse(shared, HAIKU)

    assert [request.model_id for request in fake.requests] == [HAIKU, REFUSED]


def test_only_the_documented_members_pass_through_the_wrapper(fake: FakeBedrock) -> None:
    client = SafeBedrockClient(allow=[HAIKU], client=fake.client(config=NO_BOTOCORE_RETRIES))

    with pytest.raises(AttributeError, match="generate_presigned_url"):
        client.not_a_member  # noqa: B018 - the lookup is the test
    public = {name for name in dir(client.client) if not name.startswith("_")}
    operations = set(operation_specs(client.meta.service_model))
    # Drop-in: every public member of the boto3 client is an operation or passes through.
    assert public - operations == PASS_THROUGH
    assert all(getattr(client, name) is not None for name in PASS_THROUGH)


def test_a_method_instrumented_on_the_instance_keeps_running_under_the_guard() -> None:
    import types

    from safe_bedrock import guard
    from safe_bedrock.testing import FakeBedrock

    seen: list[str] = []
    with FakeBedrock() as fake:
        fake.add_response(text="hi")
        client = fake.client()
        original = client._make_api_call

        def instrumented(self: object, operation: str, params: dict[str, object]) -> object:
            seen.append(operation)
            return original(operation, params)

        client._make_api_call = types.MethodType(instrumented, client)
        guard(client, allow=["anthropic.claude-3-haiku-20240307-v1:0"])
        client.converse(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            messages=[{"role": "user", "content": [{"text": "x"}]}],
        )
        with pytest.raises(ModelNotAllowedError):
            client.converse(modelId="meta.llama3-70b-instruct-v1:0", messages=[])
        assert seen == ["Converse", "Converse"]  # the instrumentation saw both; only the allowed one left
        assert len(fake.requests) == 1
