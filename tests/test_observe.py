"""One log event per call: its schema, its level, where it goes, the call hooks, opt-in bodies."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from safe_bedrock import errors
from safe_bedrock._observe import (
    BodyLogging,
    CallDetails,
    cause_of,
    emit,
    error_fields,
    event_from,
    level_of,
    outcome_of,
    redact_secrets,
    safe_text,
    summarize_body,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"
PRINCIPAL = "arn:aws:iam::123456789012:user/app"
BASE_KEYS = {
    "event",
    "log_level",
    "operation",
    "model_id",
    "model_arn",
    "region",
    "outcome",
    "latency_ms",
    "attempts",
    "request_id",
    "input_tokens",
    "output_tokens",
}
ERROR_KEYS = {"error_class", "error_code", "error_category", "cause"}
STREAM_KEYS = {"stream", "ttft_ms", "events", "bytes", "closed_early", "complete"}


@pytest.fixture(autouse=True)
def _structlog_unconfigured() -> Iterator[None]:
    # capture_logs() leaves structlog marked as configured when it exits (structlog calls configure() to
    # restore the processors); every test here starts and ends as an app that never configured it.
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def details(**overrides: Any) -> CallDetails:
    fields: dict[str, Any] = {
        "operation": "Converse",
        "model_id": MODEL,
        "model_arn": ARN,
        "region": "us-east-1",
        "outcome": "ok",
        "latency_ms": 123.4567,
        "attempts": 1,
        "request_id": "req-1",
        "input_tokens": 12,
        "output_tokens": 34,
    }
    fields.update(overrides)
    return CallDetails(**fields)


def failed(exc: BaseException, **overrides: Any) -> CallDetails:
    return details(
        outcome=outcome_of(exc), input_tokens=None, output_tokens=None, **error_fields(exc), **overrides
    )


def access_denied() -> errors.MissingPermissionError:
    return errors.MissingPermissionError(
        code="AccessDeniedException",
        message=(
            "User: arn:aws:iam::123456789012:user/app is not authorized to perform: bedrock:InvokeModel on "
            f"resource: {ARN} because no identity-based policy allows the bedrock:InvokeModel action"
        ),
        operation="Converse",
        model_id=MODEL,
        model_arn=ARN,
        region="us-east-1",
        request_id="req-9",
        http_status=403,
        fix=f"Allow bedrock:InvokeModel on {ARN} in the identity-based policy of {PRINCIPAL}",
        principal=PRINCIPAL,
        action="bedrock:InvokeModel",
        resource=ARN,
        policy_type="identity-based",
    )


def not_allowed() -> errors.ModelNotAllowedError:
    return errors.ModelNotAllowedError(
        code="AccessDeniedException",
        message=f"{MODEL} is not on the allowlist",
        operation="Converse",
        model_id=MODEL,
        fix="add 'anthropic.claude-3-haiku-20240307-v1:0' to SAFE_BEDROCK_ALLOWED_MODELS",
        allowlist_source="env SAFE_BEDROCK_ALLOWED_MODELS",
        entry_to_add=MODEL,
    )


# ---------------------------------------------------------------------------------------------------------
# The schema, seen through structlog's capture_logs


def test_a_successful_call_logs_one_info_event_with_the_base_fields() -> None:
    with capture_logs() as logs:
        emit(details())
    assert logs == [
        {
            "event": "bedrock.call",
            "log_level": "info",
            "operation": "Converse",
            "model_id": MODEL,
            "model_arn": ARN,
            "region": "us-east-1",
            "outcome": "ok",
            "latency_ms": 123.457,
            "attempts": 1,
            "request_id": "req-1",
            "input_tokens": 12,
            "output_tokens": 34,
        }
    ]


def test_a_stream_event_adds_time_to_first_event_events_bytes_and_closed_early() -> None:
    with capture_logs() as logs:
        emit(
            details(
                operation="ConverseStream",
                stream=True,
                ttft_ms=80.12345,
                events=7,
                bytes=321,
                closed_early=True,
            )
        )
    (event,) = logs
    assert set(event) == BASE_KEYS | STREAM_KEYS
    assert (event["stream"], event["ttft_ms"], event["events"], event["bytes"], event["closed_early"]) == (
        True,
        80.123,
        7,
        321,
        True,
    )
    assert event["log_level"] == "info"  # leaving a stream early is not an error


def test_an_error_event_adds_class_code_category_and_cause() -> None:
    with capture_logs() as logs:
        emit(failed(access_denied(), attempts=1, request_id="req-9"))
    (event,) = logs
    assert set(event) == BASE_KEYS | ERROR_KEYS
    assert event["outcome"] == "error"
    assert event["error_class"] == "MissingPermissionError"
    assert event["error_code"] == "AccessDeniedException"
    assert event["error_category"] == "access"


def test_an_access_error_is_logged_as_error_with_its_cause() -> None:
    with capture_logs() as logs:
        emit(failed(access_denied()))
    (event,) = logs
    assert event["log_level"] == "error"
    assert event["cause"] == (
        f"{PRINCIPAL} may not bedrock:InvokeModel on {ARN} (identity-based policy) "
        f"Fix: Allow bedrock:InvokeModel on {ARN} in the identity-based policy of {PRINCIPAL}"
    )


def test_a_refusal_by_the_allowlist_is_a_warning_naming_the_entry_to_add() -> None:
    with capture_logs() as logs:
        emit(failed(not_allowed(), attempts=0, request_id=None))
    (event,) = logs
    assert (event["log_level"], event["outcome"], event["error_category"]) == (
        "warning",
        "refused",
        "refused",
    )
    assert event["attempts"] == 0
    assert (
        event["cause"] == "Fix: add 'anthropic.claude-3-haiku-20240307-v1:0' to SAFE_BEDROCK_ALLOWED_MODELS"
    )


def service(klass: type[errors.BedrockServiceError], code: str) -> errors.BedrockServiceError:
    return klass(code=code, message="m", operation="Converse")


@pytest.mark.parametrize(
    ("error", "level", "category"),
    [
        (service(errors.ThrottlingError, "ThrottlingException"), "warning", "transient"),
        (service(errors.ModelStreamError, "modelStreamErrorException"), "warning", "transient"),
        (EndpointConnectionError(endpoint_url="https://x"), "warning", "connection"),
        (ReadTimeoutError(endpoint_url="https://x"), "warning", "connection"),
        (service(errors.InvalidRequestError, "ValidationException"), "error", "invalid_request"),
        (service(errors.InferenceProfileRequiredError, "ValidationException"), "error", "invalid_request"),
        (service(errors.ModelNotFoundError, "ResourceNotFoundException"), "error", "not_found"),
        (service(errors.QuotaExceededError, "ServiceQuotaExceededException"), "error", "quota"),
        (service(errors.ModelError, "ModelErrorException"), "error", "model"),
        (service(errors.ExpiredCredentialsError, "ExpiredTokenException"), "error", "access"),
        (service(errors.BedrockServiceError, "SomethingNew"), "error", "service"),
        (
            errors.InvalidModelIdError(model_id="a b", problem="contains a space", fix="remove it"),
            "warning",
            "invalid_model_id",
        ),
        (RuntimeError("a bug"), "error", "other"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_levels_follow_the_kind_of_failure(error: BaseException, level: str, category: str) -> None:
    with capture_logs() as logs:
        emit(failed(error))
    (event,) = logs
    assert (event["log_level"], event["error_category"]) == (level, category)


def test_event_from_is_pure_and_cuts_overlong_identifiers() -> None:
    long_id = "x" * 5000
    event = event_from(details(model_id=long_id))
    assert len(event["model_id"]) == 256
    assert event["model_id"].endswith("...")
    assert event_from(details()) == event_from(details())


def test_level_of_maps_outcomes_to_stdlib_levels() -> None:
    assert level_of(details()) == logging.INFO
    assert level_of(details(outcome="refused")) == logging.WARNING
    assert level_of(details(outcome="error")) == logging.ERROR
    assert level_of(details(outcome="error", error_category="transient")) == logging.WARNING


def test_details_are_frozen_and_keyword_only() -> None:
    d = details()
    with pytest.raises(AttributeError):
        d.outcome = "error"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallDetails("Converse", MODEL, ARN, "us-east-1", "ok", 1.0)  # type: ignore[misc]


def test_the_cause_of_a_validation_error_is_our_fix_not_bedrocks_message() -> None:
    # Validation messages may quote the request; only the fix (our own text) is logged.
    error = errors.InvalidRequestError(
        code="ValidationException",
        message="Malformed input request: expected string, got 'my secret prompt'",
        operation="InvokeModel",
        fix="Correct the request body",
    )
    assert cause_of(error) == "Fix: Correct the request body"
    assert cause_of(RuntimeError("whatever 'my secret prompt'")) is None


# ---------------------------------------------------------------------------------------------------------
# Where the event goes


def test_without_any_logging_configured_nothing_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    emit(details())
    emit(failed(access_denied()))
    emit(failed(not_allowed()))
    assert capsys.readouterr() == ("", "")


def test_without_structlog_the_event_goes_to_the_stdlib_logger_safe_bedrock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="safe_bedrock"):
        emit(details())
    (record,) = caplog.records
    assert (record.name, record.levelno) == ("safe_bedrock", logging.INFO)
    assert record.getMessage().startswith("bedrock.call operation=Converse model_id=anthropic.")
    assert "outcome=ok" in record.getMessage()
    assert record.outcome == "ok"  # every field is a record attribute too, for JSON formatters
    assert record.latency_ms == 123.457


def test_the_stdlib_logger_at_its_default_level_drops_info_but_keeps_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        emit(details())
        emit(failed(access_denied()))
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_an_app_logging_config_shows_one_readable_line_per_call() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("safe_bedrock")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        emit(details())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == (
        f"INFO safe_bedrock bedrock.call operation=Converse model_id={MODEL} model_arn={ARN} "
        "region=us-east-1 outcome=ok latency_ms=123.457 attempts=1 request_id=req-1 input_tokens=12 "
        "output_tokens=34\n"
    )


def test_an_app_that_configured_structlog_sees_the_event_in_its_pipeline() -> None:
    seen: list[dict[str, Any]] = []

    def collect(logger: object, method: str, event_dict: Any) -> Any:
        seen.append(dict(event_dict, method=method))
        raise structlog.DropEvent

    structlog.configure(processors=[collect])
    emit(details())
    assert [(e["event"], e["method"], e["outcome"]) for e in seen] == [("bedrock.call", "info", "ok")]


def test_a_structlog_level_filter_drops_the_event() -> None:
    seen: list[Any] = []
    structlog.configure(
        processors=[lambda _l, _m, e: seen.append(e) or e],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    emit(details())
    emit(failed(access_denied()))
    assert [e["outcome"] for e in seen] == ["error"]


def test_an_explicit_logger_overrides_the_routing(caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("my_app.bedrock")
    with caplog.at_level(logging.INFO, logger="my_app.bedrock"):
        emit(details(), logger=mine)
    assert [r.name for r in caplog.records] == ["my_app.bedrock"]
    with capture_logs() as logs:
        emit(details(), logger=structlog.get_logger("other"))
    assert logs[0]["event"] == "bedrock.call"


def test_a_broken_log_pipeline_does_not_fail_the_call() -> None:
    def explode(_logger: object, _method: str, _event: Any) -> Any:
        raise RuntimeError("pipeline down")

    structlog.configure(processors=[explode])
    called: list[CallDetails] = []
    emit(details(), hooks=[called.append])
    assert len(called) == 1  # and the hooks still ran


# ---------------------------------------------------------------------------------------------------------
# Call hooks


def test_hooks_receive_the_frozen_details_once_per_call() -> None:
    received: list[CallDetails] = []
    d = details()
    emit(d, hooks=[received.append, received.append])
    assert received == [d, d]


def test_a_hook_that_raises_does_not_break_the_call_and_is_reported_once() -> None:
    calls: list[CallDetails] = []

    def broken(_details: CallDetails) -> None:
        raise ValueError("metrics backend down")

    with capture_logs() as logs:
        emit(details(), hooks=[broken, calls.append])
        emit(details(), hooks=[broken, calls.append])
    assert len(calls) == 2  # the hook after the broken one still ran, both times
    failures = [e for e in logs if e["event"] == "bedrock.hook_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "warning"
    assert failures[0]["error_class"] == "ValueError"
    assert failures[0]["hook"].endswith("broken")


def test_a_hook_failure_goes_to_stdlib_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        __slots__ = ()  # not weak-referenceable: remembered by id instead

        def __call__(self, _details: CallDetails) -> None:
            raise KeyError("x")

    hook = Broken()
    with caplog.at_level(logging.WARNING, logger="safe_bedrock"):
        emit(details(), hooks=[hook])
        emit(details(), hooks=[hook])
    (record,) = caplog.records
    assert record.getMessage().startswith("bedrock.hook_failed")
    assert record.exc_info is not None


# ---------------------------------------------------------------------------------------------------------
# Bodies: never by default, truncated and redacted when asked for


def test_bodies_are_not_logged_by_default_even_when_passed() -> None:
    with capture_logs() as logs:
        emit(details(), request_body=b'{"prompt": "hello"}', response_body="an answer")
    assert "request_body" not in logs[0]
    assert "response_body" not in logs[0]
    assert "hello" not in repr(logs)


def test_opt_in_bodies_are_logged_truncated() -> None:
    with capture_logs() as logs:
        emit(
            details(),
            body_logging=BodyLogging(max_chars=10),
            request_body=b'{"prompt": "tell me a long story"}',
            response_body=None,
        )
    assert logs[0]["request_body"] == '{"prompt":...[34 bytes]'
    assert logs[0]["response_body"] is None


def test_opt_in_bodies_go_through_the_redaction_hook_after_the_built_in_one() -> None:
    seen: list[str] = []

    def mask_emails(text: str) -> str:
        seen.append(text)
        return text.replace("ann@example.com", "<email>")

    config = BodyLogging(redact=mask_emails)
    body = '{"from": "ann@example.com", "key": "AKIAIOSFODNN7EXAMPLE"}'
    assert summarize_body(body, config=config) == '{"from": "<email>", "key": "[REDACTED]"}'
    assert "AKIA" not in seen[0]  # the hook never sees what the built-in redaction removed


@pytest.mark.parametrize(
    ("hook", "shown"),
    [
        (lambda _text: 1 / 0, "[body withheld: the redact hook raised]"),
        (lambda _text: None, "[body withheld: the redact hook did not return a str]"),
    ],
)
def test_a_broken_redaction_hook_withholds_the_body(hook: Any, shown: str) -> None:
    assert summarize_body("secret prompt", config=BodyLogging(redact=hook)) == shown


def test_summarize_body_renders_converse_messages_and_shows_binary_parts_by_size() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"text": "hi"}, {"image": {"format": "png", "source": {"bytes": b"\x89PNG" * 100}}}],
        }
    ]
    text = summarize_body(messages, config=BodyLogging())
    assert text == (
        '[{"role": "user", "content": [{"text": "hi"}, {"image": {"format": "png", '
        '"source": {"bytes": "<400 bytes>"}}}]}]'
    )


def test_summarize_body_does_not_read_a_file_like_body() -> None:
    body = io.BytesIO(b"the prompt")
    assert summarize_body(body, config=BodyLogging()) == "<BytesIO>"
    assert body.read() == b"the prompt"


def test_summarize_body_decodes_bytes_leniently() -> None:
    assert summarize_body(b"caf\xc3\xa9 \xff", config=BodyLogging()) == "café \ufffd"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"max_chars": -1}, ValueError), ({"max_chars": 1.5}, TypeError), ({"redact": "yes"}, TypeError)],
)
def test_body_logging_rejects_bad_settings(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        BodyLogging(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Built-in redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key AKIAIOSFODNN7EXAMPLE here", "key [REDACTED] here"),
        ("temp ASIAY34FZKBOKMUTVV7A,", "temp [REDACTED],"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED]",
        ),
        (
            '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
            '{"SecretAccessKey": "[REDACTED]"}',
        ),
        ("bare wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end", "bare [REDACTED] end"),
        (
            "X-Amz-Security-Token: IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQ",
            "X-Amz-Security-Token: [REDACTED]",
        ),
        ("token IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQ end", "token [REDACTED] end"),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/bedrock/aws4",
            "Authorization: [REDACTED]",
        ),
        ("{'authorization': 'Basic dXNlcjpwYXNz'}", "{'authorization': '[REDACTED]'}"),
        ("use Bearer abc.def-ghi_jkl= now", "use Bearer [REDACTED] now"),
        ("ABSKQmVkcm9ja0FQSUtleS1hYmNkZWZnaGlqa2xtbm9w", "[REDACTED]"),
        ('"password": "hunter22"', '"password": "[REDACTED]"'),
    ],
)
def test_built_in_redaction_removes_credentials(text: str, expected: str) -> None:
    assert redact_secrets(text) == expected


SECRET_NAMES = [
    "secret",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "secret_access_key",
    "SecretAccessKey",
    "client_secret",
    "session_token",
    "aws_session_token",
    "sessionToken",
    "security_token",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
    "token",
    "access_token",
    "password",
    "db_password",
    "api_key",
    "apiKey",
    "x-api-key",
]
SECRET_FORMS = {
    "key=value": "{name}=hunter2-value",
    "key = value": "{name} = hunter2-value",
    "key: value": "{name}: hunter2-value",
    "header": "{name}:hunter2-value",
    "env-quoted": "{name}='hunter2 value'",
    "json": '{{"{name}": "hunter2 value", "next": 1}}',
    "json-in-json": '{{"text": "{{\\"{name}\\": \\"hunter2 value\\"}}"}}',
    "repr": "Credentials({name}='hunter2 value')",
    "query": "?a=1&{name}=hunter2-value&b=2",
}


@pytest.mark.parametrize("form", SECRET_FORMS.values(), ids=SECRET_FORMS.keys())
@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_value_named_like_a_secret_is_masked_in_every_form(name: str, form: str) -> None:
    text = f"before {form.format(name=name)} after"
    redacted = redact_secrets(text)
    assert "hunter2" not in redacted
    assert name in redacted  # the label stays: the reader sees what was there
    assert redacted.startswith("before ")
    assert redacted.endswith(" after")
    shown = summarize_body(text, config=BodyLogging())
    assert shown is not None
    assert "hunter2" not in shown


@pytest.mark.parametrize(
    "text",
    [
        '{"max_tokens": 300, "token_count": 5, "inputTokens": 12, "stop_tokens": ["x"]}',
        "max_tokens=300 outputTokens: 12",
        "The request signature we calculated does not match the signature you provided.",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z",
        "The security token included in the request is invalid.",
    ],
)
def test_names_that_only_contain_a_secret_word_are_left_alone(text: str) -> None:
    assert redact_secrets(text) == text


SECRETS_IN_PARTS = ("abc123", "p w-s3cr3t", "AKIAIOSFODNN7EXAMPLE", "abc.def", "IQoJb3JpZ2luX2VjEHcaCXVz")


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(
            [
                "token=abc123",
                '"password": "p w-s3cr3t"',
                " AKIAIOSFODNN7EXAMPLE ",
                "Authorization: Bearer abc.def",
                "x-amz-security-token:IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQ",
                "\n",
                "\x1b",
                "\u2028",
                "\\",
                " ",
                "]",
                "[",
                "'",
            ]
        )
        | st.text(max_size=5)
    )
)
def test_cleaned_text_is_printable_and_a_second_cleaning_reveals_nothing(parts: list[str]) -> None:
    # An unpickled error cleans its already-cleaned text again.
    once = safe_text(" ".join(parts))
    twice = safe_text(once)
    assert once.isprintable()
    assert twice.isprintable()
    for secret in SECRETS_IN_PARTS:
        assert secret not in once
        assert secret not in twice


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def\nhost: x",
        "x-amz-security-token:IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQ\nhost:x\r\n",
        "x-amz-security-token:opaque-token-value\n\ncontent-type;host",
        'Malformed {"password": "p\\"w", "token": "t\nu"} \x1b[31m',
        "aws_secret_access_key='abc\n' and AKIAIOSFODNN7EXAMPLE\u2028next",
    ],
)
def test_cleaning_cleaned_text_again_changes_nothing(text: str) -> None:
    once = safe_text(text)
    assert safe_text(once) == once


@pytest.mark.parametrize(
    "text",
    [
        '{"max_tokens": 300, "temperature": 0.5, "anthropic_version": "bedrock-2023-05-31"}',
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        "The quick brown fox jumps over the lazy dog.",
    ],
)
def test_built_in_redaction_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_secrets(text) == text


@settings(max_examples=150, deadline=None)
@given(
    before=st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    after=st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    prefix=st.sampled_from(["AKIA", "ASIA"]),
    body=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16),
)
def test_an_access_key_id_never_survives_redaction_wherever_it_sits(
    before: str, after: str, prefix: str, body: str
) -> None:
    key = prefix + body
    text = f"{before} {key} {after}"
    assert key not in redact_secrets(text)


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(min_value=0, max_value=300), padding=st.integers(min_value=0, max_value=400))
def test_truncation_never_leaves_part_of_a_key_behind(limit: int, padding: int) -> None:
    text = "x" * padding + " AKIAIOSFODNN7EXAMPLE " + "y" * 50
    shown = summarize_body(text, config=BodyLogging(max_chars=limit))
    assert shown is not None
    assert "AKIA" not in shown
    assert "IOSFODNN7" not in shown
