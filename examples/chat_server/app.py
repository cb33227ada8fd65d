"""A streaming chat backend on AsyncSafeBedrockClient: one page, answers token by token over SSE.

    make chat                       # offline, against the fake Bedrock started with the app
    SAFE_BEDROCK_LIVE=1 make chat   # real Amazon Bedrock (AWS credentials, AWS_REGION, default us-east-1)

POST /chat {"message": "...", "model": "..."} answers with `text/event-stream` events:
    event: token  data: "<text piece>"                         as Bedrock streams them
    event: error  data: {"error": ..., "message": ..., "reference": ...}   a refused model, a failed call
    event: done   data: {"input_tokens": ..., "output_tokens": ...}
The prompt travels in the POST body, not the URL, so access logs never hold it.

The page is for end users: an error there is one generic sentence and a reference (Bedrock's request id, or a
local id for a call refused before it was sent). The cause, the fix and, for a refused model, the allowlist's
source and its closest entries go to the server log (structlog event `chat.refused` / `chat.failed`) under the
same reference: they tell an operator what to change, and would tell an attacker probing with model ids how
the guard is configured.

A browser that goes away (tab closed, Stop pressed) cancels the response task; AsyncSafeEventStream then
closes the Bedrock stream at once and the call's log event says closed_early=True.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from safe_bedrock import (
    AsyncSafeBedrockClient,
    BedrockServiceError,
    InvalidModelIdError,
    ModelNotAllowedError,
    SafeBedrockError,
)
from safe_bedrock.testing import FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

HERE = Path(__file__).parent
MODEL = os.environ.get("SAFE_BEDROCK_MODEL", "anthropic.claude-3-haiku-20240307-v1:0")
# Offline only: on the allowlist, but the fake answers AccessDenied for it, as Bedrock does for a role
# that lacks bedrock:InvokeModelWithResponseStream on the model.
NO_ACCESS_MODEL = "mistral.mistral-large-2402-v1:0"
# Never on the allowlist: the guard refuses it before anything is sent.
REFUSED_MODEL = "meta.llama3-70b-instruct-v1:0"
MAX_MESSAGE = 4000
NOT_AVAILABLE = "This model is not available."
FAILED = "The model could not answer."

log = structlog.get_logger("chat_server")


def live() -> bool:
    return os.environ.get("SAFE_BEDROCK_LIVE") == "1"


@contextlib.asynccontextmanager
async def bedrock(state: dict[str, Any]) -> AsyncIterator[AsyncSafeBedrockClient]:
    """The guarded client: real Bedrock with SAFE_BEDROCK_LIVE=1, else a fake server started here."""
    if live():
        region = os.environ.get("AWS_REGION", "us-east-1")
        state["models"] = [MODEL, REFUSED_MODEL]
        async with AsyncSafeBedrockClient(allow=[MODEL], region_name=region) as client:
            yield client
        return
    # Imported here: aiobotocore is only needed once a client is built (the `aio` extra).
    from aiobotocore.session import AioSession

    with FakeBedrockServer() as fake:
        fake.route(NO_ACCESS_MODEL, error="AccessDeniedException", variant="implicit_deny")
        session = AioSession(session_vars={"profile": (None, None, None, None)})
        session.set_config_variable("config_file", os.devnull)
        session.set_config_variable("credentials_file", os.devnull)
        session.set_credentials("AKIAFAKEBEDROCK00000", "fake-secret-access-key-for-safe-bedrock")
        state["fake"] = fake
        state["models"] = [MODEL, NO_ACCESS_MODEL, REFUSED_MODEL]
        async with AsyncSafeBedrockClient(
            allow=[MODEL, NO_ACCESS_MODEL],
            session=session,
            region_name=fake.region,
            endpoint_url=fake.endpoint_url,
        ) as client:
            yield client


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    state: dict[str, Any] = {"fake": None}
    async with bedrock(state) as client:
        app.state.bedrock = client
        app.state.fake = state["fake"]
        app.state.models = state["models"]
        yield


def sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def report(error: Exception, *, model: str) -> dict[str, str]:
    """Log what went wrong for the operator; return what the page shows: one generic sentence, a reference."""
    request_id = error.request_id if isinstance(error, BedrockServiceError) else None
    # A refused call never reached Bedrock, so it has no request id: a local one ties the page to the log.
    reference = request_id or f"local-{secrets.token_hex(6)}"
    details: dict[str, Any] = {"model_id": model, "message": str(error), "fix": getattr(error, "fix", None)}
    if isinstance(error, BedrockServiceError):
        details = error.fields()  # for a refusal also the allowlist's source, closest entries, entry_to_add
    bug = None if isinstance(error, SafeBedrockError) else error  # a traceback only for the unexpected
    if isinstance(error, (ModelNotAllowedError, InvalidModelIdError)):
        log.warning("chat.refused", reference=reference, error=type(error).__name__, **details)
        kind, text = "not_available", NOT_AVAILABLE
    else:
        log.error("chat.failed", reference=reference, error=type(error).__name__, exc_info=bug, **details)
        kind, text = "failed", FAILED
    return {"error": kind, "message": f"{text} Reference: {reference}", "reference": reference}


async def answer(client: AsyncSafeBedrockClient, *, model: str, message: str) -> AsyncIterator[bytes]:
    """The SSE events for one question: tokens as Bedrock streams them, then done (or an error)."""
    try:
        response = await client.converse_stream(
            modelId=model,
            messages=[{"role": "user", "content": [{"text": message}]}],
            inferenceConfig={"maxTokens": 512},
        )
        usage: Mapping[str, Any] = {}
        async with response["stream"] as events:
            async for event in events:
                if "contentBlockDelta" in event:
                    yield sse("token", event["contentBlockDelta"]["delta"].get("text", ""))
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
    except Exception as error:  # noqa: BLE001 - every failure becomes a message on the page
        yield sse("error", report(error, model=model))
        return
    yield sse("done", {"input_tokens": usage.get("inputTokens"), "output_tokens": usage.get("outputTokens")})


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse that notices a client leaving even while nothing is being written.

    Waiting for a slow model writes nothing, so a failed write cannot tell that the browser left; the
    request's `http.disconnect` does. Either way the body task is cancelled and the body generator
    closed, which closes the Bedrock stream.
    """

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002 - ASGI's signature
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                with contextlib.suppress(OSError):  # the client went away mid-write
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


