"""safe-bedrock: a guarded, drop-in boto3 bedrock-runtime client and a wire-level fake Bedrock.

`SafeBedrockClient` has boto3's methods, arguments and return values; every call addressed to a model is
checked against a `ModelAllowlist` before anything is sent, errors are typed by cause with the fix, and
every call leaves one structured log event. `safe_bedrock.testing` holds the fake Bedrock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safe_bedrock import errors
from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._client import SafeBedrockClient
from safe_bedrock._observe import BodyLogging, CallDetails, CallHook
from safe_bedrock._retry import RetryConfig
from safe_bedrock._wire import guard

# The whole error tree is public: errors.__all__ is its one list of names, re-exported here.
from safe_bedrock.errors import *  # noqa: F403

if TYPE_CHECKING:
    from safe_bedrock._aio import AsyncSafeBedrockClient

__version__ = "0.2.0"

__all__ = [
    "AsyncSafeBedrockClient",
    "BodyLogging",
    "CallDetails",
    "CallHook",
    "ModelAllowlist",
    "RetryConfig",
    "SafeBedrockClient",
    "guard",
]
__all__ += errors.__all__
__all__.sort()


def __getattr__(name: str) -> Any:
    # The async client needs the optional `aio` extra (aiobotocore); importing safe_bedrock must not.
    if name == "AsyncSafeBedrockClient":
        from safe_bedrock._aio import AsyncSafeBedrockClient

        return AsyncSafeBedrockClient
    raise AttributeError(f"module 'safe_bedrock' has no attribute {name!r}")
