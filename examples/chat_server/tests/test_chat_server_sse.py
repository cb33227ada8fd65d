"""The chat backend's SSE endpoint through ASGI: tokens as they come, generic errors, disconnects.

The app runs with its lifespan (the fake Bedrock server and the guarded async client inside it). Plain
requests go through httpx's ASGITransport; where timing matters (tokens arriving one by one, a browser
leaving mid-answer) the test speaks ASGI to the app itself, which shows each body message when it is sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("aiobotocore")
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from examples.chat_server.app import MODEL, NO_ACCESS_MODEL, REFUSED_MODEL, create_app  # noqa: E402
from safe_bedrock._retry import set_testing  # noqa: E402
from structlog.testing import capture_logs  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from safe_bedrock.testing import FakeBedrockServer

pytestmark = pytest.mark.anyio

SLOW_TEXT = " ".join(f"word{i}" for i in range(40))
CLOSE_TO_MODEL = MODEL.replace("-v1:0", "-v2:0")  # off the allowlist, one character from an entry on it
LOCAL_REFERENCE = re.compile(r"local-[0-9a-f]{12}")
AWS_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def app(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.delenv("SAFE_BEDROCK_LIVE", raising=False)
    app = create_app()
    with set_testing(True):
        async with app.router.lifespan_context(app):
            yield app


def fake(app: Any) -> FakeBedrockServer:
    server: FakeBedrockServer = app.state.fake
    return server


async def post(app: Any, payload: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
        return await client.post("/chat", json=payload)


def logged(logs: list[dict[str, Any]], event: str) -> dict[str, Any]:
    (entry,) = [log for log in logs if log.get("event") == event]
    return entry


def events(text: str) -> list[tuple[str, Any]]:
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


class ASGIRequest:
    """One POST /chat spoken in ASGI directly: body messages are seen as sent; `leave()` disconnects."""

    def __init__(self, app: Any, payload: object) -> None:
        self.sent: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._left = asyncio.Event()
        self._body = json.dumps(payload).encode()
        self._delivered = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/chat",
            "raw_path": b"/chat",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"chat.test")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._delivered:
            self._delivered = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self.sent.put((time.monotonic(), message))

    def leave(self) -> None:
        self._left.set()

    async def next_body(self) -> tuple[float, bytes, bool]:
        while True:
            at, message = await asyncio.wait_for(self.sent.get(), 5)
            if message["type"] == "http.response.body":
                return at, message.get("body", b""), message.get("more_body", False)


async def test_the_page_is_plain_html_with_the_models_to_try(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for model in (MODEL, NO_ACCESS_MODEL, REFUSED_MODEL):
        assert f'<option value="{model}">' in page.text
    assert "<script>" in page.text


async def test_the_answer_arrives_token_by_token_while_bedrock_streams_it(app: Any) -> None:
    fake(app).add_stream(chunks=["Hel", "lo", ", wor", "ld"], delay=0.2)
    request = ASGIRequest(app, {"message": "hi", "model": MODEL})
    start = await asyncio.wait_for(request.sent.get(), 5)
    headers = dict(start[1]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    arrivals: list[tuple[float, bytes]] = []
    more = True
    while more:
        at, body, more = await request.next_body()
        if body:
            arrivals.append((at, body))
    await request.task
    tokens = [data for kind, data in events(b"".join(b for _, b in arrivals).decode()) if kind == "token"]
    assert tokens == ["Hel", "lo", ", wor", "ld"]
    # Each token left the server in its own message, as Bedrock sent it: 0.2 s apart, not all at the end.
    token_times = [at for at, body in arrivals if body.startswith(b"event: token")]
    assert len(token_times) == 4
    assert token_times[-1] - token_times[0] >= 0.5


async def test_a_model_off_the_allowlist_is_refused_with_a_generic_message_and_a_local_reference(
    app: Any,
) -> None:
    response = await post(app, {"message": "hi", "model": REFUSED_MODEL})
    ((kind, data),) = events(response.text)
    assert kind == "error"
    assert data["error"] == "not_available"
    assert LOCAL_REFERENCE.fullmatch(data["reference"])  # nothing reached Bedrock: no request id to show
    assert data["message"] == f"This model is not available. Reference: {data['reference']}"
    assert fake(app).requests == []  # nothing was sent


@pytest.mark.parametrize("model", [REFUSED_MODEL, CLOSE_TO_MODEL])
async def test_a_refusal_shows_the_browser_nothing_of_the_allowlist_and_logs_it_under_the_same_reference(
    app: Any, model: str
) -> None:
    with capture_logs() as logs:
        response = await post(app, {"message": "hi", "model": model})
    ((_, data),) = events(response.text)
    entry = logged(logs, "chat.refused")
    assert entry["reference"] == data["reference"]
    assert entry["log_level"] == "warning"
    assert entry["error"] == "ModelNotAllowedError"
    assert entry["model_id"] == model
    assert entry["entry_to_add"] == model
    assert entry["model_arn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{model}"
    assert entry["allowlist_source"]
    assert entry["fix"] == f"add `{model}` to the allow= list the client was built with"
    if model == CLOSE_TO_MODEL:
        assert entry["closest"] == (MODEL,)
    details = [
        entry["allowlist_source"],
        *entry["closest"],
        entry["entry_to_add"],
        entry["model_arn"],
        entry["fix"],
        entry["message"],
        entry["error"],
        "allow",
    ]
    for detail in details:
        assert detail not in response.text


async def test_an_access_error_from_bedrock_shows_its_request_id_and_logs_the_fix(app: Any) -> None:
    with capture_logs() as logs:
        response = await post(app, {"message": "hi", "model": NO_ACCESS_MODEL})
    ((kind, data),) = events(response.text)
    assert kind == "error"
    assert data["error"] == "failed"
    assert AWS_REQUEST_ID.fullmatch(data["reference"])
    assert data["message"] == f"The model could not answer. Reference: {data['reference']}"
    entry = logged(logs, "chat.failed")
    assert entry["reference"] == entry["request_id"] == data["reference"]
    assert entry["error"] == "MissingPermissionError"
    assert "bedrock:InvokeModelWithResponseStream" in entry["fix"]
    assert NO_ACCESS_MODEL in entry["fix"]
    for detail in ("bedrock:", NO_ACCESS_MODEL, "MissingPermission", "AccessDenied"):
        assert detail not in response.text


async def test_an_error_mid_answer_follows_the_tokens_already_shown(app: Any) -> None:
    fake(app).add_stream_error("modelStreamErrorException", after=3, chunks=["a", "b", "c", "d", "e"])
    with capture_logs() as logs:
        response = await post(app, {"message": "hi", "model": MODEL})
    kinds = [kind for kind, _ in events(response.text)]
    assert kinds[-1] == "error"
    assert "token" in kinds
    error = events(response.text)[-1][1]
    assert error["error"] == "failed"
    entry = logged(logs, "chat.failed")
    assert entry["error"] == "ModelStreamError"
    assert entry["reference"] == error["reference"]
    assert len(fake(app).requests) == 1  # tokens were shown: never retried, never duplicated


async def test_an_unexpected_error_is_generic_on_the_page_and_logged_with_its_traceback(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(**_: Any) -> Any:
        raise RuntimeError("internal detail: /srv/app/secrets.toml")

    monkeypatch.setattr(app.state.bedrock, "converse_stream", broken)
    with capture_logs() as logs:
        response = await post(app, {"message": "hi", "model": MODEL})
    ((_, data),) = events(response.text)
    assert data["message"] == f"The model could not answer. Reference: {data['reference']}"
    assert LOCAL_REFERENCE.fullmatch(data["reference"])
    entry = logged(logs, "chat.failed")
    assert entry["reference"] == data["reference"]
    assert entry["error"] == "RuntimeError"
    assert isinstance(entry["exc_info"], RuntimeError)
    assert "secrets.toml" in entry["message"]
    assert "secrets.toml" not in response.text


async def test_a_finished_answer_ends_with_token_counts(app: Any) -> None:
    response = await post(app, {"message": "count these words", "model": MODEL})
    parsed = events(response.text)
    assert "".join(data for kind, data in parsed if kind == "token") == "You said: count these words"
    assert parsed[-1][0] == "done"
    assert parsed[-1][1]["output_tokens"] is not None


async def test_a_browser_leaving_mid_answer_closes_the_bedrock_stream(app: Any) -> None:
    fake(app).add_stream(text=SLOW_TEXT, delay=0.1)
    with capture_logs() as logs:
        request = ASGIRequest(app, {"message": "hi", "model": MODEL})
        body = b""
        while b"event: token" not in body:
            _, body, _ = await request.next_body()
        left = time.monotonic()
        request.leave()
        await asyncio.wait_for(request.task, 2)
        assert time.monotonic() - left < 1.0
    calls = [log for log in logs if log.get("event") == "bedrock.call"]
    assert len(calls) == 1
    assert calls[0]["closed_early"] is True
    assert calls[0]["events"] < 10


@pytest.mark.parametrize(
    "payload", [{"message": ""}, {"message": "x" * 5000}, {"message": 3}, {"message": "hi", "model": 7}, [1]]
)
async def test_malformed_questions_are_answered_400(app: Any, payload: object) -> None:
    response = await post(app, payload)
    assert response.status_code == 400
    assert fake(app).requests == []
