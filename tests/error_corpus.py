"""Message forms Bedrock really sends, with where each was seen, and what safe-bedrock makes of them.

Account ids, role names and policy ids are replaced by placeholders; the wording is kept as AWS sent it
(including the typographic apostrophe some messages use). Sources are public issue threads, AWS
documentation (API reference, User Guide troubleshooting pages, re:Post knowledge center) and the IAM
User Guide's documented access-denied format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safe_bedrock import errors

ACCOUNT = "123456789012"
ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/app-role/session"
USER = f"arn:aws:iam::{ACCOUNT}:user/dev"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
SCP_ARN = "arn:aws:organizations::000000000000:policy/o-abcdef1234/service_control_policy/p-abcd1234"


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    code: str
    message: str
    expected: type[errors.BedrockServiceError]
    fields: dict[str, Any] = field(default_factory=dict)
    operation: str = "InvokeModel"
    status: int | None = None  # HTTP status as sent; None for mid-stream errors
    mid_stream: bool = False
    model_id: str = HAIKU
    region: str = "us-east-1"


def _denied(action: str, resource: str, reason: str, principal: str = ROLE) -> str:
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {reason}"


CORPUS: tuple[Case, ...] = (
    # -- IAM: implicit deny ------------------------------------------------------------------------------
    Case(
        id="implicit-identity",
        source="https://github.com/aws-samples/semantic-search-with-amazon-opensearch/issues/43",
        code="AccessDeniedException",
        status=403,
        message=_denied(
            "bedrock:InvokeModel",
            HAIKU_ARN,
            "because no identity-based policy allows the bedrock:InvokeModel action",
        ),
        expected=errors.MissingPermissionError,
        fields={
            "principal": ROLE,
            "action": "bedrock:InvokeModel",
            "resource": HAIKU_ARN,
            "policy_type": "identity-based",
            "policy_arn": None,
        },
    ),
    Case(
        id="implicit-identity-no-user-prefix",
        source="https://awslabs.github.io/graphrag-toolkit/lexical-graph/faq/",
        code="AccessDeniedException",
        status=403,
        region="us-west-2",
        model_id="anthropic.claude-3-5-haiku-20241022-v1:0",
        message=(
            f"{USER} is not authorized to perform: bedrock:InvokeModel on resource: "
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0 "
            "because no identity-based policy allows the bedrock:InvokeModel action"
        ),
        expected=errors.MissingPermissionError,
        fields={"principal": USER, "policy_type": "identity-based"},
    ),
    Case(
        id="implicit-stream-action",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="AccessDeniedException",
        status=403,
        operation="ConverseStream",
        message=_denied(
            "bedrock:InvokeModelWithResponseStream",
            HAIKU_ARN,
            "because no identity-based policy allows the bedrock:InvokeModelWithResponseStream action",
        ),
        expected=errors.MissingPermissionError,
        fields={"action": "bedrock:InvokeModelWithResponseStream", "policy_type": "identity-based"},
    ),
    Case(
        id="implicit-permissions-boundary",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="AccessDeniedException",
        status=403,
        message=_denied(
            "bedrock:InvokeModel",
            HAIKU_ARN,
            "because no permissions boundary allows the bedrock:InvokeModel action",
            principal=USER,
        ),
        expected=errors.MissingPermissionError,
        fields={"policy_type": "permissions boundary", "principal": USER},
    ),
    Case(
        id="implicit-session-policy",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="AccessDeniedException",
        status=403,
        message=_denied(
            "bedrock:InvokeModel",
            HAIKU_ARN,
            "because no session policy allows the bedrock:InvokeModel action",
        ),
        expected=errors.MissingPermissionError,
        fields={"policy_type": "session"},
    ),
    Case(
        id="implicit-scp",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="AccessDeniedException",
        status=403,
        message=_denied(
            "bedrock:InvokeModel",
            HAIKU_ARN,
            "because no service control policy allows the bedrock:InvokeModel action",
        ),
        expected=errors.MissingPermissionError,
        fields={"policy_type": "service control"},
    ),
    Case(
        id="implicit-no-reason",
        source="https://github.com/aws-samples/amazon-bedrock-workshop/issues/20",
        code="AccessDeniedException",
        status=403,
        message=f"User: {USER} is not authorized to perform: bedrock:InvokeModel on resource: {HAIKU_ARN}",
        expected=errors.MissingPermissionError,
        fields={"principal": USER, "resource": HAIKU_ARN, "policy_type": None},
    ),
    # -- IAM: explicit deny ------------------------------------------------------------------------------
    Case(
        id="explicit-scp-with-arn",
        source="https://github.com/aws-samples/sample-badgers/issues/33",
        code="AccessDeniedException",
        status=403,
        operation="ConverseStream",
        model_id="global.anthropic.claude-opus-4-6-v1",
        message=_denied(
            "bedrock:InvokeModelWithResponseStream",
            "arn:aws:bedrock:::foundation-model/anthropic.claude-opus-4-6-v1",
            f"with an explicit deny in a service control policy: {SCP_ARN}",
        ),
        expected=errors.ExplicitDenyError,
        fields={
            "principal": ROLE,
            "action": "bedrock:InvokeModelWithResponseStream",
            "resource": "arn:aws:bedrock:::foundation-model/anthropic.claude-opus-4-6-v1",
            "policy_type": "service control",
            "policy_arn": SCP_ARN,
        },
    ),
    Case(
        id="explicit-identity",
        source="https://github.com/posit-dev/positron/issues/10683",
        code="AccessDeniedException",
        status=403,
        operation="ConverseStream",
        message=_denied(
            "bedrock:InvokeModelWithResponseStream",
            "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0",
            "with an explicit deny in an identity-based policy",
        ),
        expected=errors.ExplicitDenyError,
        fields={"policy_type": "identity-based", "policy_arn": None},
    ),
    Case(
        id="explicit-identity-with-arn",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="AccessDeniedException",
        status=403,
        message=_denied(
            "bedrock:InvokeModel",
            HAIKU_ARN,
            f"with an explicit deny in an identity-based policy: arn:aws:iam::{ACCOUNT}:policy/DenyBedrock",
        ),
        expected=errors.ExplicitDenyError,
        fields={"policy_type": "identity-based", "policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/DenyBedrock"},
    ),
    Case(
        id="explicit-permissions-boundary",
        source="https://repost.aws/knowledge-center/iam-explicit-deny-errors",
        code="AccessDeniedException",
        status=403,
        message=_denied("bedrock:InvokeModel", HAIKU_ARN, "with an explicit deny in a permissions boundary"),
        expected=errors.ExplicitDenyError,
        fields={"policy_type": "permissions boundary"},
    ),
    Case(
        id="explicit-session",
        source="https://repost.aws/knowledge-center/iam-explicit-deny-errors",
        code="AccessDeniedException",
        status=403,
        message=_denied("bedrock:InvokeModel", HAIKU_ARN, "with an explicit deny in a session policy"),
        expected=errors.ExplicitDenyError,
        fields={"policy_type": "session"},
    ),
    Case(
        id="explicit-resource-based",
        source="https://repost.aws/knowledge-center/iam-explicit-deny-errors",
        code="AccessDeniedException",
        status=403,
        message=_denied("bedrock:InvokeModel", HAIKU_ARN, "with an explicit deny in a resource-based policy"),
        expected=errors.ExplicitDenyError,
        fields={"policy_type": "resource-based"},
    ),
    # -- model access ------------------------------------------------------------------------------------
    Case(
        id="no-access-to-model",
        source="https://github.com/dirkpetersen/our-chat/issues/3",
        code="AccessDeniedException",
        status=403,
        message="You don't have access to the model with the specified model ID.",
        expected=errors.ModelAccessNotEnabledError,
    ),
    Case(
        id="no-access-to-model-validation-code",
        source="https://github.com/aws-samples/amazon-bedrock-rag/issues/12",
        code="ValidationException",
        status=403,
        message="You don't have access to the model with the specified model ID.",
        expected=errors.ModelAccessNotEnabledError,
    ),
    Case(
        id="account-not-authorized",
        source="https://repost.aws/knowledge-center/bedrock-invokemodel-api-error",
        code="AccessDeniedException",
        status=403,
        model_id="amazon.titan-tg1-large",
        message="Your account is not authorized to invoke this API operation.",
        expected=errors.ModelAccessNotEnabledError,
    ),
    Case(
        id="account-not-authorized-validation-code",
        source="https://github.com/aws-samples/amazon-bedrock-audio-summarizer/issues/3",
        code="ValidationException",
        status=400,
        message="Your account is not authorized to invoke this API operation.",
        expected=errors.ModelAccessNotEnabledError,
    ),
    Case(
        id="use-case-form",
        source="https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html",
        code="ResourceNotFoundException",
        status=404,
        operation="Converse",
        model_id="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        message=(
            "Model use case details have not been submitted for this account. Fill out the Anthropic use "
            "case details form before using the model. If you have already filled out the form, try again "
            "in 15 minutes."
        ),
        expected=errors.ModelAccessNotEnabledError,
    ),
    # -- AWS Marketplace ---------------------------------------------------------------------------------
    Case(
        id="marketplace-actions",
        source="https://github.com/aws-samples/anthropic-on-aws/issues/251",
        code="AccessDeniedException",
        status=403,
        operation="ConverseStream",
        model_id="us.anthropic.claude-opus-4-6-v1",
        message=(
            "Model access is denied due to IAM user or service role is not authorized to perform the "
            "required "
            "AWS Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to "
            "enable "
            "access to this model. Refer to the Amazon Bedrock documentation for further details. Your AWS "
            "Marketplace subscription for this model cannot be completed at this time. If you recently fixed "
            "this issue, try again after 2 minutes."
        ),
        expected=errors.MarketplaceSubscriptionError,
        fields={"action": "aws-marketplace:ViewSubscriptions"},
    ),
    Case(
        id="marketplace-iam-sentence",
        source=(
            "https://github.com/aws-solutions-library-samples/accelerated-intelligent-document-processing-on-aws/issues/124"
        ),
        code="AccessDeniedException",
        status=403,
        operation="Converse",
        message=(
            f"Model access is denied due to User: {ROLE} is not authorized to perform: "
            "aws-marketplace:ViewSubscriptions on resource: * because no identity-based policy allows the "
            "aws-marketplace:ViewSubscriptions action. Your AWS Marketplace subscription for this model "
            "cannot be completed at this time. If you recently fixed this issue, try again after 15 minutes."
        ),
        expected=errors.MarketplaceSubscriptionError,
        fields={
            "principal": ROLE,
            "action": "aws-marketplace:ViewSubscriptions",
            "resource": "*",
            "policy_type": "identity-based",
        },
    ),
    Case(
        id="payment-instrument",
        source="https://github.com/Tracer-Cloud/opensre/pull/1811",
        code="AccessDeniedException",
        status=403,
        operation="Converse",
        message=(
            "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment instrument must be "
            "provided."
        ),
        expected=errors.MarketplaceSubscriptionError,
    ),
    # -- account-wide refusals -------------------------------------------------------------------------
    Case(
        id="operation-not-allowed",
        source="https://github.com/aws/aws-cli/issues/8717",
        code="ValidationException",
        status=400,
        model_id="anthropic.claude-v2",
        message="Operation not allowed",
        expected=errors.AccessDeniedError,
    ),
    Case(
        id="llama-geo-restriction",
        source="https://github.com/earendil-works/pi/issues/4993",
        code="ValidationException",
        status=400,
        model_id="us.meta.llama4-maverick-17b-instruct-v1:0",
        message=(
            "Access to Meta Llama models is not allowed from unsupported countries, regions, or territories."
        ),
        expected=errors.AccessDeniedError,
    ),
    Case(
        id="access-denied-unknown-message",
        source="https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html",
        code="AccessDeniedException",
        status=403,
        message="Access denied.",
        expected=errors.AccessDeniedError,
    ),
    # -- credentials -----------------------------------------------------------------------------------
    Case(
        id="expired-token",
        source="https://github.com/anthropics/claude-code/issues/28032",
        code="ExpiredTokenException",
        status=403,
        message="The security token included in the request is expired",
        expected=errors.ExpiredCredentialsError,
    ),
    Case(
        id="expired-token-short-code",
        source="https://github.com/aws-samples/aws-iot-twinmaker-samples/issues/147",
        code="ExpiredToken",
        status=403,
        message="The security token included in the request is expired",
        expected=errors.ExpiredCredentialsError,
    ),
    Case(
        id="unrecognized-client",
        source="https://github.com/anthropics/claude-code/issues/2260",
        code="UnrecognizedClientException",
        status=403,
        message="The security token included in the request is invalid.",
        expected=errors.InvalidCredentialsError,
    ),
    Case(
        id="invalid-client-token-id",
        source="https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html",
        code="InvalidClientTokenId",
        status=403,
        message="The security token included in the request is invalid.",
        expected=errors.InvalidCredentialsError,
    ),
    Case(
        id="signature-mismatch",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html",
        code="InvalidSignatureException",
        status=403,
        message=(
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details."
        ),
        expected=errors.InvalidCredentialsError,
    ),
    Case(
        id="signature-expired-clock-skew",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html",
        code="InvalidSignatureException",
        status=403,
        message=(
            "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z (20240101T001000Z - "
            "5 min.)"
        ),
        expected=errors.InvalidCredentialsError,
    ),
    # -- unknown, retired, or needs a profile --------------------------------------------------------------
    Case(
        id="invalid-model-identifier",
        source="https://github.com/aws-samples/amazon-bedrock-workshop/issues/315",
        code="ValidationException",
        status=400,
        model_id="amazon.titan-image-generator-v2:0",
        message="The provided model identifier is invalid.",
        expected=errors.ModelNotFoundError,
    ),
    Case(
        id="could-not-resolve",
        source="https://github.com/aws-samples/amazon-bedrock-workshop/issues/58",
        code="ResourceNotFoundException",
        status=404,
        model_id="meta.llama2-13b-chat-v1",
        message="Could not resolve the foundation model from the provided model identifier.",
        expected=errors.ModelNotFoundError,
    ),
    Case(
        id="model-id-constraint",
        source="https://github.com/aws-samples/amazon-bedrock-client-for-mac/issues/11",
        code="ValidationException",
        status=400,
        model_id="anthropic.claude-v2:0:100k",
        message=(
            "1 validation error detected: Value 'anthropic.claude-v2:0:100k' at 'modelId' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: (arn:aws(-[^:]+)?:bedrock:[a-z0-9-]"
            "{1,20}:(([0-9]{12}:custom-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}/[a-z0-9]{12})))"
        ),
        expected=errors.ModelNotFoundError,
    ),
    Case(
        id="end-of-life",
        source="https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html",
        code="ResourceNotFoundException",
        status=404,
        model_id="anthropic.claude-v2",
        message=(
            "This model version has reached the end of its life. Please refer to the AWS documentation for "
            "more details."
        ),
        expected=errors.ModelRetiredError,
    ),
    Case(
        id="legacy-unused",
        source="https://github.com/aws-samples/amazon-bedrock-workshop/issues/386",
        code="ResourceNotFoundException",
        status=404,
        model_id="amazon.titan-text-express-v1",
        message=(
            "Access denied. This Model is marked by provider as Legacy and you have not been actively using "
            "the model in the last 15 days. Please upgrade to an active model on Amazon Bedrock"
        ),
        expected=errors.ModelRetiredError,
    ),
    Case(
        id="on-demand-typographic-apostrophe",
        source="https://github.com/terricain/aioboto3/issues/352",
        code="ValidationException",
        status=400,
        operation="InvokeModelWithResponseStream",
        model_id="anthropic.claude-3-5-sonnet-20241022-v2:0",
        message=(
            "Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput "
            "isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that "
            "contains "
            "this model."
        ),
        expected=errors.InferenceProfileRequiredError,
        fields={"suggested_model_id": "us.anthropic.claude-3-5-sonnet-20241022-v2:0"},
    ),
    Case(
        id="on-demand-eu",
        source="https://github.com/aws-samples/sample-client-for-amazon-bedrock/issues/36",
        code="ValidationException",
        status=400,
        region="eu-west-1",
        model_id="anthropic.claude-3-7-sonnet-20250219-v1:0",
        message=(
            "Invocation of model ID anthropic.claude-3-7-sonnet-20250219-v1:0 with on-demand throughput "
            "isn't supported. Retry your request with the ID or ARN of an inference profile that contains "
            "this model."
        ),
        expected=errors.InferenceProfileRequiredError,
        fields={"suggested_model_id": "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"},
    ),
    Case(
        id="on-demand-apac-converse",
        source="https://github.com/aws-samples/bedrock-multi-agents-collaboration-workshop/issues/21",
        code="ValidationException",
        status=400,
        operation="Converse",
        region="ap-northeast-1",
        model_id="anthropic.claude-3-5-sonnet-20240620-v1:0",
        message=(
            "Invocation of model ID anthropic.claude-3-5-sonnet-20240620-v1:0 with on-demand throughput "
            "isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that "
            "contains "
            "this model."
        ),
        expected=errors.InferenceProfileRequiredError,
        fields={"suggested_model_id": "apac.anthropic.claude-3-5-sonnet-20240620-v1:0"},
    ),
    # -- invalid requests ------------------------------------------------------------------------------
    Case(
        id="max-tokens",
        source="https://github.com/RooCodeInc/Roo-Code/issues/248",
        code="ValidationException",
        status=400,
        message=(
            "The maximum tokens you requested exceed the model limit of 4096. Try again with a maximum "
            "tokens "
            "value lower than 4096."
        ),
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="malformed-input",
        source="https://repost.aws/knowledge-center/bedrock-validation-exception-errors",
        code="ValidationException",
        status=400,
        model_id="amazon.titan-text-express-v1",
        message=(
            "Malformed input request: extraneous key [TextGenerationConfig] is not permitted, please "
            "reformat "
            "your input and try again."
        ),
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="input-too-long",
        source="https://repost.aws/knowledge-center/bedrock-validation-exception-errors",
        code="ValidationException",
        status=400,
        message="Input is too long for requested model.",
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="guardrail-format",
        source="https://repost.aws/knowledge-center/bedrock-validation-exception-errors",
        code="ValidationException",
        status=400,
        message="Guardrail was enabled but input is in incorrect format.",
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="unknown-operation-wrong-endpoint",
        source="https://github.com/aws-samples/amazon-bedrock-workshop/issues/58",
        code="ValidationException",
        status=400,
        message="The requested operation is not recognized by the service.",
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="on-demand-short-form",
        source="troubleshooting notes in public repositories (code search: on-demand throughput)",
        code="ValidationException",
        status=400,
        model_id="anthropic.claude-3-5-sonnet-20240620-v1:0",
        message="The provided model doesn't support on-demand throughput.",
        expected=errors.InferenceProfileRequiredError,
        fields={"suggested_model_id": "us.anthropic.claude-3-5-sonnet-20240620-v1:0"},
    ),
    # -- quotas and throttling -----------------------------------------------------------------------------
    Case(
        id="too-many-tokens",
        source="https://github.com/anthropics/claude-code/issues/236",
        code="ThrottlingException",
        status=429,
        message="Too many tokens, please wait before trying again.",
        expected=errors.ThrottlingError,
        fields={"retryable": True},
    ),
    Case(
        id="request-rate-too-high",
        source="https://github.com/aws-samples/well-architected-iac-analyzer/issues/32",
        code="ThrottlingException",
        status=429,
        message="Your request rate is too high. Reduce the frequency of requests.",
        expected=errors.ThrottlingError,
        fields={"retryable": True},
    ),
    Case(
        id="tokens-per-day",
        source="https://github.com/minorun365/agent-book/issues/29",
        code="ThrottlingException",
        status=429,
        operation="Converse",
        message="Too many tokens per day, please wait before trying again.",
        expected=errors.QuotaExceededError,
        fields={"retryable": False},
    ),
    Case(
        id="service-quota",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="ServiceQuotaExceededException",
        status=400,
        message=(
            "Your request exceeds the service quota for your account. You can view your quotas at Viewing "
            "service quotas. You can resubmit your request later."
        ),
        expected=errors.QuotaExceededError,
        fields={"retryable": False},
    ),
    # -- model and service failures ----------------------------------------------------------------------
    Case(
        id="model-not-ready",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="ModelNotReadyException",
        status=429,
        message=(
            "The model specified in the request is not ready to serve inference requests. The AWS SDK will "
            "automatically retry the operation up to 5 times."
        ),
        expected=errors.ModelNotReadyError,
        fields={"retryable": True},
    ),
    Case(
        id="model-timeout",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="ModelTimeoutException",
        status=408,
        message="The request took too long to process. Processing time exceeded the model timeout length.",
        expected=errors.ModelTimeoutError,
        fields={"retryable": True},
    ),
    Case(
        id="service-unavailable",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="ServiceUnavailableException",
        status=503,
        message="The service isn't currently available. Try again later.",
        expected=errors.ServiceUnavailableError,
        fields={"retryable": True},
    ),
    Case(
        id="internal-server",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="InternalServerException",
        status=500,
        message="An internal server error occurred. Retry your request.",
        expected=errors.InternalServerError,
        fields={"retryable": True},
    ),
    Case(
        id="model-error",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html",
        code="ModelErrorException",
        status=424,
        message="The request failed due to an error while processing the model.",
        expected=errors.ModelError,
        fields={"retryable": False},
    ),
    # -- mid-stream (lowerCamel codes, raised by botocore as EventStreamError) ---------------------------
    Case(
        id="stream-throttling",
        source="https://github.com/BerriAI/litellm/issues/589",
        code="throttlingException",
        operation="InvokeModelWithResponseStream",
        mid_stream=True,
        message=(
            "Too many requests, please wait before trying again. You have sent too many requests.  Wait "
            "before trying again."
        ),
        expected=errors.ThrottlingError,
        fields={"retryable": True, "http_status": 429, "mid_stream": True},
    ),
    Case(
        id="stream-model-error",
        source=(
            "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html"
        ),
        code="modelStreamErrorException",
        operation="ConverseStream",
        mid_stream=True,
        message="An error occurred while streaming the response. Retry your request.",
        expected=errors.ModelStreamError,
        fields={"retryable": True, "http_status": 424, "mid_stream": True},
    ),
    Case(
        id="stream-validation",
        source="https://github.com/langchain-ai/langchain-aws/issues/415",
        code="validationException",
        operation="ConverseStream",
        mid_stream=True,
        message="The model returned the following errors: Validation Error",
        expected=errors.InvalidRequestError,
        fields={"retryable": False, "http_status": 400},
    ),
    Case(
        id="stream-validation-tool-result",
        source="https://github.com/nulib/dc-api-v2/pull/296",
        code="validationException",
        operation="InvokeModelWithResponseStream",
        mid_stream=True,
        message=(
            "messages.4: Did not find 1 `tool_result` block(s) at the beginning of this message. Messages "
            "following `tool_use` blocks must begin with a matching number of `tool_result` blocks."
        ),
        expected=errors.InvalidRequestError,
    ),
    Case(
        id="stream-internal",
        source=(
            "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html"
        ),
        code="internalServerException",
        operation="ConverseStream",
        mid_stream=True,
        message="An internal server error occurred. Retry your request.",
        expected=errors.InternalServerError,
        fields={"http_status": 500},
    ),
    Case(
        id="stream-service-unavailable",
        source=(
            "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html"
        ),
        code="serviceUnavailableException",
        operation="ConverseStream",
        mid_stream=True,
        message="The service isn't currently available. Try again later.",
        expected=errors.ServiceUnavailableError,
        fields={"http_status": 503},
    ),
    # -- codes nobody modeled: nearest base, original code kept ------------------------------------------
    Case(
        id="unknown-4xx",
        source="classification fallback",
        code="SomethingNewException",
        status=400,
        message="A cause Bedrock has not sent before.",
        expected=errors.BedrockServiceError,
        fields={"code": "SomethingNewException", "retryable": False},
    ),
    Case(
        id="unknown-5xx",
        source="classification fallback",
        code="BadGateway",
        status=502,
        message="Bad Gateway",
        expected=errors.TransientError,
        fields={"code": "BadGateway", "retryable": True},
    ),
    Case(
        id="status-only-503",
        source="botocore uses the status as the code when the body names none",
        code="503",
        status=503,
        message="Service Unavailable",
        expected=errors.TransientError,
        fields={"code": "503", "retryable": True},
    ),
)
