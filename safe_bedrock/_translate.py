"""One mechanism for the call and for the stream: a botocore error in, a typed error with its fix out.

`translate` *returns* the typed error and the caller raises it `from` the original, so the traceback keeps
both. Drop-in: the typed error keeps the original `.response` and `.operation_name`, and is also an
instance of the client's modeled class for its code (and of `EventStreamError` mid-stream) through a
small cached subclass: Python's `except` checks the real MRO, so the class itself must inherit both.
What follows from the cause (class, retryability, fix) is read from the one cause table, `_classify.Cause`.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from botocore.eventstream import ChecksumMismatch, ParserError
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    EventStreamError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    RefreshWithMFAUnsupportedError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock import errors
from safe_bedrock._classify import Diagnosis, classify
from safe_bedrock._fixes import credentials as credentials_fix
from safe_bedrock._fixes import needed_action, suggested_model_id
from safe_bedrock._ids import ModelKind, parse_model_id
from safe_bedrock._measure import request_id_of
from safe_bedrock._observe import safe_text
from safe_bedrock._policy import least_privilege_policy
from safe_bedrock._service import action_for, modeled_status

if TYPE_CHECKING:
    from safe_bedrock._allowlist import Decision
    from safe_bedrock._ids import ModelRef

_T = TypeVar("_T", bound=Exception)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What the client knows about the failed call; with the message's `Diagnosis`, the error's fields."""

    operation: str
    region: str
    model_id: str | None = None
    model_arn: str | None = None
    ref: ModelRef | None = None
    mid_stream: bool = False
    events_received: int = 0
    # A mid-stream error carries no response metadata; the client passes the stream's request id here.
    request_id: str | None = None
    # Set by a client: which attempt failed (0 = not counted) and the seconds since the call began.
    attempts: int = 0
    elapsed_s: float | None = None
    endpoint_url: str | None = None


def translate(exc: Exception, *, context: CallContext, exceptions: object | None = None) -> BaseException:
    """The typed error for `exc` (also of the modeled class in a client's `exceptions`), else `exc` itself."""
    if context.mid_stream and not isinstance(exc, (ClientError, errors.SafeBedrockError)):
        return stream_fault(exc, context=context)
    if isinstance(exc, errors.SafeBedrockError):
        return exc
    if isinstance(exc, CREDENTIALS_ERRORS):
        return credentials_error(exc, operation=context.operation, endpoint_url=context.endpoint_url)
    if not isinstance(exc, ClientError):
        return exc
    raw: object = exc.response
    response: dict[str, Any] = raw if isinstance(raw, dict) else {}
    error = response.get("Error")
    error = error if isinstance(error, dict) else {}
    code = _text(error.get("Code"))
    message = _text(error.get("Message"))
    stream = isinstance(exc, EventStreamError)
    mid_stream = context.mid_stream or stream
    http_status = _status(response) or (modeled_status(code) if mid_stream else None)
    why = classify(code, message, http_status=http_status)
    call = replace(
        context,
        operation=_text(getattr(exc, "operation_name", None)) or context.operation,
        mid_stream=mid_stream,
        ref=_with_account(context, why),
    )
    kwargs = _fields(call, code=code, message=message, fix=why.cause.fix(call, why))
    kwargs |= {
        "request_id": request_id_of(response) or context.request_id,
        "http_status": http_status,
        "retryable": why.cause.retryable,
        # The same dict, for drop-in code reading e.response; a malformed one (which botocore itself
        # cannot build an error from) is replaced by a fresh response in botocore's shape.
        "response": response if _well_formed(response) else None,
    }
    klass = why.cause.error_class
    if issubclass(klass, errors.AccessDeniedError):  # the fields the denial names, as the message names them
        kwargs.update({name: getattr(why, name) for name in errors.AccessDeniedError._FIELDS})
    if klass is errors.MissingPermissionError:
        kwargs["suggested_policy"] = _suggested_policy(call.ref, needed_action(call, why))
    if klass is errors.InferenceProfileRequiredError:
        kwargs["suggested_model_id"] = suggested_model_id(call, why)
    kwargs.update(attempts=max(context.attempts, 1), elapsed_s=context.elapsed_s)
    return _class_for(klass, _modeled(exceptions, code, raised=type(exc)), stream=stream)(**kwargs)


