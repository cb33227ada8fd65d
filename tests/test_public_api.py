"""The public surface is a contract: these names, exactly, and nothing private leaks into it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import safe_bedrock
import safe_bedrock.errors
import safe_bedrock.testing

PUBLIC = [
    "AccessDeniedError",
    "AllowlistError",
    "AsyncSafeBedrockClient",
    "BedrockServiceError",
    "BodyLogging",
    "CallDetails",
    "CallHook",
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
    "StreamChecksumError",
    "StreamConnectionError",
    "StreamFrameError",
    "StreamIncompleteError",
    "StreamReadTimeoutError",
    "StreamTruncatedError",
    "ThrottlingError",
    "TransientError",
    "UnknownModelWarning",
    "guard",
]


def test_the_exported_names_are_exactly_all() -> None:
    assert safe_bedrock.__all__ == PUBLIC
    exported = {name for name in dir(safe_bedrock) if name[0].isalpha()}
    modules = {"errors", "testing", "cli"}
    assert exported - modules - {"annotations", "TYPE_CHECKING", "Any"} <= set(PUBLIC)


def test_every_error_is_reexported_from_the_package() -> None:
    for name in safe_bedrock.errors.__all__:
        assert getattr(safe_bedrock, name) is getattr(safe_bedrock.errors, name)


def test_the_errors_module_documents_every_class_in_its_tree() -> None:
    doc = safe_bedrock.errors.__doc__ or ""
    for name in safe_bedrock.errors.__all__:
        assert name in doc, name


def test_the_testing_module_exposes_the_doubles() -> None:
    assert {"FakeBedrock", "FakeBedrockServer", "ANY"} <= set(safe_bedrock.testing.__all__)


def test_importing_the_package_does_not_import_the_async_extra() -> None:
    code = "import sys, safe_bedrock; print('aiobotocore' in sys.modules, 'safe_bedrock._aio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


TESTING_PUBLIC = [
    "ANY",
    "ConnectionDrop",
    "FakeBedrock",
    "FakeBedrockServer",
    "FakeRequest",
    "ScriptingAPI",
    "connect",
    "set_testing",
]


def test_the_testing_names_are_exactly_all() -> None:
    assert safe_bedrock.testing.__all__ == TESTING_PUBLIC
    exported = {name for name in dir(safe_bedrock.testing) if name[0].isalpha()}
    assert exported - {"annotations", "TYPE_CHECKING", "Any"} <= set(TESTING_PUBLIC)
    for name in TESTING_PUBLIC:
        assert getattr(safe_bedrock.testing, name) is not None


def test_the_version_is_the_installed_distributions() -> None:
    assert safe_bedrock.__version__ == importlib.metadata.version("safe-bedrock")


def test_every_public_class_and_function_says_what_it_is_and_since_when() -> None:
    # The API reference is built from these docstrings (docs/reference); a name without one is undocumented.
    public = [(safe_bedrock, name) for name in safe_bedrock.__all__ if name != "AsyncSafeBedrockClient"]
    public += [(safe_bedrock.testing, name) for name in safe_bedrock.testing.__all__ if name != "ANY"]
    undocumented = [
        name for module, name in public if "Added in version" not in (getattr(module, name).__doc__ or "")
    ]
    assert undocumented == []
