"""safe-bedrock: a guarded, drop-in boto3 bedrock-runtime client and a wire-level fake Bedrock.

`SafeBedrockClient` has boto3's methods, arguments and return values; every call addressed to a model is
checked against a `ModelAllowlist` before anything is sent, errors are typed by cause with the fix, and
every call leaves one structured log event. `safe_bedrock.testing` holds the fake Bedrock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._client import SafeBedrockClient
from safe_bedrock._observe import BodyLogging, CallDetails, CallHook
from safe_bedrock._retry import RetryConfig
from safe_bedrock._wire import guard
from safe_bedrock.errors import (
    AccessDeniedError,
    AllowlistError,
    BedrockServiceError,
    EmptyAllowlistWarning,
    ExpiredCredentialsError,
    ExplicitDenyError,
    InferenceProfileRequiredError,
    InternalServerError,
    InvalidCredentialsError,
    InvalidModelIdError,
    InvalidRequestError,
    MarketplaceSubscriptionError,
    MissingPermissionError,
    ModelAccessNotEnabledError,
    ModelError,
    ModelNotAllowedError,
    ModelNotFoundError,
    ModelNotReadyError,
    ModelRetiredError,
    ModelStreamError,
    ModelTimeoutError,
    PolicyError,
    QuotaExceededError,
    SafeBedrockError,
    ServiceUnavailableError,
    ThrottlingError,
    TransientError,
)

if TYPE_CHECKING:
    from safe_bedrock._aio import AsyncSafeBedrockClient

__version__ = "0.2.0"

__all__ = [
    "AccessDeniedError",
    "AllowlistError",
    "AsyncSafeBedrockClient",
    "BedrockServiceError",
    "BodyLogging",
    "CallDetails",
    "CallHook",
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
    "ModelAllowlist",
    "ModelError",
    "ModelNotAllowedError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "ModelRetiredError",
    "ModelStreamError",
    "ModelTimeoutError",
    "PolicyError",
    "QuotaExceededError",
    "RetryConfig",
    "SafeBedrockClient",
    "SafeBedrockError",
    "ServiceUnavailableError",
    "ThrottlingError",
    "TransientError",
    "guard",
]


def __getattr__(name: str) -> Any:
    # The async client needs the optional `aio` extra (aiobotocore); importing safe_bedrock must not.
    if name == "AsyncSafeBedrockClient":
        from safe_bedrock._aio import AsyncSafeBedrockClient

        return AsyncSafeBedrockClient
    raise AttributeError(f"module 'safe_bedrock' has no attribute {name!r}")
