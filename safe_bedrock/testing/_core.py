"""The transport-free heart of the fake Bedrock: a `FakeRequest` in (`FakeBedrockCore.handle`), a `Reply` out.

Routing is `_service.route`, over botocore's service model, so an operation Bedrock adds shows up when
botocore knows it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from safe_bedrock._eventstream import event_frame, exception_frame
from safe_bedrock._ids import parse_model_id
from safe_bedrock._service import action_for, partition_of, route, stream_exceptions, stream_operations
from safe_bedrock.testing import _messages, _models, _responders
from safe_bedrock.testing._script import Script, Scripted
from safe_bedrock.testing._wire import (
    DEFAULT_ACCOUNT,
    DEFAULT_PRINCIPAL,
    DEFAULT_REGION,
    ConnectionDrop,
    FakeRequest,
    ReadTimeout,
    Reply,
)

if TYPE_CHECKING:
    from botocore.awsrequest import HTTPHeaders

    from safe_bedrock._catalog import Model
    from safe_bedrock._policy import PolicyDocument


JSON = "application/json"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]*/([^/]*)/")
_STREAM_OPS = stream_operations()
_CACHEABLE = frozenset({"InvokeModel", "Converse", "InvokeModelWithResponseStream", "ConverseStream"})
_CACHE_SIZE = 256
_REQUEST_ID_PREFIX = "5afeb3d0-fa6e-4000-8000-"  # a version-4-shaped UUID whose last group counts requests
_ASYNC_SUBMIT_TIME = "2025-01-01T00:00:00Z"
_SCP = "o-exampleorg1/service_control_policy/p-example1"  # the policy a scripted SCP denial names


def _caller(headers: Mapping[str, str]) -> tuple[str | None, str]:
    """(access key id or bearer token, region of the SigV4 credential scope)."""
    auth = headers.get("authorization", "")
    match = _CREDENTIAL.search(auth)
    if match is not None:
        return match.group(1), match.group(2) or DEFAULT_REGION
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), DEFAULT_REGION
    return None, DEFAULT_REGION


def _text(value: object) -> str:
    # botocore keeps some header values as bytes after signing.
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


def _lowered(headers: Mapping[str, str] | HTTPHeaders) -> dict[str, str]:
    # botocore's HeadersDict keeps (key, value) pairs under key objects that already carry the lower-cased
    # name; reading them directly is several times faster than its MutableMapping iteration, which matters
    # on every in-process call. Anything else (a plain mapping, a future botocore) takes the general path.
    store = getattr(headers, "_dict", None)
    if isinstance(store, dict):
        try:
            return {key._lower: _text(value) for key, value in store.items()}
        except AttributeError:
            pass
    return {str(key).lower(): _text(value) for key, value in headers.items()}


def request_from_http(
    *, method: str, raw_path: str, headers: Mapping[str, str] | HTTPHeaders, body: bytes | None
) -> FakeRequest:
    """The FakeRequest for an HTTP request; unknown routes get operation "" (answered 404 by handle)."""
    lowered = _lowered(headers)
    data = body or b""
    operation, params = route(method, raw_path) or ("", {})
    try:
        parsed = json.loads(data) if data else None
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


def error_reply(code: str, message: str, *, request_id: str, status: int | None = None) -> Reply:
    """An AWS rest-json error: status from the service model, x-amzn-ErrorType, {"message": ...} body."""
    error_type = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return _json({"message": message}, request_id, error_type, status=status or _messages.http_status(code))


def _json(
    body: object, request_id: str, headers: Mapping[str, str] | None = None, *, status: int = 200
) -> Reply:
    if isinstance(body, str):
        body = body.encode()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": JSON, "x-amzn-RequestId": request_id, **(headers or {})}
    return Reply(status=status, headers=all_headers, body=raw)


def resource_arn(model_id: str, *, region: str, account: str) -> str:
    """The ARN IAM names for a model id (as the product reads it); a foundation-model ARN for any other."""
    if model_id.startswith("arn:"):
        return model_id
    try:
        return parse_model_id(model_id, region=region, account=account).arn
    except ValueError:  # InvalidModelIdError, or a region no client would sign for
        return f"arn:{partition_of(region)}:bedrock:{region}::foundation-model/{model_id}"


def _drop_now(exc: ConnectionDrop | None = None) -> Iterator[bytes]:
    yield from ()
    raise exc or ConnectionDrop("the fake Bedrock dropped the connection before answering")


def pause(closing: threading.Event, seconds: float, *, read_timeout: float | None = None) -> None:
    """Wait out a scripted delay; ConnectionDrop when `closing` is set meanwhile (so a transport that stops
    never waits for a long delay), ReadTimeout when the client's `read_timeout` is shorter than the delay."""
    limit = seconds if read_timeout is None else min(seconds, read_timeout)
    if closing.wait(limit):
        raise ConnectionDrop("the fake Bedrock is stopping")
    if limit < seconds:
        raise ReadTimeout(
            f"the scripted delay of {seconds:g} s outlasts the client's read_timeout of {limit:g} s"
        )


