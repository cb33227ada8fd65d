"""FakeBedrock: the fake Bedrock inside the process, attached to real boto3 clients. No sockets.

It hooks botocore's `before-send` event, the last step before bytes would go on the wire: botocore has already
validated and serialised the parameters and signed the request, and it parses whatever the hook returns as if
it came from the network (status, headers, error shapes, event-stream frames). So the code under test runs
through botocore's real serialisation, signing, retries, parsing and event-stream decoding.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from urllib3.exceptions import ProtocolError

from safe_bedrock.testing._core import ConnectionDrop, FakeBedrockCore, Reply, request_from_http
from safe_bedrock.testing._script import ScriptingAPI, stream_operations

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

    from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from typing_extensions import Self

__all__ = ["FAKE_ACCESS_KEY", "FakeBedrock"]

FAKE_ACCESS_KEY = "AKIAFAKEBEDROCK00000"
_FAKE_SECRET_KEY = "fake-secret-access-key-for-safe-bedrock"  # noqa: S105 - a placeholder, never a secret
# Requests never leave the process; should a client outlive its fake, this host cannot resolve either.
_UNUSED_ENDPOINT = "https://bedrock-runtime.{region}.fake-bedrock.invalid"
_ids = itertools.count(1)


class _Body:
    """The `raw` of an AWSResponse: what botocore reads a body or an event stream from."""

    __slots__ = ("_chunks", "_url")

    def __init__(self, chunks: Iterable[bytes], url: str) -> None:
        self._chunks = chunks
        self._url = url

    def stream(self, **_: Any) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except ConnectionDrop as exc:
            # What urllib3 raises when the peer closes mid-body; botocore lets it through while iterating.
            raise ProtocolError(f"Connection broken: {exc}", exc) from exc

    def read(self, amt: int | None = None) -> bytes:  # noqa: ARG002 - the file-like signature botocore may use
        return b"".join(self.stream())

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class FakeBedrock(ScriptingAPI):
    """The fake Bedrock in-process. Script it like botocore's Stubber; point real boto3 clients at it.

    ```python
    fake = FakeBedrock()
    client = fake.client(region_name="us-east-1")     # a real boto3 bedrock-runtime client
    fake.add_response(text="Paris")                    # or let the default answer echo the prompt
    client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[...])
    fake.requests[0].json                              # what the code under test sent
    fake.close()                                       # or `with FakeBedrock() as fake:`
    ```
    """

    def __init__(self) -> None:
        self._core = FakeBedrockCore()
        self._unique = f"safe-bedrock-fake-{next(_ids)}"
        self._clients: list[Any] = []
        self._allow_pending = False

    # --- clients -----------------------------------------------------------------------------------------

    def client(self, region_name: str = "us-east-1", **kwargs: Any) -> BedrockRuntimeClient:
        """A real boto3 bedrock-runtime client with fake static credentials, attached to this fake.

        Keyword arguments go to `boto3.session.Session.client` (config, endpoint_url, ...) and win over the
        defaults. The session ignores the environment's AWS profile and files: tests never see real
        credentials.
        """
        kwargs.setdefault("endpoint_url", _UNUSED_ENDPOINT.format(region=region_name))
        kwargs.setdefault("aws_access_key_id", FAKE_ACCESS_KEY)
        kwargs.setdefault("aws_secret_access_key", _FAKE_SECRET_KEY)
        # No AWS_PROFILE, config or credentials file from the environment: tests must never see real AWS.
        isolated = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        isolated.set_config_variable("config_file", os.devnull)
        isolated.set_config_variable("credentials_file", os.devnull)
        session = boto3.session.Session(botocore_session=isolated)
        client: BedrockRuntimeClient = session.client("bedrock-runtime", region_name=region_name, **kwargs)
        self.attach(client)
        return client

    def attach(self, client: Any) -> Any:
        """Answer this existing bedrock-runtime client's calls from the fake (until close/detach)."""
        meta = getattr(client, "meta", None)
        if meta is None or meta.service_model.service_name != "bedrock-runtime":
            raise TypeError(f"attach() takes a boto3 bedrock-runtime client, got {client!r}")
        meta.events.register_first("before-send.bedrock-runtime", self._before_send, unique_id=self._unique)
        if client not in self._clients:
            self._clients.append(client)
        return client

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("before-send.bedrock-runtime", unique_id=self._unique)
        if client in self._clients:
            self._clients.remove(client)

    def close(self) -> None:
        """Detach every client; the fake's script and request log stay readable."""
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

    # --- the hook ------------------------------------------------------------------------------------------

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        url = request.url or ""
        parts = urlsplit(url)
        raw_path = parts.path + ("?" + parts.query if parts.query else "")
        fake_request = request_from_http(
            method=request.method or "POST",
            raw_path=raw_path,
            headers=_lowered(request.headers),
            body=_bytes(request.body),
            headers_lowered=True,
        )
        reply = self._core.handle(fake_request)
        if reply.failure is not None:
            raise AssertionError(reply.failure)
        return _response(url, reply, stream=fake_request.operation in stream_operations())

    def __repr__(self) -> str:
        return f"<FakeBedrock clients={len(self._clients)} requests={len(self._core.requests)}>"


def _bytes(body: object) -> bytes | None:
    # botocore's rest-json serialiser gives bytes; a str or a file-like object would come from a custom hook.
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, (str, bytearray)):
        return body.encode() if isinstance(body, str) else bytes(body)
    data = body.read()  # type: ignore[attr-defined]
    return data.encode() if isinstance(data, str) else bytes(data)


def _lowered(headers: Any) -> dict[str, str]:
    # botocore's HeadersDict keeps (key, value) pairs under key objects that already carry the lower-cased
    # name; reading them directly is several times faster than its MutableMapping iteration, which matters
    # on every call. Anything else (a future botocore) takes the general path.
    store = getattr(headers, "_dict", None)
    if isinstance(store, dict):
        try:
            return {key._lower: _text(value) for key, value in store.items()}
        except AttributeError:
            pass
    return {str(key).lower(): _text(value) for key, value in headers.items()}


def _text(value: object) -> str:
    # botocore keeps some header values as bytes after signing.
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _headers(headers: dict[str, str]) -> HTTPHeaders:
    # AWSResponse copies whatever mapping it gets into a case-insensitive dict; the stubs ask for HTTPHeaders.
    return cast("HTTPHeaders", headers)


def _response(url: str, reply: Reply, *, stream: bool) -> AWSResponse:
    if reply.chunks is None:
        return AWSResponse(url, reply.status, _headers(reply.headers), _Body((reply.body or b"",), url))
    if not stream:
        try:
            body = b"".join(reply.chunks)
        except ConnectionDrop as exc:
            # What botocore raises when the connection closes before a response: it retries it as a
            # connection error, exactly as against the real endpoint.
            raise ConnectionClosedError(endpoint_url=url) from exc
        return AWSResponse(url, reply.status, _headers(reply.headers), _Body((body,), url))
    return AWSResponse(url, reply.status, _headers(reply.headers), _Body(reply.chunks, url))
