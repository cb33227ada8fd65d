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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import ClientError, EventStreamError

from safe_bedrock import errors
from safe_bedrock._classify import Diagnosis, classify
from safe_bedrock._fixes import needed_action, suggested_model_id
from safe_bedrock._ids import ModelKind, parse_model_id
from safe_bedrock._measure import request_id_of
from safe_bedrock._observe import safe_text
from safe_bedrock._policy import least_privilege_policy
from safe_bedrock._service import action_for, modeled_status

if TYPE_CHECKING:
    from safe_bedrock._allowlist import Decision
    from safe_bedrock._ids import ModelRef

_E = TypeVar("_E", bound=errors.BedrockServiceError)
_ACCESS_FIELDS = ("principal", "action", "resource", "policy_type", "policy_arn")  # as the message names them

__all__ = ["CallContext", "refused", "refused_request", "translate"]


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


def translate(exc: Exception, *, context: CallContext, exceptions: object | None = None) -> BaseException:
    """The typed error for `exc`, or `exc` itself when it is not a botocore service error.

    `exceptions` is a boto3 client's `.exceptions`; when given, the result is also an instance of the
    modeled class for the error's code. The caller raises the result `from exc`.
    """
    if isinstance(exc, errors.SafeBedrockError) or not isinstance(exc, ClientError):
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
    typed: BaseException = _class_for(klass, _modeled_class(exc, code, exceptions), stream=stream)(**kwargs)
    return typed


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
_classes: dict[tuple[type[Any], type[Any] | None, bool], type[Any]] = {}


def _class_for(typed: type[_E], modeled: type[ClientError] | None, *, stream: bool = False) -> type[_E]:
    """`typed`, or a cached subclass that is also `modeled` (and `EventStreamError` for a stream error)."""
    key = (typed, modeled, stream)
    built = _classes.get(key)
    if built is None:
        built = _build_class(typed, modeled, stream=stream)
        if len(_classes) >= _MAX_CLASSES:
            _classes.clear()
        _classes[key] = built
    return cast("type[_E]", built)


def _build_class(typed: type[Any], modeled: type[Any] | None, *, stream: bool) -> type[Any]:
    bases: tuple[type[BaseException], ...] = (typed,)
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
    built: type[errors.BedrockServiceError] = type(typed.__name__, bases, namespace)
    return built
