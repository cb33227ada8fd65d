"""Isolated boto3 sessions and clients, for both transports of the fake and for tests.

Isolated: fake static credentials, and no AWS profile, config or credentials file from the environment. A
test must never pick up (or send) real credentials, and an `AWS_PROFILE` naming a profile that does not exist
(common on CI machines) must not break anything. Every session shares the process's botocore data loader, so
a fresh session plus its first client costs milliseconds, not a tenth of a second.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any

from safe_bedrock._service import RUNTIME, loader

if TYPE_CHECKING:
    import boto3.session
    import botocore.session
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


FAKE_ACCESS_KEY = "AKIAFAKEBEDROCK00000"
FAKE_SECRET_KEY = "fake-secret-access-key-for-safe-bedrock"  # noqa: S105 - a placeholder, never a secret
# A session variable with no environment variable name makes botocore ignore AWS_PROFILE.
ISOLATED_SESSION_VARS: dict[str, Any] = {"profile": (None, None, None, None)}
_client_lock = threading.Lock()


def isolate(core: botocore.session.Session) -> None:
    """Point a botocore (or aiobotocore) session made with ISOLATED_SESSION_VARS away from the machine's AWS
    files, and share the process's data loader."""
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    core.register_component("data_loader", loader())


def isolated_session(
    *,
    region_name: str | None = None,
    aws_access_key_id: str = FAKE_ACCESS_KEY,
    aws_secret_access_key: str = FAKE_SECRET_KEY,
    aws_session_token: str | None = None,
) -> boto3.session.Session:
    """A new boto3 Session (so a caller may register handlers on it) with static credentials, isolated."""
    import boto3.session  # boto3 is slow to import; only needed when a client is asked for
    import botocore.session

    core = botocore.session.Session(session_vars=ISOLATED_SESSION_VARS)
    isolate(core)
    return boto3.session.Session(
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        region_name=region_name,
        botocore_session=core,
    )


@functools.cache
def _shared_session() -> boto3.session.Session:
    return isolated_session()


def isolated_client(*, region_name: str, **kwargs: Any) -> BedrockRuntimeClient:
    """A bedrock-runtime client from one shared isolated session; kwargs go to `Session.client`."""
    kwargs.setdefault("aws_access_key_id", FAKE_ACCESS_KEY)
    kwargs.setdefault("aws_secret_access_key", FAKE_SECRET_KEY)
    # boto3 sessions are not thread-safe while they build clients: creation is serialised.
    with _client_lock:
        client: BedrockRuntimeClient = _shared_session().client(RUNTIME, region_name=region_name, **kwargs)
    return client