def _paced(
    frames: list[bytes], scripted: Scripted, tail: bytes, closing: threading.Event, read_timeout: float | None
) -> Iterator[bytes]:
    for i, frame in enumerate(frames):
        if scripted.event_delay > 0 and i:
            pause(closing, scripted.event_delay, read_timeout=read_timeout)
        yield frame
    if tail:
        yield tail
    if scripted.ending == "drop":
        raise ConnectionDrop("the fake Bedrock dropped the connection mid-stream")


def _encoded(payload: object) -> bytes:
    # Text deltas come as ready-made JSON bytes (the hot path, see _responders._deltas); the rest is encoded.
    return payload if isinstance(payload, bytes) else _responders.compact_json(payload).encode()


def _invoke_chunk(event: object, pad: str) -> bytes:
    body = b'{"bytes":"' + base64.b64encode(_encoded(event)) + b'","p":"' + pad.encode() + b'"}'
    return event_frame("chunk", body)


def _payload(request: FakeRequest, *, invoke: bool) -> Mapping[str, object]:
    # request_from_http already parsed the body; parse again only to word the error for a bad one.
    if isinstance(request.json, Mapping):
        return request.json
    if not request.body and not invoke:
        return {}
    return _responders.parse_json_body(request.body, invoke=invoke)


class _ScriptFailureError(Exception):
    """A scripted answer cannot be produced for this request (reported as an assertion, not a 500)."""