def _fields(call: CallContext, **given: Any) -> dict[str, Any]:
    return {
        **given,
        "operation": call.operation,
        "model_id": call.model_id,
        "model_arn": call.model_arn,
        "region": call.region or None,
        "request_id": call.request_id,
        "mid_stream": call.mid_stream,
        "events_received": call.events_received,
    }


# -- no credentials --------------------------------------------------------------------------------------

# What botocore raises when it has no usable credentials to sign with; all before anything is sent.
CREDENTIALS_ERRORS: tuple[type[Exception], ...] = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
    SSOTokenLoadError,
    RefreshWithMFAUnsupportedError,
)
_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """Whether the endpoint is on this machine (loopback or localhost): a fake, never real AWS."""
    try:
        host = urlsplit(endpoint_url or "").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials_error(
    exc: Exception, *, operation: str | None, endpoint_url: str | None
) -> errors.CredentialsNotFoundError:
    if isinstance(exc, PartialCredentialsError):
        problem, kind = f"only part of the credentials was found ({exc})", "partial"
    elif isinstance(exc, (UnauthorizedSSOTokenError, SSOTokenLoadError)):
        problem, kind = "the SSO session has expired or was never started", "sso"
    elif isinstance(exc, TokenRetrievalError):
        problem, kind = f"the SSO token could not be refreshed ({exc})", "sso"
    elif isinstance(exc, (CredentialRetrievalError, RefreshWithMFAUnsupportedError)):
        problem, kind = f"the credentials could not be loaded or refreshed ({exc})", "refresh"
    else:
        problem, kind = "botocore found no credentials to sign the request with; nothing was sent", "none"
    local = is_local_endpoint(endpoint_url)
    return _class_for(errors.CredentialsNotFoundError, type(exc))(
        problem=problem,
        fix=credentials_fix(kind, endpoint_url=safe_text(endpoint_url or ""), local=local),
        operation=operation or None,
        endpoint_url=endpoint_url,
        local_endpoint=local,
    )


def _allowlist_home(source: str) -> str:
    kind, _, where = source.partition(" ")
    if kind == "env":
        return f"the {where} environment variable (comma separated)"
    if kind == "file":
        return f"the allowlist file {where}"
    if kind == "policy":
        return f"the IAM policy {where} (an Allow of the invoke actions on the model's ARN)"
    return "the allow= list the client was built with"


def refused(
    ref: ModelRef, *, operation: str, decision: Decision, source: str, exceptions: object | None = None
) -> errors.ModelNotAllowedError:
    """The error for a call the allowlist refused; nothing was sent, so it is built in Bedrock's terms."""
    closest = tuple(decision.closest)
    nearby = f" Closest allowed: {', '.join(closest)}." if closest else " Nothing similar is allowed."
    why = decision.reason or "not on the allowlist"
    return _refusal(
        f"Model '{ref.raw}' ({ref.arn}) is refused by the allowlist ({_allowlist_home(source)}): {why}; "
        f"{operation} was refused before anything was sent.{nearby}",
        exceptions=exceptions,
        operation=operation,
        model_id=ref.raw,
        model_arn=ref.arn,
        region=ref.region or None,
        fix=decision.fix or f"add `{decision.entry_to_add}` to {_allowlist_home(source)}",
        action=action_for(operation),
        resource=ref.arn,
        allowlist_source=source,
        closest=closest,
        entry_to_add=decision.entry_to_add,
    )


def refused_request(
    problem: str, *, source: str, exceptions: object | None = None
) -> errors.ModelNotAllowedError:
    """The error for a request the wire check cannot read back as a call the client would make."""
    return _refusal(
        f"Refused before anything was sent: {problem}.",
        exceptions=exceptions,
        operation="",
        fix="make calls through the client's methods; an event handler or other code between the call and "
        f"the network changed this request (the allowlist is {_allowlist_home(source)})",
        allowlist_source=source,
    )


def _refusal(message: str, *, exceptions: object | None, **fields: Any) -> errors.ModelNotAllowedError:
    # Built by us, so its response (unlike Bedrock's) can be safe too: the source names a file or variable.
    code, message = "AccessDeniedException", safe_text(message)
    status = modeled_status(code)
    metadata: dict[str, Any] = {
        "RequestId": "",
        "HTTPStatusCode": status,
        "HTTPHeaders": {},
        "RetryAttempts": 0,
    }
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}
    klass = _class_for(errors.ModelNotAllowedError, _modeled(exceptions, code))
    return klass(code=code, message=message, http_status=status, response=response, **fields)


