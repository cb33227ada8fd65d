"""What every transport of the fake shares: the request and reply types, the drops, the first-chunk rule.

These types live here, below every module of `safe_bedrock.testing`, so that none imports another in a circle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping


DEFAULT_ACCOUNT = "123456789012"
DEFAULT_PRINCIPAL = f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/app/session"
DEFAULT_REGION = "us-east-1"


class ConnectionDrop(Exception):  # noqa: N818 - names what happens on the wire, not an error of the caller
    """Raised from `Reply.chunks`: the transport must cut the connection without finishing the response.
    Added in version 0.1.0."""


class ReadTimeout(ConnectionDrop):
    """A scripted delay outlasts the client's read timeout (known in-process only; elsewhere, a drop)."""


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request as the fake received it, recorded in `.requests` for assertions.

    `headers` has lower-cased names. `json` is the parsed body (for InvokeModel: the model's own payload), or
    None when the body is empty or not JSON. `access_key` is the SigV4 access key id (or the bearer token) the
    caller signed with; `region` comes from the SigV4 credential scope (default us-east-1).
    Added in version 0.1.0.
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


def start(reply: Reply, url: str) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """(the reply's bytes, what closing them closes), the first chunk pulled already, as the HTTP head waits
    for it: a drop or timeout before it is the call's own error, raised as botocore's (which retries it)."""
    source = iter(reply.chunks if reply.chunks is not None else (reply.body or b"",))
    try:
        first = list(itertools.islice(source, 1))
    except ReadTimeout as exc:
        close_chunks(source)
        raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
    except ConnectionDrop as exc:
        close_chunks(source)
        raise ConnectionClosedError(endpoint_url=url) from exc
    return itertools.chain(first, source), source


def close_chunks(chunks: object) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
