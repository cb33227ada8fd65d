"""The errors safe-bedrock raises, as a tree.

```
SafeBedrockError
├── InvalidModelIdError (also ValueError)      malformed or unsafe modelId, refused locally
├── AllowlistError (also ValueError)           a malformed or too-broad allowlist entry or source
├── PolicyError (also ValueError)              an IAM policy document safe-bedrock will not guess about
├── CredentialsNotFoundError                    no usable AWS credentials (also botocore NoCredentialsError)
└── BedrockServiceError (also botocore ClientError)
    ├── AccessDeniedError
    │   ├── ModelNotAllowedError               refused locally by the allowlist
    │   ├── MissingPermissionError             implicit deny ("because no <type> policy allows ...")
    │   ├── ExplicitDenyError                  "with an explicit deny in a <type> policy"
    │   ├── ModelAccessNotEnabledError         model access not granted in this region
    │   ├── MarketplaceSubscriptionError       aws-marketplace permissions or payment instrument
    │   └── InvalidCredentialsError            unrecognized or invalid token
    │       └── ExpiredCredentialsError
    ├── ModelNotFoundError                     unknown id, wrong region, invalid identifier
    │   └── ModelRetiredError                  legacy or end-of-life model
    ├── InferenceProfileRequiredError          "... with on-demand throughput isn't supported ..."
    ├── InvalidRequestError                    any other ValidationException
    ├── QuotaExceededError
    ├── ModelError                             ModelErrorException (424)
    └── TransientError                         retryable
        ├── ThrottlingError
        ├── ModelNotReadyError
        ├── ModelTimeoutError
        ├── ServiceUnavailableError
        ├── InternalServerError
        └── ModelStreamError                   the stream failed after it began (mid_stream=True)
            ├── StreamFrameError               a frame that does not parse (also botocore ParserError)
            │   └── StreamChecksumError        a frame failing its CRC (also botocore ChecksumMismatch)
            ├── StreamIncompleteError          ended without its closing events (was silent in boto3)
            │   └── StreamTruncatedError       ended inside a frame
            ├── StreamConnectionError          connection dropped (also urllib3 ProtocolError, ...)
            └── StreamReadTimeoutError         no byte within read_timeout (also urllib3 ReadTimeoutError)

EmptyAllowlistWarning (a UserWarning)          an allowlist with no entries: every call will be refused
UnknownModelWarning (a UserWarning)            an entry that names no model the model catalog knows (typo?)
```

How errors are classified, stay drop-in for boto3 code and are safe to log: docs/reference/errors.md.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError

__all__ = [
    "AccessDeniedError",
    "AllowlistError",
    "BedrockServiceError",
    "CredentialsNotFoundError",
    "EmptyAllowlistWarning",
    "ExpiredCredentialsError",
    "ExplicitDenyError",
    "InferenceProfileRequiredError",
    "InternalServerError",
    "InvalidCredentialsError",
    "InvalidModelIdError",
    "InvalidRequestError",
    "MarketplaceSubscriptionError",
    "MissingPermissionError",
    "ModelAccessNotEnabledError",
    "ModelError",
    "ModelNotAllowedError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "ModelRetiredError",
    "ModelStreamError",
    "ModelTimeoutError",
    "PolicyError",
    "QuotaExceededError",
    "SafeBedrockError",
    "ServiceUnavailableError",
    "StreamChecksumError",
    "StreamConnectionError",
    "StreamFrameError",
    "StreamIncompleteError",
    "StreamReadTimeoutError",
    "StreamTruncatedError",
    "ThrottlingError",
    "TransientError",
    "UnknownModelWarning",
]


# Set in the namespace of the per-client classes built by `safe_bedrock._translate`: they present themselves
# as this module's classes in tracebacks, but are not reachable by name, so pickling must skip them.
DYNAMIC_MARK = "_safe_bedrock_dynamic"


def _public_class(obj: BaseException) -> type[BaseException]:
    # Translated errors may be instances of a per-client subclass that also inherits the client's modeled
    # exception class; such classes cannot be pickled by name, so pickling falls back to our public class.
    for klass in type(obj).__mro__:
        if klass.__module__ == __name__ and DYNAMIC_MARK not in vars(klass):
            return klass
    return type(obj)  # pragma: no cover - every class here has this module


def _safe(text: str) -> str:
    # Imported here: _observe (the one home of redaction and escaping) imports this module.
    from safe_bedrock._observe import safe_text

    return safe_text(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Bedrock's messages are a sentence or two; a longer one (an echoed request) is cut in `str(error)`.
_MAX_MESSAGE = 1000


def _rebuild(klass: type[BaseException], kwargs: dict[str, Any]) -> BaseException:
    return klass(**kwargs)


class SafeBedrockError(Exception):
    """Base of every error safe-bedrock raises. Added in version 0.1.0."""


class InvalidModelIdError(SafeBedrockError, ValueError):
    """A modelId that Bedrock would not accept, or that is unsafe to send; refused before any request.
    Added in version 0.1.0."""

    def __init__(self, *, model_id: object, problem: str, fix: str) -> None:
        self.model_id = model_id
        self.problem = _safe(problem)
        self.fix = _safe(fix)
        shown = _clip(_safe(repr(model_id)), 120)
        super().__init__(f"Invalid modelId {shown}: {self.problem}. Fix: {self.fix}")

    def _shown(self) -> str | None:
        # The id as text, escaped and masked (it is untrusted input), and cut: it may be a whole document.
        if self.model_id is None:
            return None
        return _clip(_safe(self.model_id if type(self.model_id) is str else repr(self.model_id)), 120)

    def fields(self) -> dict[str, Any]:
        """The model id (as text, escaped), the problem and the fix, for JSON output or structured logs."""
        return {"model_id": self._shown(), "problem": self.problem, "fix": self.fix}

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {"model_id": self.model_id, "problem": self.problem, "fix": self.fix}
        return (_rebuild, (_public_class(self), kwargs))


class AllowlistError(SafeBedrockError, ValueError):
    """An allowlist entry or source that is malformed or too broad; names the entry, source and fix.
    Added in version 0.1.0."""

    def __init__(self, *, source: str, problem: str, fix: str, entry: str | None = None) -> None:
        self.source = source
        self.problem = problem
        self.fix = fix
        self.entry = entry
        subject = f"allowlist entry {entry!r} ({source})" if entry is not None else f"allowlist from {source}"
        super().__init__(f"{subject}: {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {"source": self.source, "problem": self.problem, "fix": self.fix, "entry": self.entry}
        return (_rebuild, (_public_class(self), kwargs))


class PolicyError(SafeBedrockError, ValueError):
    """A policy document that is malformed, or uses a construct this library will not guess about.
    Added in version 0.1.0."""

    def __init__(
        self, message: str, *, source: str = "", problem: str = "", statement: str | None = None
    ) -> None:
        self.source = source
        self.problem = problem or message
        self.statement = statement
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {"source": self.source, "problem": self.problem, "statement": self.statement}
        return (_rebuild, (_public_class(self), {"message": str(self), **kwargs}))


class EmptyAllowlistWarning(UserWarning):
    """An allowlist with no entries: every model-addressed call will be refused.

    Added in version 0.1.0."""


class UnknownModelWarning(UserWarning):
    """An allowlist entry that names no model or inference profile in the model catalog: a typo, or a model
    newer than the catalog (refresh it with ``safe-bedrock catalog update``). The entry still applies.

    Added in version 0.2.0."""


class BedrockServiceError(SafeBedrockError, ClientError):
    """An error from Bedrock (or refused locally in Bedrock's terms), with its cause and the fix; raised after
    more than one attempt, it says how many (`attempts`) over how long (`elapsed_s`).
    Added in version 0.1.0."""

    # Each class names the fields it adds; `fields()`, cleaning and pickling read them along the MRO.
    _FIELDS: tuple[str, ...] = (
        *("code", "message", "operation", "model_id", "model_arn", "region", "request_id", "http_status"),
        *("retryable", "fix", "mid_stream", "events_received"),
    )

    def __init__(
        self,
        *,
        code: str,
        message: str,
        operation: str,
        model_id: str | None = None,
        model_arn: str | None = None,
        region: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        fix: str = "",
        mid_stream: bool = False,
        events_received: int = 0,
        attempts: int = 1,
        elapsed_s: float | None = None,
        response: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.code = code
        self.message = message
        self.operation = operation
        self.model_id = model_id
        self.model_arn = model_arn
        self.region = region
        self.request_id = request_id
        self.http_status = http_status
        self.retryable = retryable
        self.fix = fix
        self.mid_stream = mid_stream
        self.events_received = events_received
        for name, value in fields.items():  # what a subclass adds (its `_FIELDS`, defaults on the class)
            if name not in self._field_names():
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}")
            setattr(self, name, value)
        if response is None:
            response = {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"RequestId": request_id or "", "HTTPStatusCode": http_status or 0},
            }
        # Every text field once, here: the message and the fields parsed from it come off the wire, and the
        # fix names what they named.
        for name in self._field_names():
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, _safe(value))
            elif isinstance(value, (tuple, list)):
                setattr(self, name, tuple(_safe(item) if isinstance(item, str) else item for item in value))
        ClientError.__init__(self, response, operation)  # type: ignore[arg-type]
        # botocore's own line (`repr(error)`, `error.args`) quotes the message raw: the same, made safe.
        self.args = (_clip(" ".join(_safe(str(self.args[0])).split()), _MAX_MESSAGE + 200),)

    @property
    def summary(self) -> str:
        """One line: the code, the operation, the model and Bedrock's message (no fix)."""
        where = self.model_arn or self.model_id
        subject = f" for {where}" if where else ""
        stream = f" mid-stream after {self.events_received} events" if self.mid_stream else ""
        if self.attempts > 1:
            spent = f" over {self.elapsed_s:.1f} s" if self.elapsed_s is not None else ""
            stream += f" after {self.attempts} attempts{spent}"
        message = _clip(self.message, _MAX_MESSAGE)
        return " ".join(f"{self.code} on {self.operation}{subject}{stream}: {message}".split())

    def __str__(self) -> str:
        return f"{self.summary} Fix: {' '.join(self.fix.split())}" if self.fix else self.summary

    def fields(self) -> dict[str, Any]:
        """Every field by name (the raw botocore response left out), for JSON output or structured logs."""
        return {name: getattr(self, name) for name in self._field_names()}

    def _field_names(self) -> dict[str, None]:
        names = dict.fromkeys(name for klass in type(self).__mro__ for name in vars(klass).get("_FIELDS", ()))
        # A first attempt has no retry story to tell.
        return names | dict.fromkeys(("attempts", "elapsed_s")) if self.attempts > 1 else names

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {name: getattr(self, name) for name in (*self._field_names(), "response")}
        return (_rebuild, (_public_class(self), kwargs))


class AccessDeniedError(BedrockServiceError):
    """Bedrock (or the allowlist) refused the call; the fields say who, what and which policy.
    Added in version 0.1.0."""

    _FIELDS: tuple[str, ...] = ("principal", "action", "resource", "policy_type", "policy_arn")
    principal: str | None = None
    action: str | None = None
    resource: str | None = None
    policy_type: str | None = None
    policy_arn: str | None = None


class ModelNotAllowedError(AccessDeniedError):
    """Refused locally: the model is not on the client's allowlist. Nothing was sent.
    Added in version 0.1.0."""

    _FIELDS: tuple[str, ...] = ("allowlist_source", "closest", "entry_to_add")
    allowlist_source: str = ""
    closest: tuple[str, ...] = ()
    entry_to_add: str = ""


class MissingPermissionError(AccessDeniedError):
    """Implicit deny: no policy of the named type allows the action on the resource.
    Added in version 0.1.0."""

    _FIELDS: tuple[str, ...] = ("suggested_policy",)
    suggested_policy: dict[str, Any] | None = None


class ExplicitDenyError(AccessDeniedError):
    """A Deny statement in some policy (identity, SCP, session, boundary, resource) matched the call.
    Added in version 0.1.0."""


class ModelAccessNotEnabledError(AccessDeniedError):
    """Model access was never granted for this account in this region. Added in version 0.1.0."""


class MarketplaceSubscriptionError(AccessDeniedError):
    """The model is sold through AWS Marketplace and the subscription or its permissions are missing.
    Added in version 0.1.0."""


class InvalidCredentialsError(AccessDeniedError):
    """The credentials were not recognised (wrong key, wrong partition, revoked). Added in version 0.1.0."""


class ExpiredCredentialsError(InvalidCredentialsError):
    """The credentials were valid once and have expired; refresh them. Added in version 0.1.0."""


class ModelNotFoundError(BedrockServiceError):
    """Bedrock does not know this model id in this region. Added in version 0.1.0."""


class ModelRetiredError(ModelNotFoundError):
    """The model reached end of life (legacy) and can no longer be invoked. Added in version 0.1.0."""


class InferenceProfileRequiredError(BedrockServiceError):
    """The model cannot be invoked on demand by its id; call it through `suggested_model_id`.
    Added in version 0.1.0."""

    _FIELDS: tuple[str, ...] = ("suggested_model_id",)
    suggested_model_id: str | None = None  # the cross-Region profile that fits the region, e.g. us.<id>


class InvalidRequestError(BedrockServiceError):
    """Bedrock rejected the request as invalid (any other ValidationException). Added in version 0.1.0."""


class QuotaExceededError(BedrockServiceError):
    """A service quota was exceeded; raising the quota, not retrying, is the fix. Added in version 0.1.0."""


class ModelError(BedrockServiceError):
    """The model itself failed while processing the request (HTTP 424). Added in version 0.1.0."""


class TransientError(BedrockServiceError):
    """A failure worth retrying: the same call may succeed later. Added in version 0.1.0."""


class ThrottlingError(TransientError):
    """Too many requests or tokens for the account's quota right now. Added in version 0.1.0."""


class ModelNotReadyError(TransientError):
    """The model is not ready to serve yet (for example an imported model being loaded).
    Added in version 0.1.0."""


class ModelTimeoutError(TransientError):
    """The model took too long to answer. Added in version 0.1.0."""


class ServiceUnavailableError(TransientError):
    """Bedrock is temporarily unavailable. Added in version 0.1.0."""


class InternalServerError(TransientError):
    """Bedrock had an internal error. Added in version 0.1.0."""


class _EndOfInit(Exception):  # noqa: N818 - a mixin, never raised
    # Ends the chain of ClientError's `super().__init__(message)`: a typed stream fault is also the
    # transport's class boto3 raised (urllib3's `ProtocolError`, ...), which comes next and takes other
    # arguments.

    def __init__(self, *args: object) -> None:
        Exception.__init__(self, *args)


class ModelStreamError(TransientError, _EndOfInit):
    """The stream failed after it began (`events_received` were handed out and are not replayed on retry).
    Added in version 0.1.0."""


class StreamFrameError(ModelStreamError):
    """A frame of the event stream does not parse: damaged in transit (also botocore's `ParserError`).
    Added in version 0.2.0."""


class StreamChecksumError(StreamFrameError):
    """A frame failed its CRC32 check: damaged in transit (also botocore's `ChecksumMismatch`).
    Added in version 0.2.0."""


class StreamIncompleteError(ModelStreamError):
    """The stream ended without its closing events, so the answer is cut short.

    Closing means: ConverseStream's `metadata` event (after `messageStop`); for InvokeModelWithResponseStream
    the chunk carrying `amazon-bedrock-invocationMetrics` (Anthropic's `message_stop`, the last chunk of
    Titan, Nova, Llama and Mistral) or the family's own stop marker. Added in version 0.2.0.
    """


class StreamTruncatedError(StreamIncompleteError):
    """The stream ended in the middle of a frame. Added in version 0.2.0."""


class StreamConnectionError(ModelStreamError):
    """The connection broke while the stream was read (also urllib3's `ProtocolError` or aiohttp's
    `ClientPayloadError`, whichever the transport raised). Added in version 0.2.0."""


class StreamReadTimeoutError(ModelStreamError):
    """No byte arrived within the client's read_timeout while the stream was read (also urllib3's
    `ReadTimeoutError`, or the async transport's timeout error). Added in version 0.2.0."""


class CredentialsNotFoundError(SafeBedrockError, NoCredentialsError):
    """No usable AWS credentials (none, partial, or a failed refresh); nothing was sent.

    Also the botocore class it replaces (`PartialCredentialsError`, `TokenRetrievalError`, ...).
    Added in version 0.2.0.
    """

    def __init__(
        self,
        *,
        problem: str,
        fix: str,
        operation: str | None = None,
        endpoint_url: str | None = None,
        local_endpoint: bool = False,
    ) -> None:
        self.problem = _safe(problem)
        # Our own text (the caller masks what it quotes): the dummy keys it suggests for a fake must show.
        self.fix = fix
        self.operation = operation
        self.endpoint_url = _safe(endpoint_url) if endpoint_url else endpoint_url
        self.local_endpoint = local_endpoint
        self.kwargs: dict[str, Any] = {}  # botocore's errors keep their format arguments here
        on = f" for {operation}" if operation else ""
        Exception.__init__(self, f"No usable AWS credentials{on}: {self.problem}. Fix: {self.fix}")

    def fields(self) -> dict[str, Any]:
        """The problem, the fix, the operation and the endpoint, for JSON output or structured logs."""
        return {
            "problem": self.problem,
            "fix": self.fix,
            "operation": self.operation,
            "endpoint_url": self.endpoint_url,
            "local_endpoint": self.local_endpoint,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (_public_class(self), self.fields()))