@dataclass
class FakeBedrockCore:
    """One fake Bedrock: the script, the request log and the optional IAM policy. Thread-safe.

    `handle` never raises for anything a client can send: bad input becomes the error Bedrock would answer.
    Every scripted delay waits on `closing`: a transport sets it when it stops, which cuts the delay short
    (the reply then drops its connection). `max_requests` bounds the request log (the newest are kept).
    """

    script: Script = field(default_factory=Script)
    requests: list[FakeRequest] = field(default_factory=list)
    policy: PolicyDocument | None = None
    principal: str = DEFAULT_PRINCIPAL
    account: str = DEFAULT_ACCOUNT
    max_requests: int | None = None
    # Answer calls to models Bedrock would not serve (unknown, profile-only, not in the region, retired)
    # with its errors, from the model catalog; `models`: those a test added (`_models.added_model`).
    strict_models: bool = True
    models: dict[str, Model] = field(default_factory=dict)
    closing: threading.Event = field(default_factory=threading.Event, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _failures: list[str] = field(default_factory=list, repr=False)
    _cache: dict[tuple[str, str | None, bytes], Reply] = field(default_factory=dict, repr=False)
    _counter: int = 0

    def __post_init__(self) -> None:
        bound = self.max_requests
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 1):
            raise ValueError(f"max_requests must be an int >= 1 or None (no bound), got {bound!r}")

    def set_policy(self, policy: object | None, *, principal: str | None = None) -> None:
        # Parsed here, so a broken policy (or one with Condition blocks) fails at the set_policy() line.
        principal = DEFAULT_PRINCIPAL if principal is None else principal
        if policy is not None:
            from safe_bedrock._policy import PolicyDocument  # IAM machinery loads only when used
            from safe_bedrock.testing import _iam

            _iam.validate_principal(principal)
            if isinstance(policy, (str, bytes, Mapping)):
                policy = PolicyDocument.from_json(policy, source="set_policy()")
            elif not isinstance(policy, PolicyDocument):
                raise TypeError(
                    "set_policy() takes a policy document (JSON text, dict or PolicyDocument),"
                    f" got {policy!r}"
                )
        with self.lock:
            self.policy = policy
            self.principal = principal
            if policy is not None:
                self.account = principal.split(":")[4]

    def reset(self) -> None:
        self.script.clear()
        with self.lock:
            self.requests.clear()
            self._failures.clear()
            self.policy = None
            self.principal, self.account = DEFAULT_PRINCIPAL, DEFAULT_ACCOUNT

    def failures(self) -> list[str]:
        """Scripting failures seen while answering (expectations not met, route handlers that raised)."""
        with self.lock:
            return list(self._failures)

    def next_request_id(self) -> str:
        with self.lock:
            self._counter += 1
            n = self._counter
        # Deterministic: the n-th request of any fake gets the same id, which keeps tests reproducible.
        return f"{_REQUEST_ID_PREFIX}{n:012x}"

    # --- answering -------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest, *, read_timeout: float | None = None) -> Reply:
        """The reply to one request. `read_timeout`: the client's, when the transport knows it (in-process),
        so that a scripted delay longer than it ends as a read timeout."""
        request_id = self.next_request_id()
        if not request.operation:
            return error_reply(
                "UnknownOperationException",
                f"The requested operation is not recognized by the service: {request.method} "
                f"{request.path.split('?', 1)[0]}",
                request_id=request_id,
                status=404,
            )
        with self.lock:
            self.requests.append(request)
            if self.max_requests is not None:
                del self.requests[: -self.max_requests]
            policy = self.policy
        if policy is not None:
            from safe_bedrock.testing import _iam

            denial = _iam.decide(
                policy,
                principal=self.principal,
                operation=request.operation,
                model_id=request.model_id,
                path_params=request.path_params,
                region=request.region,
            )
            if denial is not None:
                return error_reply("AccessDeniedException", denial.message, request_id=request_id)
        scripted = self.script.take(request)
        if scripted is None and self.strict_models and request.model_id:
            refusal = _models.refusal(
                request.model_id, region=request.region, operation=request.operation, added=self.models
            )
            if refusal is not None:
                code, variant = refusal
                template = _messages.find(code, variant).template
                message = _messages.render(template, model_id=request.model_id)
                return error_reply(code, message, request_id=request_id, status=_messages.http_status(code))
        try:
            if scripted is not None and scripted.failure is not None:
                raise _ScriptFailureError(scripted.failure)
            if scripted is None and request.operation in _CACHEABLE:
                return self._default(request, request_id)
            return self._answer(request, scripted, request_id, read_timeout=read_timeout)
        except _responders.BadRequest as exc:
            return error_reply("ValidationException", str(exc), request_id=request_id)
        except _ScriptFailureError as exc:
            with self.lock:
                self._failures.append(str(exc))
            reply = error_reply("ValidationException", f"safe-bedrock fake: {exc}", request_id=request_id)
            reply.failure = str(exc)
            return reply

    def _family(self, model_id: str) -> str | None:
        added = self.models.get(_responders.bare_id(model_id))  # a profile of it too
        return added.family if added is not None else None

    def _default(self, request: FakeRequest, request_id: str) -> Reply:
        # Default answers are a pure function of (operation, model id, body): a test suite sending the same
        # prompt again gets the bytes built the first time. Only the request id differs per reply.
        key = (request.operation, request.model_id, request.body)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._answer(request, None, request_id, read_timeout=None)
            if cached.status != 200:
                return cached
            if cached.chunks is not None:
                cached.chunks = tuple(cached.chunks)
            with self.lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = cached
        return replace(cached, headers={**cached.headers, "x-amzn-RequestId": request_id})

    def _answer(
        self, request: FakeRequest, scripted: Scripted | None, request_id: str, *, read_timeout: float | None
    ) -> Reply:
        if scripted is not None and scripted.delay > 0:
            try:
                pause(self.closing, scripted.delay, read_timeout=read_timeout)
            except ConnectionDrop as exc:
                return Reply(status=200, headers={"x-amzn-RequestId": request_id}, chunks=_drop_now(exc))
        if scripted is not None and scripted.kind == "error":
            return self._error(request, scripted, request_id)
        if scripted is not None and scripted.kind == "drop":
            return Reply(status=200, headers={"x-amzn-RequestId": request_id}, chunks=_drop_now())
        if request.operation in _STREAM_OPS:
            return self._stream(request, scripted, request_id, read_timeout=read_timeout)
        if scripted is not None and scripted.kind == "body":
            return _json(scripted.body, request_id, scripted.headers, status=scripted.status)
        text, body = self._scripted_text(request, scripted)
        if body is not None:
            return _json(body, request_id)
        return self._default_body(request, text, request_id)

    def _default_body(self, request: FakeRequest, text: str | None, request_id: str) -> Reply:
        operation, model_id, region = request.operation, request.model_id or "", request.region
        payload = _payload(request, invoke=operation == "InvokeModel")
        headers: dict[str, str] = {}
        body: object
        if operation == "InvokeModel":
            family, answer = _responders.answer_for(
                operation, model_id, payload, text=text, family=self._family(model_id)
            )
            headers = {
                "X-Amzn-Bedrock-Invocation-Latency": str(_responders.latency_ms(answer)[1]),
                "X-Amzn-Bedrock-Output-Token-Count": str(answer.output_tokens),
                "X-Amzn-Bedrock-Input-Token-Count": str(answer.input_tokens),
            }
            body = _responders.invoke_body(family, answer, model_id, payload)
        elif operation == "Converse":
            body = _responders.converse_body(
                _responders.answer_for(operation, model_id, payload, text=text)[1]
            )
        elif operation == "CountTokens":
            body = _responders.count_tokens_body(model_id, payload)
        elif operation == "ApplyGuardrail":
            body = _responders.apply_guardrail_body(payload)
        elif operation == "StartAsyncInvoke":
            body = _responders.start_async_invoke_body(payload, region=region, account=self.account)
        elif operation == "GetAsyncInvoke":
            body = {
                "invocationArn": request.path_params.get("invocationArn", ""),
                "modelArn": f"arn:aws:bedrock:{region}::foundation-model/amazon.nova-reel-v1:0",
                "status": "Completed",
                "submitTime": _ASYNC_SUBMIT_TIME,
                "endTime": _ASYNC_SUBMIT_TIME,
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://fake-bedrock-output/"}},
            }
        elif operation == "ListAsyncInvokes":
            body = {"asyncInvokeSummaries": []}
        else:
            raise _responders.BadRequest(
                f"The safe-bedrock fake has no default answer for {operation}; script one with"
                f" add_response(body=..., operation={operation!r})."
            )
        return _json(body, request_id, headers)

    def _scripted_text(self, request: FakeRequest, scripted: Scripted | None) -> tuple[str | None, object]:
        """(answer text, response body) from a text entry or a route handler; (None, None) for default."""
        if scripted is None or scripted.handler is None:
            return (scripted.text if scripted is not None else None), None
        try:
            result = scripted.handler(request)
        except Exception as exc:
            raise _ScriptFailureError(f"the handler of {scripted.origin} raised {exc!r}") from exc
        if isinstance(result, str):
            return result, None
        if isinstance(result, (Mapping, list)) and request.operation not in _STREAM_OPS:
            return None, result
        raise _ScriptFailureError(
            f"the handler of {scripted.origin} returned {result!r}; return the answer text (str), or for a"
            " non-streaming call the response body (dict)"
        )

    def _message(self, request: FakeRequest, scripted: Scripted, code: str) -> str:
        if scripted.message is not None:
            return scripted.message
        model_id, region, account = request.model_id or "", request.region, self.account
        fields = {
            "principal": self.principal,
            "action": action_for(request.operation),
            "resource": resource_arn(model_id, region=region, account=account)
            if model_id
            else f"arn:{partition_of(region)}:bedrock:{region}:{account}:*",
            "model_id": model_id,
            "region": region,
            "account": account,
            "policy_arn": f"arn:aws:organizations::{account}:policy/{_SCP}",
            "detail": "The request is invalid.",
            **scripted.fields,
        }
        return _messages.render(_messages.find(code, scripted.variant).template, **fields)

    def _error(self, request: FakeRequest, scripted: Scripted, request_id: str) -> Reply:
        code = scripted.code or "InternalServerException"
        message = self._message(request, scripted, code)
        reply = error_reply(code, message, request_id=request_id, status=scripted.status)
        if (seconds := scripted.retry_after) is not None:
            reply.headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        return reply

    def _stream(
        self, request: FakeRequest, scripted: Scripted | None, request_id: str, *, read_timeout: float | None
    ) -> Reply:
        operation, model_id = request.operation, request.model_id or ""
        invoke = operation == "InvokeModelWithResponseStream"
        frames: list[bytes]
        pad = _responders.pads(request.body)  # lazy: seeded only when an invoke stream takes a pad
        if scripted is not None and scripted.events is not None:
            frames = [
                _invoke_chunk(event, next(pad)) if invoke else _custom_frame(event)
                for event in scripted.events
            ]
        else:
            text, _ = self._scripted_text(request, scripted)
            pieces = scripted.pieces if scripted is not None else None
            payload = _payload(request, invoke=invoke)
            family, answer = _responders.answer_for(
                operation, model_id, payload, text=text, pieces=pieces, family=self._family(model_id)
            )
            if invoke:
                bodies = _responders.invoke_stream_chunks(family, answer, model_id)
                frames = [_invoke_chunk(c, next(pad)) for c in bodies]
            else:
                events = _responders.converse_stream_events(answer)
                frames = [event_frame(name, _encoded(body)) for name, body in events]
        headers = {"Content-Type": EVENT_STREAM, "x-amzn-RequestId": request_id}
        if invoke:
            headers["X-Amzn-Bedrock-Content-Type"] = JSON
        if scripted is None or (scripted.ending == "complete" and scripted.event_delay <= 0):
            return Reply(status=200, headers=headers, chunks=frames)
        tail = b""
        if scripted.ending != "complete" and scripted.after is not None:
            following = frames[min(scripted.after, len(frames) - 1)]
            frames = frames[: scripted.after]
            if scripted.mid_frame:
                tail = following[: max(1, len(following) // 2)]
        if scripted.ending == "exception":
            code = scripted.code or "InternalServerException"
            member = _messages.stream_exception_name(code)
            valid = stream_exceptions(operation)
            if member not in valid:
                raise _ScriptFailureError(
                    f"{scripted.origin}: {operation} cannot send {member} (botocore would not even know its"
                    f" code); the mid-stream errors of {operation} are: {', '.join(valid)}"
                )
            frames.append(exception_frame(member, self._message(request, scripted, code)))
        chunks = _paced(frames, scripted, tail, self.closing, read_timeout)
        return Reply(status=200, headers=headers, chunks=chunks)


def new_core(*, max_requests: int | None, models: Iterable[str], strict_models: bool) -> FakeBedrockCore:
    """A core for a transport's constructor arguments, checked here so both transports word errors alike."""
    if isinstance(models, str):
        raise TypeError(f"models= takes a list of model ids, not one string: write models=[{models!r}]")
    added = {model.id: model for model in map(_models.added_model, models)}
    return FakeBedrockCore(max_requests=max_requests, strict_models=bool(strict_models), models=added)


def _custom_frame(event: object) -> bytes:
    if isinstance(event, bytes):
        return event  # a ready-made frame, sent as is
    if isinstance(event, Mapping) and len(event) == 1:
        ((name, body),) = event.items()
        return event_frame(str(name), _responders.compact_json(body).encode())
    raise _ScriptFailureError(
        f"converse_stream events are single-key dicts like {{'contentBlockDelta': {{...}}}}, got {event!r}"
    )
