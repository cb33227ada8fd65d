"""The transport-free heart of the fake Bedrock: one request in, one reply out.

Both transports (the in-process `FakeBedrock` and the HTTP `FakeBedrockServer`) turn what they receive into a
`FakeRequest`, call `FakeBedrockCore.handle`, and write the `Reply` back. Everything else (routing, default
answers, scripted answers, injected errors, the request log, optional IAM enforcement) lives here or below.

Routing reads botocore's loaded service model (the `requestUri` templates), so an operation Bedrock adds shows
up here when botocore learns it, without a hand list.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

import botocore.session

from safe_bedrock.testing import _catalog, _responders
from safe_bedrock.testing._script import Script

if TYPE_CHECKING:
    from botocore.model import ServiceModel

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_PRINCIPAL",
    "ConnectionDrop",
    "FakeBedrockCore",
    "FakeRequest",
    "Reply",
    "error_reply",
    "request_from_http",
    "route",
]

SERVICE_NAME = "bedrock-runtime"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_PRINCIPAL = f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/app/session"
DEFAULT_REGION = "us-east-1"
JSON = "application/json"
EVENT_STREAM = "application/vnd.amazon.eventstream"


class ConnectionDrop(Exception):  # noqa: N818 - names what happens on the wire, not an error of the caller
    """Raised from `Reply.chunks`: the transport must cut the connection without finishing the response."""


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


# --- routing, from the service model -------------------------------------------------------------------


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    # Loading the model costs milliseconds; every fake in the process shares one.
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


def _template_regex(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    for piece in re.split(r"(\{[^}]+\})", template.split("?", 1)[0]):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            # {name+} is a greedy label that may contain slashes; {name} is one path segment.
            if name.endswith("+"):
                parts.append(f"(?P<{name[:-1]}>.+)")
            else:
                parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "$")


@lru_cache(maxsize=1)
def _routes() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    model = service_model()
    table: list[tuple[str, re.Pattern[str], str, int]] = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        template = http["requestUri"]
        # Literal templates before templated ones, so /async-invoke never shadows a longer literal path.
        table.append((http["method"], _template_regex(template), name, template.count("{")))
    table.sort(key=lambda row: row[3])
    return tuple((method, regex, name) for method, regex, name, _ in table)


def route(method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
    """The botocore operation name and URL-decoded path parameters for a request line, or None if unknown."""
    path = raw_path.split("?", 1)[0]
    method = method.upper()
    for op_method, regex, name in _routes():
        if op_method != method:
            continue
        match = regex.match(path)
        if match is not None:
            return name, {key: unquote(value) for key, value in match.groupdict().items()}
    return None


# --- turning raw HTTP pieces into a FakeRequest ----------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]*/([^/]*)/")


def _caller(headers: Mapping[str, str]) -> tuple[str | None, str]:
    auth = headers.get("authorization", "")
    match = _CREDENTIAL.search(auth)
    if match is not None:
        return match.group(1), match.group(2) or DEFAULT_REGION
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), DEFAULT_REGION
    return None, DEFAULT_REGION


def request_from_http(
    *, method: str, raw_path: str, headers: Mapping[str, str], body: bytes | None
) -> FakeRequest:
    """Build the FakeRequest for an HTTP request; unknown routes give operation "" (answered 404 by handle)."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    data = body or b""
    found = route(method, raw_path)
    operation, params = found if found is not None else ("", {})
    parsed: object | None = None
    if data:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
    access_key, region = _caller(lowered)
    return FakeRequest(
        operation=operation,
        path_params=params,
        model_id=params.get("modelId"),
        body=data,
        json=parsed,
        headers=lowered,
        access_key=access_key,
        method=method.upper(),
        path=raw_path,
        region=region,
    )


# --- error replies -----------------------------------------------------------------------------------------


def error_reply(
    code: str,
    message: str,
    *,
    request_id: str,
    status: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Reply:
    """An AWS rest-json error: status from the service model, x-amzn-ErrorType header, {"message": ...} body."""
    headers = {
        "Content-Type": JSON,
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
    }
    if extra_headers:
        headers.update(extra_headers)
    body = json.dumps({"message": message}).encode()
    return Reply(status=status or _catalog.http_status(code), headers=headers, body=body)


class _IamModule(Protocol):
    """The seam to safe_bedrock/testing/_iam.py (IAM enforcement, used only when a policy is set).

    `check` returns None when the policy allows the request, else the exact AccessDeniedException message AWS
    would send ("User: <principal> is not authorized to perform: <action> on resource: <arn> because ...").
    `policy` is what `safe_bedrock._policy.PolicyDocument.from_json` returned; `request.region` is the region.
    """

    def check(self, policy: object, *, principal: str, request: FakeRequest) -> str | None: ...


def _iam() -> _IamModule:
    # The IAM evaluator lives beside the HTTP transport and is loaded only when a policy is set.
    module: _IamModule = importlib.import_module("safe_bedrock.testing._iam")  # type: ignore[assignment]
    return module


# --- the core ----------------------------------------------------------------------------------------------


@dataclass
class FakeBedrockCore:
    """One fake Bedrock: the script, the request log and the optional IAM policy. Thread-safe.

    `handle` never raises for anything a client can send: bad input becomes the error Bedrock would answer.
    """

    script: Script = field(default_factory=Script)
    requests: list[FakeRequest] = field(default_factory=list)
    policy: object | None = None
    principal: str = DEFAULT_PRINCIPAL
    account: str = DEFAULT_ACCOUNT
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: int = 0
    _seed: uuid.UUID = field(default_factory=lambda: uuid.UUID(int=0x5AFEBED0C0), repr=False)

    def set_policy(self, policy: object | None, *, principal: str = DEFAULT_PRINCIPAL) -> None:
        """Enforce an IAM identity policy (None turns enforcement off); `principal` names the caller."""
        if policy is not None:
            policy = _iam_parse(policy)
        self.policy = policy
        self.principal = principal

    def next_request_id(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        # Deterministic per fake: the n-th request of any fake gets the same id, which keeps tests reproducible.
        return str(uuid.uuid5(self._seed, str(n)))

    def handle(self, request: FakeRequest) -> Reply:
        request_id = self.next_request_id()
        if not request.operation:
            return error_reply(
                "UnknownOperationException",
                f"The requested operation is not recognized by the service: {request.method} {request.path}",
                request_id=request_id,
                status=404,
            )
        with self._lock:
            self.requests.append(request)
        if self.policy is not None:
            denied = _iam().check(self.policy, principal=self.principal, request=request)
            if denied is not None:
                return error_reply("AccessDeniedException", denied, request_id=request_id)
        scripted = self.script.take(request)
        if scripted is not None and scripted.failure is not None:
            reply = error_reply(
                "ValidationException", f"safe-bedrock fake: {scripted.failure}", request_id=request_id
            )
            reply.failure = scripted.failure
            return reply
        try:
            return _responders.respond(request, scripted=scripted, request_id=request_id, account=self.account)
        except _responders.BadRequest as exc:
            return error_reply("ValidationException", str(exc), request_id=request_id)


def _iam_parse(policy: object) -> object:
    # Parse early so a broken policy fails at set_policy, not at the first call.
    module = importlib.import_module("safe_bedrock._policy")
    document_type = module.PolicyDocument
    if isinstance(policy, document_type):
        return policy
    if isinstance(policy, (str, bytes, Mapping)):
        return document_type.from_json(policy, source="set_policy()")
    raise TypeError(f"set_policy() takes a policy document (JSON text, dict or PolicyDocument), got {policy!r}")
