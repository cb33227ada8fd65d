"""FakeBedrock: the fake Bedrock inside the process, attached to real boto3 clients. No sockets.

It takes the place of a client's HTTP session, the wire itself: botocore has validated and serialised the
parameters, signed the request and run every event handler (`before-send` included) before the fake sees it,
and it parses what the fake returns as if it came from the network (status, headers, error shapes,
event-stream frames). So the code under test runs through botocore's real serialisation, signing, handlers,
retries, parsing and event-stream decoding, and what reaches `fake.requests` is exactly what would have left
the process.
"""

from __future__ import annotations

import functools
import itertools
import sys
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock._service import RUNTIME, stream_operations
from safe_bedrock.testing._core import FakeBedrockCore, request_from_http
from safe_bedrock.testing._script import ScriptingAPI
from safe_bedrock.testing._session import FAKE_ACCESS_KEY, isolated_client, isolated_session
from safe_bedrock.testing._wire import (
    DEFAULT_REGION,
    ConnectionDrop,
    ReadTimeout,
    Reply,
    close_chunks,
    first_chunks,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    import boto3.session
    from aiobotocore.session import AioSession
    from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from typing_extensions import Self

__all__ = ["FAKE_ACCESS_KEY", "FakeBedrock"]
# Requests never leave the process; should a client outlive its fake, this host cannot resolve either.
_UNUSED_ENDPOINT = f"https://{RUNTIME}.{{region}}.fake-bedrock.invalid"
_CREATING = f"creating-client-class.{RUNTIME}"
_ids = itertools.count(1)


class _Body:
    """The `raw` of an AWSResponse: what botocore reads a body or an event stream from."""

    __slots__ = ("_chunks", "_source", "_url")

    def __init__(self, chunks: Iterable[bytes], url: str, *, source: object = None) -> None:
        self._chunks = chunks
        self._url = url
        self._source = chunks if source is None else source  # what close() closes (a reply's generator)

    def stream(self, **_: Any) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except ReadTimeout as exc:
            # What urllib3 raises when no byte arrives within read_timeout; botocore lets it through.
            raise Urllib3ReadTimeoutError(None, self._url, f"Read timed out. ({exc})") from exc  # type: ignore[arg-type]
        except ConnectionDrop as exc:
            # What urllib3 raises when the peer closes mid-body; botocore lets it through while iterating.
            raise ProtocolError(f"Connection broken: {exc}", exc) from exc

    def read(self, amt: int | None = None) -> bytes:  # noqa: ARG002 - the file-like signature botocore may use
        return b"".join(self.stream())

    def close(self) -> None:
        close_chunks(self._source)


class _Transport:
    """A client's HTTP session, answered by the fake; the real session stays for everything but sending.

    `send` is the fake's answer (a coroutine for aiobotocore); opening and closing go to the original, so a
    client's lifecycle is unchanged and `detach` can put the original back.
    """

    def __init__(self, send: Any, original: Any, *, owner: str) -> None:
        self.send = send
        self.original = original
        self.owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)

    async def __aenter__(self) -> Any:
        return await self.original.__aenter__()

    async def __aexit__(self, *exc_info: object) -> Any:
        return await self.original.__aexit__(*exc_info)


