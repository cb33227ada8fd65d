"""FakeBedrock: the fake Bedrock inside the process, in place of real boto3 clients' HTTP session. No sockets.

botocore has serialised, signed and run every event handler before the fake sees a request, and parses the
reply as if it came from the network: what reaches `fake.requests` is exactly what would leave the process.
"""

from __future__ import annotations

import functools
import itertools
import sys
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock._service import RUNTIME
from safe_bedrock.testing._core import FakeBedrockCore, new_core, request_from_http
from safe_bedrock.testing._script import ScriptingAPI
from safe_bedrock.testing._session import isolated_client, isolated_session
from safe_bedrock.testing._wire import DEFAULT_REGION, ConnectionDrop, ReadTimeout, Reply, close_chunks, start

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

    import boto3.session
    from aiobotocore.session import AioSession
    from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from typing_extensions import Self

# Requests never leave the process; should a client outlive its fake, this host cannot resolve either.
_UNUSED_ENDPOINT = f"https://{RUNTIME}.{{region}}.fake-bedrock.invalid"
_CREATING = f"creating-client-class.{RUNTIME}"
_ids = itertools.count(1)
_Client = TypeVar("_Client")


class _Body:
    """The `raw` of an AWSResponse: what botocore reads a body or an event stream from."""

    __slots__ = ("_chunks", "_source", "_url")

    def __init__(self, chunks: Iterator[bytes], source: Iterator[bytes], url: str) -> None:
        self._chunks = chunks
        self._source = source  # what close() closes (a reply's generator)
        self._url = url

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
    """A client's HTTP session, answered by the fake; the real session stays for everything but sending,
    so a client's lifecycle is unchanged and `detach` can put the original back."""

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
    ``` Added in version 0.1.0.
    """

    _core: FakeBedrockCore

    def __init__(
        self, *, max_requests: int | None = None, models: Iterable[str] = (), strict_models: bool = True
    ) -> None:
        """`max_requests`: keep only the newest N requests in `.requests` (default: all of them).

        Calls to models Bedrock would not serve (an unknown id, a profile-only model by its bare id, a
        model not offered in the region, a retired one) get Bedrock's errors, judged by the model catalog;
        `models` adds ids the catalog does not know (see `add_model`), `strict_models=False` serves any
        well-formed id. Scripted answers always win.
        """
        self._core = new_core(max_requests=max_requests, models=models, strict_models=strict_models)
        self._unique = f"safe-bedrock-fake-{next(_ids)}"
        self._clients: list[Any] = []
        self._allow_pending = False
        self._closed = False

    def client(self, region_name: str = DEFAULT_REGION, **kwargs: Any) -> BedrockRuntimeClient:
        """A real boto3 bedrock-runtime client with fake static credentials, attached to this fake.

        Keyword arguments go to `boto3.session.Session.client` (config, endpoint_url, ...). The session
        ignores the environment's AWS profile and files: tests never see real credentials.
        """
        kwargs.setdefault("endpoint_url", _UNUSED_ENDPOINT.format(region=region_name))
        return self.attach(isolated_client(region_name=region_name, **kwargs))

    def session(self, region_name: str = DEFAULT_REGION) -> boto3.session.Session:
        """A boto3 Session (fake credentials, no AWS profile or files) whose bedrock-runtime clients, made now
        or later, this fake answers: for code that builds its own client, such as `SafeBedrockClient`.

        After `close()` those clients raise RuntimeError instead of reaching out to the real endpoint.
        """
        session = isolated_session(region_name=region_name)
        session.events.register(_CREATING, self._attaching_base, unique_id=self._unique)
        return session

    def aio_session(self, region_name: str = DEFAULT_REGION) -> AioSession:
        """As `session()`, an aiobotocore AioSession (the `aio` extra) for `AsyncSafeBedrockClient`."""
        from safe_bedrock.testing import _aio_fake  # aiobotocore only for async code

        session = _aio_fake.isolated_aio_session(region_name=region_name)
        session.get_component("event_emitter").register(
            _CREATING, self._attaching_base, unique_id=self._unique
        )
        return session

    def _attaching_base(self, base_classes: list[type], **_: Any) -> None:
        # botocore builds a class for each client it creates and lets handlers add bases: ours attaches it.
        fake = self

        class AnsweredByFakeBedrock:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                fake._attach(self, from_session=True)

        base_classes.insert(0, AnsweredByFakeBedrock)

    def attach(self, client: _Client) -> _Client:
        """Answer this existing boto3 or aiobotocore bedrock-runtime client's calls (until close/detach)."""
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
            self._receive,
            read_timeout=timeout if isinstance(timeout, (int, float)) else None,
            check_open=from_session,
        )
        answer: Any
        if _is_aiobotocore(client):
            from safe_bedrock.testing import _aio_fake  # imports aiobotocore: only for its clients

            answer = _aio_fake.answerer(receive)
        else:

            def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
                url, reply = receive(request)
                chunks, source = start(reply, url)
                headers = cast("HTTPHeaders", reply.headers)  # AWSResponse copies any mapping
                return AWSResponse(url, reply.status, headers, _Body(chunks, source, url))

        endpoint.http_session = _Transport(answer, original, owner=self._unique)

    def detach(self, client: Any) -> None:
        """Stop answering this client: its HTTP session is the original again."""
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

    def _receive(
        self, request: AWSPreparedRequest, *, read_timeout: float | None, check_open: bool
    ) -> tuple[str, Reply]:
        """(url, the core's reply) for a prepared request. Blocks through any scripted delay before the first
        byte; raises AssertionError for a scripted expectation not met."""
        if check_open and self._closed:
            raise RuntimeError(
                f"{self!r} was closed: the clients made from its session() cannot reach it any more (and"
                " are not sent to real AWS); make and use the client within the fake's lifetime"
            )
        url = request.url or ""
        parts = urlsplit(url)
        fake_request = request_from_http(
            method=request.method or "POST",
            raw_path=parts.path + ("?" + parts.query if parts.query else ""),
            headers=request.headers,
            body=_bytes(request.body),
        )
        reply = self._core.handle(fake_request, read_timeout=read_timeout)
        if reply.failure is not None:
            raise AssertionError(reply.failure)
        return url, reply

    def __repr__(self) -> str:
        return f"<FakeBedrock clients={len(self._clients)} requests={len(self._core.requests)}>"


def _is_aiobotocore(client: object) -> bool:
    # Looked up without importing aiobotocore: an aiobotocore client can only exist once it is loaded.
    module = sys.modules.get("aiobotocore.client")
    return module is not None and isinstance(client, module.AioBaseClient)


def _bytes(body: object) -> bytes | None:
    # botocore's rest-json serialiser gives bytes; a str or a file-like object would come from a custom hook.
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        return body.encode()
    return None if body is None else bytes(body)  # type: ignore[call-overload]
