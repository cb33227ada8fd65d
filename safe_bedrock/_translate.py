"""One mechanism for the call and for the stream: a botocore error in, a typed error with its fix out.

`translate` turns a botocore `ClientError` (raised by a call) or `EventStreamError` (raised while iterating
a stream) into the class of `safe_bedrock.errors` that names its cause. It *returns* the new error; the
caller raises it chained to the original, `raise translate(exc, context=ctx) from exc`, so the traceback
keeps both. Anything that is not a botocore error comes back unchanged.

Drop-in: the typed error keeps the original `.response` (the same dict) and `.operation_name`, so
`e.response["Error"]["Code"]` is what botocore said. It is also an instance of the client's modeled class
for that code (`client.exceptions.AccessDeniedException`, ...), and of `EventStreamError` when it was
raised mid-stream, through a small per-(typed, modeled) subclass built once and cached. Python's `except`
checks the real MRO, which is why the class itself must inherit both.

What follows from the cause (class, retryability, fix) is read from the one cause table, `_classify.Cause`.
Sans-I/O: no network, no clock, no logging; the service model is read once for modeled HTTP statuses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    EventStreamError,
    NoCredentialsError,
    PartialCredentialsError,
    RefreshWithMFAUnsupportedError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

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
_ACCESS_FIELDS = ("principal", "action", "resource", "policy_type", "policy_arn")  # as the message names them

__all__ = [
    "CREDENTIALS_ERRORS",
    "CallContext",
    "Counted",
    "StreamEnded",
    "credentials_error",
    "is_local_endpoint",
    "refused",
    "refused_request",
    "stream_fault",
    "translate",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What the client knows about the failed call; the error's fields and fix (with the message's
    `Diagnosis`) come from it."""

    operation: str
    region: str
    model_id: str | None = None
    model_arn: str | None = None
    ref: ModelRef | None = None
    mid_stream: bool = False
    events_received: int = 0
    # A mid-stream error carries no response metadata; the client passes the stream's request id here.
    request_id: str | None = None
    # Set by a client: which attempt of the call failed (0 = not counted) and the seconds since it began;
    # the endpoint names where credentials were missing for.
    attempts: int = 0
    elapsed_s: float | None = None
    endpoint_url: str | None = None


def translate(exc: Exception, *, context: CallContext, exceptions: object | None = None) -> BaseException:
    """The typed error for `exc`, or `exc` itself when it is not a botocore service error.

    `exceptions` is a boto3 client's `.exceptions`; when given, the result is also an instance of the
    modeled class for the error's code. The caller raises the result `from exc`.
    """
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
    kwargs: dict[str, Any] = {
        "code": code,
        "message": message,
        "operation": call.operation,
        "model_id": context.model_id,
        "model_arn": context.model_arn,
        "region": context.region or None,
        "request_id": request_id_of(response) or context.request_id,
        "http_status": http_status,
        "retryable": why.cause.retryable,
        "fix": why.cause.fix(call, why),
        "mid_stream": mid_stream,
        "events_received": context.events_received,
        # The same dict, for drop-in code reading e.response; a malformed one (which botocore itself
        # cannot build an error from) is replaced by a fresh response in botocore's shape.
        "response": response if _well_formed(response) else None,
    }
    klass = why.cause.error_class
    if issubclass(klass, errors.AccessDeniedError):
        kwargs.update({name: getattr(why, name) for name in _ACCESS_FIELDS})
    if klass is errors.MissingPermissionError:
        kwargs["suggested_policy"] = _suggested_policy(call.ref, needed_action(call, why))
    if klass is errors.InferenceProfileRequiredError:
        kwargs["suggested_model_id"] = suggested_model_id(call, why)
    counted = context.attempts > 0
    if counted:
        kwargs.update(attempts=context.attempts, elapsed_s=context.elapsed_s)
    modeled = _modeled_class(exc, code, exceptions)
    typed: BaseException = _class_for(klass, modeled, stream=stream, counted=counted)(**kwargs)
    return typed


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
    """The typed error for botocore's missing, partial or unrefreshable credentials (also its class)."""
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
    own = type(exc)
    klass = errors.CredentialsNotFoundError
    if own is not NoCredentialsError and not issubclass(own, errors.SafeBedrockError):
        klass = _class_for(klass, own)
    return klass(
        problem=problem,
        fix=credentials_fix(kind, endpoint_url=safe_text(endpoint_url or ""), local=local),
        operation=operation or None,
        endpoint_url=endpoint_url,
        local_endpoint=local,
    )


# -- attempts ----------------------------------------------------------------------------------------------


_COUNTED_FIELDS = ("attempts", "elapsed_s")