# -- the facts a fix needs ------------------------------------------------------------------------------


def _account_named(diagnosis: Diagnosis) -> str | None:
    # The denial names the caller's ARN (and often the resource's), both carrying the account id.
    for arn in (diagnosis.resource, diagnosis.principal):
        parts = (arn or "").split(":")
        if len(parts) > 4 and len(parts[4]) == 12 and parts[4].isdigit():
            return parts[4]
    return None


def _with_account(context: CallContext, diagnosis: Diagnosis) -> ModelRef | None:
    # A bare inference profile id has no account, but IAM checks the profile's full ARN: with the account
    # the denial names, the fix and the suggested policy name that exact ARN instead of a wildcard.
    ref = context.ref
    if ref is None or ref.account or ref.kind is not ModelKind.INFERENCE_PROFILE:
        return ref
    account = _account_named(diagnosis)
    if account is None:
        return ref
    try:
        return parse_model_id(
            ref.raw, region=ref.region or context.region, partition=ref.partition, account=account
        )
    except errors.InvalidModelIdError:
        return ref


def _suggested_policy(ref: ModelRef | None, action: str) -> dict[str, Any] | None:
    if ref is None:
        return None
    try:
        return dict(least_privilege_policy([ref], actions=[action]))
    except errors.SafeBedrockError:  # a profile whose routes nobody knows: no policy beats a guessed one
        return None


# -- reading the botocore response -----------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _well_formed(response: dict[str, Any]) -> bool:
    return all(isinstance(response.get(key, {}), dict) for key in ("Error", "ResponseMetadata"))


def _status(response: dict[str, Any]) -> int | None:
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    return status if isinstance(status, int) and not isinstance(status, bool) and status > 0 else None


# -- the drop-in classes ---------------------------------------------------------------------------------


def _modeled(
    exceptions: object | None, code: str, *, raised: type[Exception] | None = None
) -> type[ClientError] | None:
    """The client's modeled class for `code`, else the modeled class botocore already raised (if any)."""
    from_code = getattr(exceptions, "from_code", None)
    upper = code[:1].upper() + code[1:]  # mid-stream codes arrive lowerCamel (throttlingException)
    for name in dict.fromkeys((code, upper, upper + "Exception")) if code and callable(from_code) else ():
        found = from_code(name)  # type: ignore[misc]
        if isinstance(found, type) and issubclass(found, ClientError) and found is not ClientError:
            return found
    if (
        raised is None
        or raised in (ClientError, EventStreamError)
        or issubclass(raised, errors.SafeBedrockError)
    ):
        return None
    return raised  # type: ignore[return-value]


# Bounded: each boto3 session has its own modeled classes, so a process making many sessions would
# otherwise keep one class per session forever. Clearing only costs rebuilding a class on next use.
_MAX_CLASSES = 512
_classes: dict[tuple[type[Any], type[Any] | None, bool], type[Any]] = {}


def _class_for(typed: type[_T], modeled: type[Exception] | None, *, stream: bool = False) -> type[_T]:
    """`typed`, or a cached subclass that is also `modeled` (and `EventStreamError` for a stream error)."""
    key = (typed, modeled, stream)
    built = _classes.get(key)
    if built is not None:
        return cast("type[_T]", built)
    bases: tuple[type[Any], ...] = (typed,)
    if modeled is not None and not issubclass(typed, modeled):
        bases += (modeled,)
    if stream and not any(issubclass(base, EventStreamError) for base in bases):
        bases += (EventStreamError,)
    built = typed
    if len(bases) > 1:
        # Named like the public class so tracebacks and logs read naturally; pickles as the public class.
        namespace = {name: getattr(typed, name) for name in ("__module__", "__qualname__", "__doc__")}
        built = type(typed.__name__, bases, {**namespace, errors.DYNAMIC_MARK: True})
    if len(_classes) >= _MAX_CLASSES:
        _classes.clear()
    _classes[key] = built
    return cast("type[_T]", built)


# -- mid-stream faults of the transport and the framing ----------------------------------------------------


class StreamEnded(Exception):  # noqa: N818 - a fact handed to `translate`, never raised to a caller
    """The stream ended without its closing events (`inside_frame`: with a partial frame left over)."""

    def __init__(self, *, inside_frame: bool, leftover: int = 0) -> None:
        self.inside_frame = inside_frame
        self.leftover = leftover
        super().__init__(f"the stream ended {'inside a frame' if inside_frame else 'without closing events'}")