class FakeBedrock(ScriptingAPI):
    """The fake Bedrock in-process. Script it like botocore's Stubber; point real boto3 clients at it.

    ```python
    fake = FakeBedrock()
    client = fake.client(region_name="us-east-1")     # a real boto3 bedrock-runtime client
    fake.add_response(text="Paris")                    # or let the default answer echo the prompt
    client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[...])
    fake.requests[0].json                              # what the code under test sent
    fake.close()                                       # or `with FakeBedrock() as fake:`

    # code that builds its own client from a session (SafeBedrockClient, an app's factory):
    SafeBedrockClient(allow=[...], session=fake.session(), region_name="us-east-1")

    # aiobotocore clients too (the `aio` extra), answered without blocking the event loop:
    AsyncSafeBedrockClient(allow=[...], session=fake.aio_session(), region_name="us-east-1")
    fake.attach(aio_client)                            # or an aiobotocore client you built
    ```

    Scripted delays (`add_stream(delay=...)`, `add_response(delay=...)`) are waited out on a worker thread
    for aiobotocore clients, so other tasks run meanwhile.
    """

    _core: FakeBedrockCore

    def __init__(self, *, max_requests: int | None = None) -> None:
        """`max_requests`: keep only the newest N requests in `.requests` (default: all of them)."""
        self._core = FakeBedrockCore(max_requests=max_requests)
        self._unique = f"safe-bedrock-fake-{next(_ids)}"
        self._clients: list[Any] = []
        self._allow_pending = False
        self._closed = False

    # --- clients -----------------------------------------------------------------------------------------

    def client(self, region_name: str = DEFAULT_REGION, **kwargs: Any) -> BedrockRuntimeClient:
        """A real boto3 bedrock-runtime client with fake static credentials, attached to this fake.

        Keyword arguments go to `boto3.session.Session.client` (config, endpoint_url, ...) and win over the
        defaults. The session ignores the environment's AWS profile and files: tests never see real
        credentials.
        """
        kwargs.setdefault("endpoint_url", _UNUSED_ENDPOINT.format(region=region_name))
        client = isolated_client(region_name=region_name, **kwargs)
        self.attach(client)
        return client

    def session(self, region_name: str = DEFAULT_REGION) -> boto3.session.Session:
        """A boto3 Session (fake credentials, no AWS profile or files) whose bedrock-runtime clients this fake
        answers: for code that builds its own client, such as `SafeBedrockClient(session=...)`.

        Every bedrock-runtime client created from the session, now or later, is answered in-process. After
        `close()` those clients raise RuntimeError instead of reaching out to the real endpoint.
        """
        session = isolated_session(region_name=region_name)
        session.events.register(_CREATING, self._attaching_base, unique_id=self._unique)
        return session

    def aio_session(self, region_name: str = DEFAULT_REGION) -> AioSession:
        """An aiobotocore AioSession (fake credentials, no AWS profile or files) whose bedrock-runtime clients
        this fake answers: for async code that builds its own client, such as
        `AsyncSafeBedrockClient(session=...)`. Needs aiobotocore (the `aio` extra); as `session()` otherwise.
        """
        from safe_bedrock.testing import _aio_fake  # aiobotocore only for async code

        session = _aio_fake.isolated_aio_session(region_name=region_name)
        emitter = session.get_component("event_emitter")
        emitter.register(_CREATING, self._attaching_base, unique_id=self._unique)
        return session

    def _attaching_base(self, base_classes: list[type], **_: Any) -> None:
        # botocore builds a class for each client it creates and lets handlers add bases: ours attaches it.
        fake = self

        class AnsweredByFakeBedrock:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                fake._attach(self, from_session=True)

        base_classes.insert(0, AnsweredByFakeBedrock)

    def attach(self, client: Any) -> Any:
        """Answer this existing bedrock-runtime client's calls from the fake (until close/detach).

        A boto3 client or an aiobotocore one (whose calls are answered by a coroutine, delays awaited off the
        event loop).
        """
        meta = getattr(client, "meta", None)
        if meta is None or meta.service_model.service_name != RUNTIME:
            raise TypeError(f"attach() takes a boto3 or aiobotocore bedrock-runtime client, got {client!r}")
        self._attach(client, from_session=False)
        if client not in self._clients:
            self._clients.append(client)
        return client

    def _attach(self, client: Any, *, from_session: bool) -> None:
        endpoint = client._endpoint  # the HTTP session is where the wire starts
        current = endpoint.http_session
        original = current.original if isinstance(current, _Transport) else current
        # The client's read timeout, so a scripted delay longer than it times out here as over HTTP.
        timeout = client.meta.config.read_timeout
        receive = functools.partial(
            self._receive, read_timeout=timeout if isinstance(timeout, (int, float)) else None
        )
        answer: Any
        if _is_aiobotocore(client):
            from safe_bedrock.testing import _aio_fake  # imports aiobotocore: only for its clients

            answer = _aio_fake.answerer(receive, check_open=self._check_open if from_session else None)
        else:
            answer = functools.partial(self._answer, receive=receive, check_open=from_session)
        endpoint.http_session = _Transport(answer, original, owner=self._unique)

    def detach(self, client: Any) -> None:
        endpoint = client._endpoint
        current = endpoint.http_session
        if isinstance(current, _Transport) and current.owner == self._unique:
            endpoint.http_session = current.original
        if client in self._clients:
            self._clients.remove(client)

    def close(self) -> None:
        """Detach every client; the fake's script and request log stay readable.

        Clients made from `session()` cannot be detached (each holds its own copy of the session's handlers):
        from now on their calls raise RuntimeError.
        """
        self._closed = True
        for client in list(self._clients):
            self.detach(client)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def allow_pending_responses(self) -> None:
        """Tell the `fake_bedrock` fixture not to fail the test for scripted answers left unused."""
        self._allow_pending = True

    # --- the wire ------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"{self!r} was closed: the clients made from its session() cannot reach it any more (and"
                " are not sent to real AWS); make and use the client within the fake's lifetime"
            )

    def _answer(
        self,
        request: AWSPreparedRequest,
        *,
        receive: Callable[..., tuple[str, Reply, bool]],
        check_open: bool,
    ) -> AWSResponse:
        if check_open:
            self._check_open()
        url, reply, stream = receive(request)
        return _response(url, reply, stream=stream)

    def _receive(self, request: AWSPreparedRequest, *, read_timeout: float | None) -> tuple[str, Reply, bool]:
        """The core's reply to a prepared request: (url, reply, is-an-event-stream). Blocks through any
        scripted delay before the first byte; raises AssertionError for a scripted expectation not met."""
        url = request.url or ""
        parts = urlsplit(url)
        raw_path = parts.path + ("?" + parts.query if parts.query else "")
        fake_request = request_from_http(
            method=request.method or "POST",
            raw_path=raw_path,
            headers=request.headers,
            body=_bytes(request.body),
        )
        reply = self._core.handle(fake_request, read_timeout=read_timeout)
        if reply.failure is not None:
            raise AssertionError(reply.failure)
        return url, reply, fake_request.operation in stream_operations()

    def __repr__(self) -> str:
        return f"<FakeBedrock clients={len(self._clients)} requests={len(self._core.requests)}>"


def _is_aiobotocore(client: object) -> bool:
    # Looked up without importing aiobotocore: an aiobotocore client can only exist once it is loaded.
    module = sys.modules.get("aiobotocore.client")
    return module is not None and isinstance(client, module.AioBaseClient)


def _bytes(body: object) -> bytes | None:
    # botocore's rest-json serialiser gives bytes; a str or a file-like object would come from a custom hook.
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, (str, bytearray)):
        return body.encode() if isinstance(body, str) else bytes(body)
    data = body.read()  # type: ignore[attr-defined]
    return data.encode() if isinstance(data, str) else bytes(data)


def _response(url: str, reply: Reply, *, stream: bool) -> AWSResponse:
    # AWSResponse copies whatever mapping it gets into a case-insensitive dict; the stubs ask for HTTPHeaders.
    headers = cast("HTTPHeaders", reply.headers)
    if reply.chunks is None:
        return AWSResponse(url, reply.status, headers, _Body((reply.body or b"",), url))
    iterator = iter(reply.chunks)
    first = first_chunks(iterator, url, stream=stream)
    body = _Body(itertools.chain(first, iterator), url, source=iterator)
    return AWSResponse(url, reply.status, headers, body)
