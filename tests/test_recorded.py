"""Held against real Bedrock traffic: `fixtures/recorded_exchanges.json` (see `fixtures/derive_recorded.py`).

Two promises. The wrapper returns exactly what raw boto3 returns for each recorded reply, and its log event
carries the recorded token counts. The fake, asked the recorded request, answers in the recorded shape:
the same keys in the reply, the same stream event types in the same order, each event padded with `p`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import pathlib
from typing import Any

import botocore
import pytest
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.validate import validate_parameters
from clienthelpers import NO_BOTOCORE_RETRIES
from structlog.testing import capture_logs

from safe_bedrock import SafeBedrockClient
from safe_bedrock._catalog import load
from safe_bedrock._ids import base_model_id, parse_model_id
from safe_bedrock.errors import UnknownModelWarning
from safe_bedrock.testing import FakeBedrock

_FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "recorded_exchanges.json"
EXCHANGES: list[dict[str, Any]] = json.loads(_FIXTURE.read_text())["exchanges"]
_METHODS = {"Converse": "converse", "ConverseStream": "converse_stream", "CountTokens": "count_tokens"}


def _ids(exchanges: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(exchange, id=exchange["name"]) for exchange in exchanges]


def _params(node: Any, shape: Shape) -> Any:
    """The request JSON as boto3 arguments: blobs arrive base64-encoded on the wire, boto3 takes bytes."""
    if shape.type_name == "blob":
        return base64.b64decode(node)
    if shape.type_name == "structure" and isinstance(node, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {key: _params(value, members[key]) if key in members else value for key, value in node.items()}
    if shape.type_name == "list":
        return [_params(item, shape.member) for item in node]  # type: ignore[attr-defined]
    if shape.type_name == "map":
        return {key: _params(value, shape.value) for key, value in node.items()}  # type: ignore[attr-defined]
    return node


def call(client: Any, exchange: dict[str, Any]) -> Any:
    """Send the recorded request through `client`; the parsed reply, streams read to the end."""
    operation = client.meta.service_model.operation_model(exchange["operation"])
    kwargs = _params(exchange["request"], operation.input_shape)
    try:  # the oldest botocore we support predates some members recorded requests use
        validate_parameters({"modelId": exchange["model_id"], **kwargs}, operation.input_shape)
    except ParamValidationError as exc:
        pytest.skip(f"botocore {botocore.__version__} cannot send this recorded request: {exc}")
    reply = getattr(client, _METHODS[exchange["operation"]])(modelId=exchange["model_id"], **kwargs)
    reply.pop("ResponseMetadata")
    if "stream" in reply:
        reply["stream"] = list(reply["stream"])
    return reply


def outcome(client: Any, exchange: dict[str, Any]) -> Any:
    """The reply, or for an error the parsed error response (what an app's handler reads)."""
    try:
        return call(client, exchange)
    except Exception as error:  # noqa: BLE001 - compared, whatever it is
        return getattr(error, "response", error)


def script_recorded_reply(fake: FakeBedrock, exchange: dict[str, Any], *, times: int) -> None:
    if exchange["status"] != 200:
        fake.add_client_error("ValidationException", exchange["reply"]["message"], times=times)
    elif "events" in exchange:
        fake.add_stream(events=[{kind: payload} for _, kind, payload in exchange["events"]], times=times)
    else:
        fake.add_response(exchange["reply"], operation=exchange["operation"], times=times)


def _usage(exchange: dict[str, Any]) -> dict[str, Any]:
    if "reply" in exchange:
        return dict(exchange["reply"].get("usage") or {"inputTokens": exchange["reply"].get("inputTokens")})
    return next((payload["usage"] for _, kind, payload in exchange["events"] if kind == "metadata"), {})


@pytest.mark.parametrize("exchange", _ids(EXCHANGES))
def test_the_wrapper_returns_what_boto3_returns_for_a_recorded_reply(exchange: dict[str, Any]) -> None:
    fake = FakeBedrock()
    script_recorded_reply(fake, exchange, times=2)
    raw = fake.client(config=NO_BOTOCORE_RETRIES)
    # The recorded error is for a model that does not exist: allowing it warns (a typo?) but still applies.
    expected = pytest.warns(UnknownModelWarning) if exchange["status"] != 200 else contextlib.nullcontext()
    with expected:
        wrapped = SafeBedrockClient(
            allow=[exchange["model_id"]], client=fake.client(config=NO_BOTOCORE_RETRIES)
        )

    raw_outcome, wrapped_outcome = outcome(raw, exchange), outcome(wrapped, exchange)
    if exchange["status"] != 200:
        raw_outcome.pop("ResponseMetadata")
        wrapped_outcome.pop("ResponseMetadata")
    assert wrapped_outcome == raw_outcome
    assert len(fake.requests) == 2


@pytest.mark.parametrize("exchange", _ids([e for e in EXCHANGES if e["status"] == 200]))
def test_the_log_event_carries_the_recorded_token_counts(exchange: dict[str, Any]) -> None:
    fake = FakeBedrock()
    script_recorded_reply(fake, exchange, times=1)
    client = SafeBedrockClient(allow=[exchange["model_id"]], client=fake.client(config=NO_BOTOCORE_RETRIES))
    with capture_logs() as logs:
        call(client, exchange)
    (event,) = [log for log in logs if log.get("operation") == exchange["operation"]]
    usage = _usage(exchange)
    assert event["input_tokens"] == usage.get("inputTokens")
    if exchange["operation"] != "CountTokens":
        assert event["output_tokens"] == usage["outputTokens"]


def fake_for(exchange: dict[str, Any]) -> FakeBedrock:
    """The fake, serving the recorded model even if the catalog has retired it since it was recorded."""
    base = base_model_id(parse_model_id(exchange["model_id"], region="us-east-1"))
    model = load().model(base)
    return FakeBedrock(models=[base] if model is not None and model.lifecycle == "END_OF_LIFE" else [])


def _shape(node: Any) -> Any:
    """Keys and nesting, values left out: what an app's parsing code depends on."""
    if isinstance(node, dict):
        return {key: _shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_shape(item) for item in node[:1]]
    return type(node).__name__


@pytest.mark.parametrize("exchange", _ids([e for e in EXCHANGES if e["status"] == 200 and "reply" in e]))
def test_the_fake_answers_with_the_recorded_top_level_keys(exchange: dict[str, Any]) -> None:
    fake = fake_for(exchange)
    reply = call(fake.client(config=NO_BOTOCORE_RETRIES), exchange)
    assert set(reply) == set(exchange["reply"])
    if "usage" in exchange["reply"]:
        assert {"inputTokens", "outputTokens", "totalTokens"} <= set(reply["usage"])
        assert set(reply["usage"]) <= set(exchange["reply"]["usage"]) | {
            "cacheReadInputTokens",
            "cacheWriteInputTokens",
        }


_TEXT_STREAMS = [
    e
    for e in EXCHANGES
    if "events" in e and not any(kind == "contentBlockStart" for _, kind, _ in e["events"])
]


@pytest.mark.parametrize("exchange", _ids(_TEXT_STREAMS))
def test_the_fake_streams_the_recorded_event_types_in_order(exchange: dict[str, Any]) -> None:
    """A text answer: messageStart, deltas, contentBlockStop, messageStop, metadata (no contentBlockStart)."""
    fake = fake_for(exchange)
    fake.add_stream(text="one two three")
    events = call(fake.client(config=NO_BOTOCORE_RETRIES), exchange)["stream"]

    def collapsed(kinds: list[str]) -> list[str]:
        return [kind for i, kind in enumerate(kinds) if i == 0 or kind != kinds[i - 1]]

    recorded = collapsed([kind for _, kind, _ in exchange["events"]])
    first_block = recorded[: recorded.index("contentBlockStop") + 1] + recorded[-2:]
    assert collapsed([next(iter(event)) for event in events]) == first_block


@pytest.mark.parametrize("exchange", _ids([e for e in EXCHANGES if "events" in e]))
def test_every_recorded_stream_event_is_padded_and_the_fake_pads_alike(exchange: dict[str, Any]) -> None:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert all("p" in payload for _, _, payload in exchange["events"])
    fake = fake_for(exchange)
    server_events = _raw_stream_payloads(fake, exchange)
    assert server_events
    assert all("p" in payload for payload in server_events)
    assert all(alphabet.startswith(payload["p"]) for payload in server_events)
    assert len({len(payload["p"]) for payload in server_events}) > 1  # random length, as Bedrock's


def _raw_stream_payloads(fake: FakeBedrock, exchange: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON payloads as they crossed the wire (botocore drops unmodeled keys like `p` when parsing)."""
    from botocore.eventstream import EventStreamBuffer

    client = fake.client(config=NO_BOTOCORE_RETRIES)
    payloads: list[dict[str, Any]] = []

    def keep_raw(response_dict: dict[str, Any], **_: Any) -> None:
        buffer = EventStreamBuffer()
        buffer.add_data(response_dict["body"].read())
        payloads.extend(json.loads(message.payload) for message in buffer)

    client.meta.events.register("before-parse.bedrock-runtime.ConverseStream", keep_raw)
    fake.add_stream(text="one two three four five six seven eight")
    with contextlib.suppress(Exception):  # the body was read above: parsing it again fails, harmlessly
        call(client, exchange)
    return payloads