# Where an app may already catch what boto3 raised: these classes of the transports are kept as a base.
_KEPT_MODULES = frozenset(
    {
        "botocore.eventstream",
        "botocore.exceptions",
        "aiobotocore.response",
        "aiohttp.client_exceptions",
        "builtins",
    }
)


def _transport_class(exc: BaseException) -> type[Exception] | None:
    # urllib3's IncompleteRead and friends also derive from http.client's classes (other constructors):
    # the class an app catches is ProtocolError or ReadTimeoutError.
    for public in (Urllib3ReadTimeoutError, ProtocolError):
        if isinstance(exc, public):
            return public
    own = type(exc)
    return own if own.__module__ in _KEPT_MODULES and issubclass(own, Exception) else None


_AGAIN = "call again (a new request; the events already received are not replayed)"
_CUT = f"do not use the partial answer as whole; {_AGAIN}"
_DAMAGED = "if it keeps happening, look at what sits on the way (a proxy or TLS inspection rewriting bodies)"
_SLOW = "if the model pauses longer than that between events, raise read_timeout in the botocore Config"
_OFTEN = "if it happens often, look at proxies or load balancers on the way (idle timeouts, body limits)"


def _fault(exc: BaseException) -> tuple[type[errors.ModelStreamError], str, str, str] | None:
    """(class, code, message, fix) of a fault of the transport or the framing; None for anything else."""
    if isinstance(exc, StreamEnded) and exc.inside_frame:
        cut = f"The stream ended in the middle of a frame ({exc.leftover} bytes of it arrived)"
        return errors.StreamTruncatedError, "StreamTruncated", f"{cut}: the answer is cut short.", _CUT
    if isinstance(exc, StreamEnded):
        cut = "The stream ended without its closing events: the answer is cut short."
        return errors.StreamIncompleteError, "StreamIncomplete", cut, _CUT
    damaged = f"A frame of the event stream was damaged in transit ({type(exc).__name__}: {exc})."
    if isinstance(exc, ChecksumMismatch):
        return errors.StreamChecksumError, "StreamChecksumMismatch", damaged, f"{_AGAIN}; {_DAMAGED}"
    if isinstance(exc, ParserError):
        return errors.StreamFrameError, "StreamFrameInvalid", damaged, f"{_AGAIN}; {_DAMAGED}"
    # Timeouts before connection errors: aiohttp's timeout is also a connection error.
    if isinstance(exc, (TimeoutError, ReadTimeoutError, Urllib3ReadTimeoutError)):
        slow = f"No byte arrived within the read timeout ({type(exc).__name__}: {exc})."
        return errors.StreamReadTimeoutError, "StreamReadTimeout", slow, f"{_AGAIN}; {_SLOW}"
    broken: tuple[type[BaseException], ...] = (ProtocolError, HTTPError, HTTPClientError, ConnectionError)
    aiohttp = sys.modules.get("aiohttp")  # the async transport; the sync client never imports it
    if aiohttp is not None:
        broken += (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)
    if not isinstance(exc, broken):
        return None
    broke = f"The connection broke ({type(exc).__name__}: {exc})."
    return errors.StreamConnectionError, "StreamConnectionBroken", broke, f"{_AGAIN}; {_OFTEN}"


def stream_fault(exc: Exception, *, context: CallContext) -> BaseException:
    """The typed `ModelStreamError` for a fault of the transport or the framing while a stream is read (also
    the class boto3 raised for it), or `exc` itself (a bug in the caller's code stays what it is)."""
    fault = _fault(exc)
    if fault is None:
        return exc
    klass, code, message, fix = fault
    kwargs = {**_fields(context, code=code, message=message, fix=fix), "retryable": True, "mid_stream": True}
    kept = None if isinstance(exc, StreamEnded) else _transport_class(exc)
    try:
        typed: BaseException = _class_for(klass, cast("type[ClientError] | None", kept))(**kwargs)
    except TypeError:  # a transport class that cannot share a base with ours (layout): keep ours alone
        typed = klass(**kwargs)
    if kept is not None:
        # What a handler of the original may read (urllib3's `url`, botocore's `kwargs`): the same values.
        for name, value in vars(exc).items():
            if not name.startswith("__") and not hasattr(typed, name):
                setattr(typed, name, value)
    return typed
