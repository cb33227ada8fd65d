"""What every transport of the fake shares: the request and reply types, the drops, the first-chunk rule.

The in-process `FakeBedrock`, its aiobotocore answers and the HTTP `FakeBedrockServer` turn what they receive
into a `FakeRequest`, hand it to the core and write the `Reply` back. These types live here, below all of
them, so that no module of `safe_bedrock.testing` imports another in a circle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_PRINCIPAL",
    "DEFAULT_REGION",
    "ConnectionDrop",
    "FakeRequest",
    "ReadTimeout",
    "Reply",
    "close_chunks",
    "first_chunks",
]

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_PRINCIPAL = f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/app/session"
DEFAULT_REGION = "us-east-1"


class ConnectionDrop(Exception):  # noqa: N818 - names what happens on the wire, not an error of the caller
    """Raised from `Reply.chunks`: the transport must cut the connection without finishing the response."""


class ReadTimeout(ConnectionDrop):
    """A scripted delay outlasts the client's read timeout (known in-process only): the client gives up.

    A transport that does not know it treats it as the drop it subclasses.
    """


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request as the fake received it, recorded in `.requests` for assertions.

    `headers` has lower-cased names. `json` is the parsed body (for InvokeModel: the model's own payload), or
    None when the body is empty or not JSON. `access_key` is the SigV4 access key id (or the bearer token) the
    caller signed with; `region` comes from the SigV4 credential scope (default us-east-1).
    """

    operation: str
    path_params: Mapping[str, str]
    model_id: str | None
    body: bytes
    json: object | None
    headers: Mapping[str, str]
    access_key: str | None
    method: str
    path: str
    region: str = DEFAULT_REGION


@dataclass(slots=True)
class Reply:
    """What the transport writes back: a whole `body`, or `chunks` (raw bytes, may raise ConnectionDrop).

    `failure` is set when a scripted expectation did not match the request: the in-process transport raises it
    as an AssertionError at the call site; the HTTP transport answers with the error reply as is.
    """

    status: int
    headers: dict[str, str]
    body: bytes | None = None
    chunks: Iterable[bytes] | None = None
    failure: str | None = None


def first_chunks(iterator: Iterator[bytes], url: str, *, stream: bool) -> list[bytes]:
    """What must arrive before the response head: the first chunk of a stream, the whole of any other body.

    Nothing reaches the client before the first chunk, as over HTTP (where the head waits for it): a drop or a
    timeout before it is an error of the call itself, raised as botocore's connection errors (which botocore
    may retry). May block through scripted delays.
    """
    try:
        return [b"".join(iterator)] if not stream else list(itertools.islice(iterator, 1))
    except ReadTimeout as exc:
        close_chunks(iterator)
        raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
    except ConnectionDrop as exc:
        # What botocore raises when the connection closes before a response: it retries it as a connection
        # error, exactly as against the real endpoint.
        close_chunks(iterator)
        raise ConnectionClosedError(endpoint_url=url) from exc


def close_chunks(chunks: object) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