class Counted:
    """Mixed into the typed error a client raises: how many attempts the call made and the seconds spent.

    When there was more than one, `str(error)` says "after 3 attempts over 2.1 s" and `fields()` has both.
    A pickled copy is the public class (as every error): it keeps both as attributes, not in `fields()`.
    """

    attempts: int = 1
    elapsed_s: float | None = None

    def __init__(self, *, attempts: int = 1, elapsed_s: float | None = None, **kwargs: Any) -> None:
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        super().__init__(**kwargs)

    def _field_names(self) -> dict[str, None]:
        names: dict[str, None] = super()._field_names()  # type: ignore[misc]
        return {**names, **dict.fromkeys(_COUNTED_FIELDS)} if self.attempts > 1 else names

    @property
    def summary(self) -> str:
        text: str = super().summary  # type: ignore[misc]
        if self.attempts <= 1:
            return text
        spent = f" over {self.elapsed_s:.1f} s" if self.elapsed_s is not None else ""
        code, sep, rest = text.partition(": ")
        return f"{code} after {self.attempts} attempts{spent}{sep}{rest}"

    def __reduce__(self) -> tuple[Any, ...]:
        reduced: Any = super().__reduce__()
        rebuild, (public, kwargs) = reduced
        kept = {name: kwargs.pop(name, getattr(self, name)) for name in _COUNTED_FIELDS}
        return (rebuild, (public, kwargs), kept)


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
    ref: ModelRef,
    *,
    operation: str,
    decision: Decision,
    source: str,
    exceptions: object | None = None,
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
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}
    return _class_for(errors.ModelNotAllowedError, _lookup_modeled(exceptions, code))(
        code=code,
        message=message,
        http_status=status,
        retryable=False,
        response=response,
        **fields,
    )


# -- the facts a fix needs ------------------------------------------------------------------------------


def _account_named(diagnosis: Diagnosis) -> str | None:
    # The denial names the caller's ARN (and often the resource's), both carrying the account id.
    for arn in (diagnosis.resource, diagnosis.principal):
        parts = (arn or "").split(":")
        if len(parts) > 4 and len(parts[4]) == 12 and parts[4].isdigit():
            return parts[4]
    return None


def _with_account(context: CallContext, diagnosis: Diagnosis) -> ModelRef | None:
    """The call's model reference, with the account filled in when the id had none and AWS named it.

    A bare inference profile id has no account, but IAM checks the profile's full ARN; with the account
    from the message, the fix and the suggested policy name that exact ARN instead of a wildcard.
    """
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


def _modeled_name(code: str) -> str:
    # Mid-stream codes arrive lowerCamel (throttlingException); the modeled class is UpperCamel.
    return code[:1].upper() + code[1:]


def _lookup_modeled(exceptions: object | None, code: str) -> type[ClientError] | None:
    from_code = getattr(exceptions, "from_code", None)
    if not code or not callable(from_code):
        return None
    for name in dict.fromkeys((code, _modeled_name(code), _modeled_name(code) + "Exception")):
        found = from_code(name)
        if isinstance(found, type) and issubclass(found, ClientError) and found is not ClientError:
            return found
    return None


def _modeled_class(exc: ClientError, code: str, exceptions: object | None) -> type[ClientError] | None:
    found = _lookup_modeled(exceptions, code)
    if found is not None:
        return found
    # botocore already raised the modeled class (client.exceptions.X): keep it even without `exceptions`.
    own = type(exc)
    if own not in (ClientError, EventStreamError) and not issubclass(own, errors.SafeBedrockError):
        return own
    return None


# Bounded: each boto3 session has its own modeled classes, so a process making many sessions would
# otherwise keep one class per session forever. Clearing only costs rebuilding a class on next use.
_MAX_CLASSES = 512
_classes: dict[tuple[type[Any], type[Any] | None, bool, bool], type[Any]] = {}


def _class_for(
    typed: type[_T], modeled: type[Exception] | None, *, stream: bool = False, counted: bool = False
) -> type[_T]:
    """`typed`, or a cached subclass that is also `modeled` (and `EventStreamError` for a stream error,
    and `Counted` for an error a client raises)."""
    key = (typed, modeled, stream, counted)
    built = _classes.get(key)
    if built is None:
        built = _build_class(typed, modeled, stream=stream, counted=counted)
        if len(_classes) >= _MAX_CLASSES:
            _classes.clear()
        _classes[key] = built
    return cast("type[_T]", built)


