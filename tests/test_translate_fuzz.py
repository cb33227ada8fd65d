"""The message parser never crashes and never reads further than it needs, whatever Bedrock sends."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EventStreamError
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_bedrock import errors
from safe_bedrock._classify import MAX_MESSAGE_SCAN, Cause, classify, normalize_code
from safe_bedrock._translate import CallContext, translate

FRAGMENTS = st.sampled_from(
    [
        "User: ",
        "arn:aws:sts::123456789012:assumed-role/r/s",
        " is not authorized to perform: ",
        "bedrock:InvokeModel",
        " on resource: ",
        "*",
        " because no ",
        "identity-based policy",
        "permissions boundary",
        " allows the ",
        " with an explicit deny in a ",
        "service control policy",
        ": arn:",
        "aws-marketplace:",
        "Invocation of model ID ",
        " with on-demand throughput isn\u2019t supported",
        "end of its life",
        "Too many tokens per day",
        "The security token included in the request is expired",
        " ",
        ":",
        ".",
    ]
)
MESSAGES = st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=30).map("".join))
CODES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "AccessDeniedException",
            "accessDeniedException",
            "ValidationException",
            "ResourceNotFoundException",
            "ThrottlingException",
            "throttlingException",
            "ServiceQuotaExceededException",
            "ModelStreamErrorException",
            "ExpiredTokenException",
            "",
            "503",
        ]
    ),
)
CONTEXT = CallContext(operation="Converse", region="us-east-1")


@settings(max_examples=300, deadline=None)
@given(code=CODES, message=MESSAGES, status=st.one_of(st.none(), st.integers(min_value=0, max_value=999)))
def test_classify_never_crashes_and_always_names_a_service_error(
    code: str, message: str, status: int | None
) -> None:
    diagnosis = classify(code, message, http_status=status)
    named = (diagnosis.principal, diagnosis.action, diagnosis.resource, diagnosis.policy_arn)
    for value in named:
        assert value is None or (value and value in message)
    if not issubclass(diagnosis.error_class, errors.AccessDeniedError):  # only a denial names these
        assert (*named, diagnosis.policy_type) == (None,) * 5


@settings(max_examples=200, deadline=None)
@given(
    response=st.dictionaries(
        st.sampled_from(["Error", "ResponseMetadata", "message"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=20),
            st.fixed_dictionaries(
                {}, optional={"Code": CODES, "Message": MESSAGES, "HTTPStatusCode": st.integers()}
            ),
        ),
    ),
    stream=st.booleans(),
)
def test_translate_survives_any_response_shape(response: dict[str, Any], stream: bool) -> None:
    original = EventStreamError({}, "ConverseStream") if stream else ClientError({}, "Converse")
    original.response = response  # shapes botocore itself would refuse to build an error from
    error = translate(original, context=CONTEXT)
    assert isinstance(error, errors.BedrockServiceError)
    if all(isinstance(response.get(key, {}), dict) for key in ("Error", "ResponseMetadata")):
        assert error.response is response
    assert "\n" not in str(error)


@given(code=st.text(max_size=40))
def test_code_normalisation_ignores_case_and_the_exception_suffix(code: str) -> None:
    assert normalize_code(code) == normalize_code(code.lower())
    if code.isalpha() and not code.lower().endswith("exception"):
        assert normalize_code(code + "Exception") == normalize_code(code)


def test_a_huge_message_is_only_read_up_to_the_scan_limit() -> None:
    # A cause named after the limit is not seen: proof the work per message is bounded.
    padding = "a" * MAX_MESSAGE_SCAN
    late = classify(
        "AccessDeniedException", padding + " The security token included in the request is expired"
    )
    early = classify(
        "AccessDeniedException", "The security token included in the request is expired " + padding * 200
    )
    assert late.cause is Cause.ACCESS_DENIED
    assert early.cause is Cause.EXPIRED_CREDENTIALS


def test_pathological_unbroken_text_is_classified() -> None:
    for text, cause in (
        ("a" * 100_000, Cause.ACCESS_DENIED),
        (":" * 100_000, Cause.ACCESS_DENIED),
        ("is not authorized to perform:" * 5_000, Cause.MISSING_PERMISSION),
        (" " * 100_000, Cause.ACCESS_DENIED),
    ):
        assert classify("AccessDeniedException", text).cause is cause
