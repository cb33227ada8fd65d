"""One call, as data flowing through: identify, decide, translate, record (shared by sync and async shells).

The shells (`_client.py`, `_aio.py`) only do I/O: they call botocore under the retry policy and hand
every outcome back here, so the rules live once.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._fixes import retry_fix
from safe_bedrock._ids import ModelRef, parse_model_id
from safe_bedrock._measure import StreamMeter, request_id_of, restate_retry_metadata, tokens_of
from safe_bedrock._observe import CallDetails, emit, error_fields, outcome_of, would_log
from safe_bedrock._retry import RetryConfig, max_attempts
from safe_bedrock._translate import CallContext, refused, translate
from safe_bedrock.errors import BedrockServiceError, InvalidModelIdError, ModelNotAllowedError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from safe_bedrock._observe import BodyLogging, CallHook
    from safe_bedrock._service import OperationSpec

# The guard of the shell about to call a boto3 method in this thread or task; the boto3 call takes it
# (and clears it, so nothing nested inherits it) and keeps it as `CURRENT` while it runs (`_wire.py`).
ACTIVE: ContextVar[Guard | None] = ContextVar("safe_bedrock_active_guard", default=None)
CURRENT: ContextVar[Guard | None] = ContextVar("safe_bedrock_current_guard", default=None)


@dataclass(slots=True)
class Call:
    """The state of one call while it is under way; owned by one thread or task."""

    spec: OperationSpec
    ref: ModelRef | None
    model_id: str | None
    started: float
    attempts: int = 0
    limit: int = 1  # the attempts the retry policy allows, read once when the call starts
    first_event_at: float | None = None
    meter: StreamMeter = field(default_factory=StreamMeter)
    recorded: bool = False
    request_body: object = None  # kept only when the client opted in to body logging


@dataclass(frozen=True, eq=False)  # compared and held (weakly, by the wire check) as itself
class Guard:
    """A client's fixed rules: where it is, what it may call, who hears about calls."""

    allowlist: ModelAllowlist
    region: str
    partition: str
    exceptions: object
    hooks: Sequence[CallHook] = ()
    body_logging: BodyLogging | None = None
    retry: RetryConfig = field(default_factory=RetryConfig)
    # For the second decision, on the request about to leave (`_wire.py`): the client's operations and
    # endpoint ("scheme://host[:port][/path]").
    specs: Mapping[str, OperationSpec] = field(default_factory=dict)
    endpoint: str = ""

    def begin(self, spec: OperationSpec, kwargs: Mapping[str, Any]) -> Call:
        """Identify and decide; raises before anything is sent when the call is not allowed."""
        raw = kwargs.get(spec.model_member) if spec.model_member else None
        model_id = raw if isinstance(raw, str) else None
        call = Call(
            spec=spec, ref=None, model_id=model_id, started=time.monotonic(), limit=max_attempts(self.retry)
        )
        if spec.model_member is None:
            return call
        if self.body_logging is not None:
            call.request_body = kwargs.get("body", kwargs.get("messages"))
        self.admit(call, raw)
        return call

    def admit(self, call: Call, raw: object, *, record: bool = True) -> None:
        """Identify and decide the model `raw` names for `call`; raises (nothing is sent) when not allowed.

        Used twice per call: on the method's arguments, and on the request as it leaves (`_wire.py`).
        """
        try:
            call.ref = parse_model_id(raw, region=self.region, partition=self.partition)
            decision = self.allowlist.decide(call.ref, action=call.spec.action)
            if not decision.allowed:
                raise refused(
                    call.ref,
                    operation=call.spec.name,
                    decision=decision,
                    source=self.allowlist.source,
                    exceptions=self.exceptions,
                )
        except Exception as exc:
            mark_refusal(exc, call.spec.name)
            if record:
                self.record_error(call, exc)
            raise

    def translate(
        self,
        call: Call,
        exc: BaseException,
        *,
        mid_stream: bool = False,
        events: int = 0,
        request_id: str | None = None,
    ) -> BaseException:
        if not isinstance(exc, Exception):
            return exc
        context = CallContext(
            operation=call.spec.name,
            model_id=call.model_id,
            model_arn=call.ref.arn if call.ref else None,
            region=self.region,
            ref=call.ref,
            mid_stream=mid_stream,
            events_received=events,
            request_id=request_id,
            attempts=call.attempts,
            elapsed_s=round(time.monotonic() - call.started, 3),
            endpoint_url=self.endpoint or None,
        )
        return translate(exc, context=context, exceptions=self.exceptions)

    @contextlib.contextmanager
    def attempt(self, call: Call) -> Iterator[None]:
        """One attempt of `call`: its requests are decided on the wire by this guard, its error comes out
        typed and counted as raw boto3 counts it (botocore runs each attempt as a call of one attempt)."""
        call.attempts += 1
        active = ACTIVE.set(self)
        try:
            yield
        except Exception as exc:
            response = getattr(exc, "response", None)
            restate_retry_metadata(response, attempt=call.attempts, max_attempts=call.limit)
            error = self.translate(call, exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            ACTIVE.reset(active)

    def succeeded(self, call: Call, response: dict[str, Any]) -> dict[str, Any]:
        """The response the caller gets; a plain one is recorded now, a stream when it ends."""
        restate_retry_metadata(response, attempt=call.attempts, max_attempts=call.limit)
        if call.spec.stream_member is None:
            self.record_ok(call, response)
        return response

    def failed(self, call: Call, exc: BaseException) -> None:
        """`exc` is what the caller gets: it names the `RetryConfig` setting to change when retrying helps."""
        if isinstance(exc, BedrockServiceError):
            exc.attempts = call.attempts
            exc.elapsed_s = round(time.monotonic() - call.started, 3)
            if exc.retryable:
                exc.fix = f"{retry_fix(self.retry, attempts=exc.attempts, elapsed_s=exc.elapsed_s)} {exc.fix}"
        self.record_error(call, exc)

    def record_ok(self, call: Call, response: dict[str, Any]) -> None:
        input_tokens, output_tokens = tokens_of(response)
        self._emit(
            call,
            response_body=response.get("output") if self.body_logging is not None else None,
            outcome="ok",
            request_id=request_id_of(response),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

    def record_error(self, call: Call, exc: BaseException) -> None:
        self._emit(
            call,
            outcome=outcome_of(exc),
            request_id=request_id_of(getattr(exc, "response", None)),
            input_tokens=call.meter.input_tokens,
            output_tokens=call.meter.output_tokens,
            **error_fields(exc),
        )

    def record_stream_end(
        self, call: Call, *, request_id: str | None, error: BaseException | None, closed_early: bool
    ) -> None:
        meter = call.meter
        ttft = None if call.first_event_at is None else (call.first_event_at - call.started) * 1000.0
        self._emit(
            call,
            outcome="ok" if error is None else "error",
            request_id=request_id,
            input_tokens=meter.input_tokens,
            output_tokens=meter.output_tokens,
            ttft_ms=ttft,
            events=meter.events,
            bytes=meter.payload_bytes,
            closed_early=closed_early,
            complete=meter.complete,
            stream=True,
            **(error_fields(error) if error is not None else {}),
        )

    def _emit(self, call: Call, *, response_body: object = None, **fields: Any) -> None:
        if call.recorded:  # one event per call, whichever path ends it first
            return
        call.recorded = True
        outcome, category = fields["outcome"], fields.get("error_category")
        if fields.get("complete") is False and not fields.get("closed_early"):
            outcome, category = "error", "transient"  # a stream cut short logs as a warning
        if not self.hooks and not would_log(outcome, category):
            return  # the default: logging not configured and no hooks, so nobody would see the details
        details = CallDetails(
            operation=call.spec.name,
            model_id=call.model_id,
            model_arn=call.ref.arn if call.ref else None,
            region=self.region,
            latency_ms=(time.monotonic() - call.started) * 1000.0,
            attempts=call.attempts,
            **fields,
        )
        emit(
            details,
            hooks=self.hooks,
            body_logging=self.body_logging,
            request_body=call.request_body,
            response_body=response_body,
        )


def mark_refusal(exc: BaseException, operation: str) -> None:
    """A refused call sends nothing, so no instrumentation sees it: it shows as an event on the app's
    current span. OpenTelemetry is looked up, never imported: only an app that traces has it loaded."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or not isinstance(exc, (ModelNotAllowedError, InvalidModelIdError)):
        return
    attributes = {"safe_bedrock.operation": operation, "safe_bedrock.error": type(exc).__name__}
    if isinstance(exc, ModelNotAllowedError) and exc.model_arn:
        attributes["safe_bedrock.model_arn"] = exc.model_arn  # parsed, so it is a well-formed ARN
    with contextlib.suppress(Exception):  # a tracer's failure must not replace the refusal (or its log)
        trace.get_current_span().add_event("safe_bedrock.refused", attributes)


def coerce_allowlist(allow: ModelAllowlist | Iterable[str]) -> ModelAllowlist:
    if isinstance(allow, ModelAllowlist):
        return allow
    if isinstance(allow, str):
        raise TypeError(
            "allow= takes a list of model ids or ARNs (or a ModelAllowlist), not one string: "
            f"write allow=[{allow!r}]"
        )
    if not isinstance(allow, Iterable):
        raise TypeError(f"allow= takes a list of model ids or ARNs or a ModelAllowlist, not {type(allow)}")
    return ModelAllowlist(list(allow))  # its warning finds the caller's line itself