def _build_class(
    typed: type[Any], modeled: type[Any] | None, *, stream: bool, counted: bool = False
) -> type[Any]:
    bases: tuple[type[Any], ...] = (Counted, typed) if counted else (typed,)
    if modeled is not None and not issubclass(typed, modeled):
        bases += (modeled,)
    if stream and not any(issubclass(base, EventStreamError) for base in bases):
        bases += (EventStreamError,)
    if len(bases) == 1:
        return typed
    namespace = {
        "__module__": typed.__module__,
        "__qualname__": typed.__qualname__,
        "__doc__": typed.__doc__,
        errors.DYNAMIC_MARK: True,
    }
    # Named like the public class so tracebacks and logs read naturally; pickles as the public class.
    built: type[Exception] = type(typed.__name__, bases, namespace)
    return built


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
    """The class of `exc` an app may catch, to keep as a base of the typed error (None: keep none)."""
    from urllib3.exceptions import ProtocolError
    from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

    # urllib3's IncompleteRead and friends also derive from http.client's classes (other constructors):
    # the class an app catches is ProtocolError or ReadTimeoutError.
    for public in (Urllib3ReadTimeoutError, ProtocolError):
        if isinstance(exc, public):
            return public
    own = type(exc)
    return own if own.__module__ in _KEPT_MODULES and issubclass(own, Exception) else None


def _is_timeout(exc: BaseException) -> bool:
    from botocore.exceptions import ReadTimeoutError
    from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

    return isinstance(exc, (TimeoutError, ReadTimeoutError, Urllib3ReadTimeoutError))


def _is_connection(exc: BaseException) -> bool:
    import sys

    from botocore.exceptions import HTTPClientError
    from urllib3.exceptions import HTTPError, ProtocolError

    if isinstance(exc, (ProtocolError, HTTPError, HTTPClientError, ConnectionError)):
        return True
    aiohttp = sys.modules.get("aiohttp")  # the async transport; the sync client never imports it
    return aiohttp is not None and isinstance(
        exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)
    )


def _stream_fault_kind(exc: BaseException) -> tuple[type[errors.ModelStreamError], str] | None:
    from botocore.eventstream import ChecksumMismatch, ParserError

    if isinstance(exc, StreamEnded):
        if exc.inside_frame:
            return errors.StreamTruncatedError, "StreamTruncated"
        return errors.StreamIncompleteError, "StreamIncomplete"
    if isinstance(exc, ChecksumMismatch):
        return errors.StreamChecksumError, "StreamChecksumMismatch"
    if isinstance(exc, ParserError):
        return errors.StreamFrameError, "StreamFrameInvalid"
    if _is_timeout(exc):  # before connection errors: aiohttp's timeout is also a connection error
        return errors.StreamReadTimeoutError, "StreamReadTimeout"
    if _is_connection(exc):
        return errors.StreamConnectionError, "StreamConnectionBroken"
    return None


def _fault_text(klass: type[errors.ModelStreamError], exc: BaseException) -> tuple[str, str]:
    """(message, fix) for a stream fault; the summary adds how many events arrived before it."""
    again = "call again (a new request; the events already received are not replayed)"
    whole = f"do not use the partial answer as whole; {again}"
    if klass is errors.StreamTruncatedError:
        leftover = exc.leftover if isinstance(exc, StreamEnded) else 0
        cut = f"The stream ended in the middle of a frame ({leftover} bytes of it arrived)"
        return f"{cut}: the answer is cut short.", whole
    if klass is errors.StreamIncompleteError:
        return "The stream ended without its closing events: the answer is cut short.", whole
    original = f"{type(exc).__name__}: {exc}"
    if klass is errors.StreamReadTimeoutError:
        slow = (
            "if the model pauses longer than that between events, raise read_timeout in the botocore Config"
        )
        return f"No byte arrived within the read timeout ({original}).", f"{again}; {slow}"
    if klass is errors.StreamConnectionError:
        often = (
            "if it happens often, look at proxies or load balancers on the way (idle timeouts, body limits)"
        )
        return f"The connection broke ({original}).", f"{again}; {often}"
    damaged = (
        "if it keeps happening, look at what sits on the way (a proxy or TLS inspection rewriting bodies)"
    )
    return f"A frame of the event stream was damaged in transit ({original}).", f"{again}; {damaged}"


def stream_fault(exc: Exception, *, context: CallContext) -> BaseException:
    """The typed `ModelStreamError` for a fault of the transport or the framing while a stream is read,
    or `exc` itself when it is none of them (a bug in the caller's code stays what it is).

    The result is also an instance of the class boto3 raised (`ChecksumMismatch`, urllib3's
    `ProtocolError`, ...), so handlers written for it keep working; the caller raises it `from exc`.
    """
    kind = _stream_fault_kind(exc)
    if kind is None:
        return exc
    klass, code = kind
    message, fix = _fault_text(klass, exc)
    kwargs: dict[str, Any] = {
        "code": code,
        "message": message,
        "operation": context.operation,
        "model_id": context.model_id,
        "model_arn": context.model_arn,
        "region": context.region or None,
        "request_id": context.request_id,
        "retryable": True,
        "fix": fix,
        "mid_stream": True,
        "events_received": context.events_received,
    }
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