async def page(request: Request) -> Response:
    template = (HERE / "index.html").read_text(encoding="utf-8")
    options = "\n".join(
        f'<option value="{html.escape(m)}">{html.escape(m)}</option>' for m in request.app.state.models
    )
    mode = "real Amazon Bedrock" if live() else "the built-in fake Bedrock (offline)"
    return HTMLResponse(template.replace("{{options}}", options).replace("{{mode}}", mode))


async def chat(request: Request) -> Response:
    try:
        payload = await request.json()
    except ValueError:
        return JSONResponse({"error": 'send JSON: {"message": ..., "model": ...}'}, status_code=400)
    message = payload.get("message") if isinstance(payload, dict) else None
    model = payload.get("model", MODEL) if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        return JSONResponse({"error": f"message must be 1 to {MAX_MESSAGE} characters"}, status_code=400)
    if not isinstance(model, str):
        return JSONResponse({"error": "model must be a model id"}, status_code=400)
    # The model id goes to the guard as the user sent it: the allowlist decides, not this handler.
    body = answer(request.app.state.bedrock, model=model, message=message)
    return EventStreamResponse(body, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", page), Route("/chat", chat, methods=["POST"])], lifespan=lifespan)


app = create_app()


def main() -> int:
    import uvicorn  # only the command line needs the server

    host = os.environ.get("CHAT_HOST", "127.0.0.1")
    port = int(os.environ.get("CHAT_PORT", "8000"))
    print(f"safe-bedrock chat: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
