"""The AWS front door's authentication, for the fake server: is the request signed, by a key we know?

Unsigned (no SigV4 header, presigned query or bearer API key): MissingAuthenticationTokenException. With
`credentials` (access key id -> secret) known, another key is UnrecognizedClientException and a signature
that botocore's own signer does not reproduce from the request as received InvalidSignatureException.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from safe_bedrock.testing import _messages

if TYPE_CHECKING:
    from collections.abc import Mapping

    from botocore.awsrequest import AWSRequest


MISSING_TOKEN = ("MissingAuthenticationTokenException", "Missing Authentication Token")
_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)"
)


def check(
    method: str, path: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str] | None
) -> tuple[str, str] | None:
    """None when the request may pass; else the (error code, message) the front door answers with.

    `headers` have lower-cased names, `path` is the request target exactly as received.
    """
    auth = headers.get("authorization", "").strip()
    bearer = auth[:7].lower() == "bearer " and auth[7:].strip()
    if (auth and credentials is None) or bearer:
        return None  # any scheme and key while the keys are unknown; a bearer API key always
    query = {} if auth else dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    match = _HEADER.match(auth)
    if match is not None:
        credential, signed, signature = match["credential"], match["signed"], match["signature"]
        timestamp, target = headers.get("x-amz-date", ""), path
    elif "X-Amz-Signature" in query and "X-Amz-Credential" in query:  # a presigned URL
        credential, signature = query["X-Amz-Credential"], query["X-Amz-Signature"]
        signed, timestamp = query.get("X-Amz-SignedHeaders", "host"), query.get("X-Amz-Date", "")
        # The signature covers every query parameter but itself.
        target = re.sub(r"&?X-Amz-Signature=[^&]*", "", path)
    else:
        return MISSING_TOKEN if not auth else _bad_signature()
    if credentials is None:
        return None
    access_key, _, scope = credential.partition("/")
    secret = credentials.get(access_key)
    if secret is None:
        return "UnrecognizedClientException", _messages.find("UnrecognizedClientException").template
    from botocore.awsrequest import AWSRequest

    # The request as the client signed it: the target as sent, only the headers its SignedHeaders names.
    url = f"http://{headers.get('host', '')}{target}"
    received = AWSRequest(method, url, {name: headers.get(name, "") for name in signed.split(";")}, body)
    expected = _signature(received, scope, timestamp, access_key, secret)
    return None if hmac.compare_digest(expected, signature) else _bad_signature()


def _bad_signature() -> tuple[str, str]:
    return "InvalidSignatureException", _messages.find("InvalidSignatureException").template


def _signature(request: AWSRequest, scope: str, timestamp: str, access_key: str, secret: str) -> str:
    """botocore's SigV4 signature of the request, with the client's timestamp and credential scope."""
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    _, region, service, *_ = [*unquote(scope).split("/"), "", "", ""]
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
