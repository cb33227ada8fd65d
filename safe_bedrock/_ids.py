"""Model identifiers: any modelId -> a typed reference with a canonical ARN (sans-I/O).

Two layers of checking, outermost first:

1. The modelId pattern botocore ships in the bedrock-runtime service model (read from the model, never
   copied): botocore does not enforce it, so ``"foo bar/../x"`` or a 3,000-character id would otherwise
   reach the wire.
2. Our stricter shapes: which kind of resource the id names, a partition that belongs to the region, a
   12-digit account, and no characters that could change what the id means on the way (non-ASCII
   look-alikes, control characters, whitespace, URL-encoded separators, path traversal).

Everything that fails raises `InvalidModelIdError` with the exact problem and the fix.

Account-less system inference profiles: a bare profile id (``us.anthropic.claude-...``) is invoked in the
caller's own account, which a client usually does not know. Its canonical ARN then carries an empty account
(``arn:aws:bedrock:us-east-1::inference-profile/us.anthropic...``). System profiles are defined by AWS and
are the same in every account, and a caller can only ever invoke the one in its own account, so the
account carries no meaning for matching: the allowlist compares system profiles by partition, region and
profile id only (see `match_key`). IAM policies written for them use ``*`` for the account.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from safe_bedrock._catalog import load
from safe_bedrock._service import max_model_id_length, model_id_rule, partition_of
from safe_bedrock.errors import InvalidModelIdError

if TYPE_CHECKING:
    from collections.abc import Mapping


class ModelKind(enum.Enum):
    FOUNDATION_MODEL = "foundation-model"
    INFERENCE_PROFILE = "inference-profile"
    APPLICATION_INFERENCE_PROFILE = "application-inference-profile"
    PROVISIONED_MODEL = "provisioned-model"
    CUSTOM_MODEL = "custom-model"
    CUSTOM_MODEL_DEPLOYMENT = "custom-model-deployment"
    IMPORTED_MODEL = "imported-model"
    PROMPT = "prompt"
    PROMPT_ROUTER = "prompt-router"
    SAGEMAKER_ENDPOINT = "endpoint"


@dataclass(frozen=True, slots=True)
class ModelRef:
    raw: str  # what the caller passed
    kind: ModelKind
    partition: str  # "aws", "aws-cn", ...
    region: str  # "" for the region-less foundation-model ARN form
    account: str  # "" when none (foundation models, bare profile ids with no known account)
    resource_id: str  # e.g. "anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-...", "abc123"
    arn: str  # canonical ARN

    def __str__(self) -> str:
        return self.arn


# --- Shapes ------------------------------------------------------------------------------------------------

# provider.model[:version]. A dot inside the model name only ever starts a version number (deepseek.v3.2,
# zai.glm-4.7-flash), which keeps profile ids apart: in us.anthropic.claude the dot precedes a letter.
_FM_ID = r"[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}(?:\.[0-9][a-z0-9-]{0,15}){0,3}(?::[a-z0-9-]{1,63}){0,2}"
# A geography prefix: us, eu, apac, global, jp, au, us-gov, ... ("any other 2-8 letter prefix").
_GEO = r"[a-z]{2,8}(?:-[a-z]{2,8})?"
_FM_ID_RE: Final = re.compile(_FM_ID)
_PROFILE_ID_RE: Final = re.compile(rf"(?P<geo>{_GEO})\.(?P<model>{_FM_ID})")
_REGION_RE: Final = re.compile(r"[a-z]{2,4}(?:-[a-z]+){1,2}-[0-9]{1,2}")
_PARTITION_RE: Final = re.compile(r"aws(?:-[a-z]+)*")
_ACCOUNT_RE: Final = re.compile(r"[0-9]{12}")
_ENCODED_RE: Final = re.compile(r"%[0-9A-Fa-f]{2}")
_ALLOWED_CHARS_RE: Final = re.compile(r"[A-Za-z0-9._:/-]+")

_ID12 = re.compile(r"[a-z0-9]{12}")
_ROUTER_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9.:-]{0,255}")
# (service, ARN resource type) -> (kind, shape of the part after the slash): every resource a modelId may
# name. Shapes follow botocore's pattern, tightened.
ARN_RESOURCES: Final[dict[tuple[str, str], tuple[ModelKind, re.Pattern[str]]]] = {
    ("bedrock", "foundation-model"): (ModelKind.FOUNDATION_MODEL, _FM_ID_RE),
    ("bedrock", "inference-profile"): (ModelKind.INFERENCE_PROFILE, _PROFILE_ID_RE),
    ("bedrock", "application-inference-profile"): (
        ModelKind.APPLICATION_INFERENCE_PROFILE,
        re.compile(r"[a-z0-9]{1,64}"),
    ),
    ("bedrock", "provisioned-model"): (ModelKind.PROVISIONED_MODEL, _ID12),
    ("bedrock", "custom-model"): (
        ModelKind.CUSTOM_MODEL,
        re.compile(rf"[a-z0-9-]{{1,63}}\.[a-z0-9-]{{1,63}}/{_ID12.pattern}"),
    ),
    ("bedrock", "custom-model-deployment"): (ModelKind.CUSTOM_MODEL_DEPLOYMENT, _ID12),
    ("bedrock", "imported-model"): (ModelKind.IMPORTED_MODEL, _ID12),
    ("bedrock", "prompt"): (ModelKind.PROMPT, re.compile(r"[0-9a-zA-Z]{10}(?::[0-9]{1,5})?")),
    ("bedrock", "prompt-router"): (ModelKind.PROMPT_ROUTER, _ROUTER_ID),
    ("bedrock", "default-prompt-router"): (ModelKind.PROMPT_ROUTER, _ROUTER_ID),
    ("sagemaker", "endpoint"): (ModelKind.SAGEMAKER_ENDPOINT, re.compile(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,62}")),
}


def geographies() -> Mapping[str, tuple[str, ...]]:
    """Each system inference profile geography prefix and the regions its profiles route between, from the
    model catalog (``global``: ``()``, it routes to the region-less foundation-model ARN). Destinations vary
    per model; a row is the union over models, which costs nothing in exposure because a generated policy
    allows those foundation-model ARNs only through the profile (a Condition on bedrock:InferenceProfileArn).
    """
    return load().geographies


def profiles_from(model: str, region: str) -> tuple[str, ...]:
    """The system inference profile ids of ``model`` (an id or id pattern) a client in ``region`` can call.

    A client calls the profiles of its own region only: those of every geography that routes from it (by
    `geographies`; ``us`` from ``us-east-1``, ``eu`` from ``eu-west-1``, ``apac`` and ``jp`` from
    ``ap-northeast-1``), and ``global``. What ``profiles+<model>`` allows, in the allowlist and in policies.
    """
    return tuple(f"{geo}.{model}" for geo, to in geographies().items() if region in to or geo == "global")


# --- Parsing -----------------------------------------------------------------------------------------------


def parse_model_id(
    model_id: object, *, region: str, partition: str | None = None, account: str = ""
) -> ModelRef:
    """Parse any modelId into a `ModelRef`, resolving bare ids in ``region`` (and its partition).

    Raises `InvalidModelIdError` naming what is wrong and how to fix it.
    """
    if type(model_id) is str:
        return _parse_str(model_id, region, partition or "", account)
    if model_id is None:
        fix = "pass modelId as a string, e.g. 'anthropic.claude-3-haiku-20240307-v1:0' or an ARN"
        raise _fail(model_id, "modelId is missing (None)", fix)
    if isinstance(model_id, (bytes, bytearray, memoryview)):
        fix = "decode it first (model_id.decode('ascii')) and pass the string"
        raise _fail(model_id, "modelId is bytes, not str", fix)
    if isinstance(model_id, str):  # a str subclass: its methods could change what is sent
        problem = f"modelId is a {type(model_id).__name__}, a subclass of str"
        raise _fail(model_id, problem, "pass a plain str (str(model_id))")
    problem = f"modelId is of type {type(model_id).__name__}, not str"
    raise _fail(model_id, problem, "pass the model id or ARN as a string")


@functools.lru_cache(maxsize=4096)
def _parse_str(model_id: str, region: str, partition: str, account: str) -> ModelRef:
    _check_characters(model_id)
    _check_context(region, partition, account)
    partition = partition or partition_of(region)
    if model_id.startswith("arn:"):
        ref = _parse_arn(model_id)
    else:
        ref = _parse_bare(model_id, region=region, partition=partition, account=account)
    _check_outer_bound(model_id, ref)
    return ref


def _fail(model_id: object, problem: str, fix: str) -> InvalidModelIdError:
    return InvalidModelIdError(model_id=model_id, problem=problem, fix=fix)


def _check_characters(model_id: str) -> None:
    if not model_id:
        raise _fail(model_id, "modelId is empty", "pass a model id, profile id or ARN")
    max_len = max_model_id_length()
    if len(model_id) > max_len:
        raise _fail(
            model_id,
            f"modelId is {len(model_id)} characters long, over the maximum of {max_len}",
            "pass the model id or ARN itself, not a document containing it",
        )
    if not model_id.isascii():
        index, char = next((i, c) for i, c in enumerate(model_id) if not c.isascii())
        name = unicodedata.name(char, "unnamed character")
        raise _fail(
            model_id,
            f"non-ASCII character U+{ord(char):04X} ({name}) at position {index}; model ids are ASCII, "
            "so this is a look-alike or a typo",
            "retype the id in plain ASCII (copy it from the Bedrock console or `aws bedrock "
            "list-foundation-models`)",
        )
    for index, char in enumerate(model_id):
        if ord(char) < 0x20 or ord(char) == 0x7F:
            fix = "remove control characters (often a stray newline from a file or environment variable)"
            raise _fail(model_id, f"control character {char!r} at position {index}", fix)
    if model_id != model_id.strip():
        raise _fail(model_id, "leading or trailing whitespace", f"strip it: {model_id.strip()!r}")
    if any(char.isspace() for char in model_id):
        raise _fail(model_id, "whitespace inside the id", "model ids contain no spaces")
    if "%" in model_id:
        encoded = _ENCODED_RE.search(model_id)
        what = encoded.group(0) if encoded is not None else "%"
        problem = (
            f"URL-encoded sequence {what!r}; botocore encodes the id itself, so it would be encoded twice"
        )
        raise _fail(model_id, problem, "pass the id unencoded (':' and '/' as they are)")
    if ".." in model_id or "\\" in model_id or "//" in model_id:
        raise _fail(
            model_id,
            "path traversal ('..', '//' or a backslash)",
            "pass a model id or ARN without path segments",
        )
    if not _ALLOWED_CHARS_RE.fullmatch(model_id):
        char = next(c for c in model_id if not _ALLOWED_CHARS_RE.fullmatch(c))
        raise _fail(
            model_id,
            f"character {char!r} is not allowed in a model id",
            "model ids use only letters, digits, '.', '-', ':' and (in ARNs) '/'",
        )


def _check_context(region: str, partition: str, account: str) -> None:
    # These come from the client's configuration, not from the caller's modelId: a plain ValueError.
    if not _REGION_RE.fullmatch(region):
        msg = f"region {region!r} is not an AWS region name (like 'us-east-1')"
        raise ValueError(msg)
    if partition and not _PARTITION_RE.fullmatch(partition):
        msg = f"partition {partition!r} is not an AWS partition (like 'aws' or 'aws-cn')"
        raise ValueError(msg)
    if partition and partition != partition_of(region):
        msg = f"region {region!r} belongs to partition {partition_of(region)!r}, not {partition!r}"
        raise ValueError(msg)
    if account and not _ACCOUNT_RE.fullmatch(account):
        msg = f"account {account!r} is not a 12-digit AWS account id"
        raise ValueError(msg)


def _parse_bare(model_id: str, *, region: str, partition: str, account: str) -> ModelRef:
    if "/" in model_id:
        raise _fail(
            model_id,
            "contains '/' but is not an ARN",
            "pass a model id (provider.model-version) or a full ARN starting with 'arn:'",
        )
    if model_id.lower() != model_id:
        raise _fail(
            model_id,
            "upper-case letters; Bedrock model and profile ids are lower case",
            f"use {model_id.lower()!r}",
        )
    if _FM_ID_RE.fullmatch(model_id):
        arn = f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"
        return ModelRef(model_id, ModelKind.FOUNDATION_MODEL, partition, region, "", model_id, arn)
    if _PROFILE_ID_RE.fullmatch(model_id):
        arn = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
        return ModelRef(model_id, ModelKind.INFERENCE_PROFILE, partition, region, account, model_id, arn)
    raise _fail(
        model_id,
        "not a foundation-model id (provider.model[:version]) nor a cross-Region inference profile id "
        "(geography.provider.model[:version])",
        "check the id in the Bedrock console; provisioned, custom and imported models, application "
        "inference profiles and prompts are passed by their full ARN",
    )


def _parse_arn(model_id: str) -> ModelRef:
    parts = model_id.split(":", 5)
    if len(parts) != 6:
        raise _fail(
            model_id,
            "an ARN needs six ':'-separated parts (arn:partition:service:region:account:resource)",
            "copy the full ARN from the Bedrock console",
        )
    _, partition, service, region, account, resource = parts
    if not _PARTITION_RE.fullmatch(partition):
        raise _fail(
            model_id,
            f"partition {partition!r} is not an AWS partition",
            "use 'aws', 'aws-cn', 'aws-us-gov', ... (the partition of the region)",
        )
    if service not in {"bedrock", "sagemaker"}:
        raise _fail(
            model_id,
            f"service {service!r} is not 'bedrock' (or 'sagemaker' for endpoints)",
            "pass the ARN of a Bedrock model, profile or prompt",
        )
    resource_type, slash, resource_id = resource.partition("/")
    if not slash or not resource_id:
        raise _fail(
            model_id,
            f"resource {resource!r} has no 'type/id' form",
            "copy the full ARN from the Bedrock console",
        )
    known = ARN_RESOURCES.get((service, resource_type))
    if known is None:
        names = ", ".join(f"{s}:{t}" for s, t in sorted(ARN_RESOURCES))
        raise _fail(
            model_id,
            f"resource type {service}:{resource_type} is not one Bedrock invokes",
            f"use one of: {names}",
        )
    kind, shape = known
    if not shape.fullmatch(resource_id):
        raise _fail(
            model_id,
            f"{resource_type} id {resource_id!r} does not have the shape Bedrock uses",
            "copy the id from the Bedrock console; ids are lower case",
        )
    _check_arn_region_account(model_id, kind, partition, region, account)
    return ModelRef(model_id, kind, partition, region, account, resource_id, model_id)


def _check_arn_region_account(
    model_id: str, kind: ModelKind, partition: str, region: str, account: str
) -> None:
    if region or kind is not ModelKind.FOUNDATION_MODEL:
        if not _REGION_RE.fullmatch(region):
            raise _fail(
                model_id,
                f"region {region!r} is not an AWS region name",
                "use a region like 'us-east-1' (only foundation-model ARNs may leave it empty)",
            )
        expected = partition_of(region)
        if expected != partition:
            raise _fail(
                model_id,
                f"region {region!r} belongs to partition {expected!r}, but the ARN says {partition!r}",
                f"use arn:{expected}:... for {region}",
            )
    if kind is ModelKind.FOUNDATION_MODEL:
        if account:
            raise _fail(
                model_id,
                "foundation-model ARNs have no account, but this one has " + repr(account),
                "leave the account empty: arn:<partition>:bedrock:<region>::foundation-model/<id>",
            )
    elif not _ACCOUNT_RE.fullmatch(account):
        raise _fail(
            model_id,
            f"account {account!r} is not a 12-digit AWS account id",
            "copy the full ARN from the Bedrock console",
        )


def _check_outer_bound(model_id: str, ref: ModelRef) -> None:
    pattern, _ = model_id_rule()
    candidates = [model_id]
    if ref.kind is ModelKind.FOUNDATION_MODEL and model_id.startswith("arn:"):
        # botocore's foundation-model ARN alternative is narrower than the ids Bedrock lists (it rejects
        # "anthropic.claude-v2:0:100k", which its bare-id alternative accepts), and it wants a region,
        # which the region-less form global profiles route to has not. The model is the same in either
        # form, so either passing is enough.
        candidates = [model_id.replace(":bedrock:::", ":bedrock:us-east-1::", 1), ref.resource_id]
    if not any(pattern.fullmatch(candidate) for candidate in candidates):
        raise _fail(
            model_id,
            "does not match the modelId pattern in botocore's bedrock-runtime service model",
            "pass a model id, inference profile id or ARN exactly as Bedrock lists it",
        )


# --- Derived facts -----------------------------------------------------------------------------------------


def match_key(ref: ModelRef) -> str:
    """The string the allowlist matches: the canonical ARN, without the account for system profiles."""
    if ref.kind is ModelKind.INFERENCE_PROFILE and ref.account:
        return f"arn:{ref.partition}:bedrock:{ref.region}::inference-profile/{ref.resource_id}"
    return ref.arn


def geography(ref: ModelRef) -> str:
    """The geography prefix of a system inference profile (``"us"``, ``"global"``, ...); ``""`` otherwise."""
    if ref.kind is not ModelKind.INFERENCE_PROFILE:
        return ""
    return ref.resource_id.partition(".")[0]


def base_model_id(ref: ModelRef) -> str:
    """The foundation-model id a system profile serves; the id itself for a foundation model; else ``""``."""
    if ref.kind is ModelKind.INFERENCE_PROFILE:
        return ref.resource_id.partition(".")[2]
    if ref.kind is ModelKind.FOUNDATION_MODEL:
        return ref.resource_id
    return ""


def profile_routes(ref: ModelRef) -> tuple[str, ...]:
    """The foundation-model ARNs a call to ``ref`` is checked against, in a stable order.

    A system inference profile: the foundation model in its source region and in every region its
    geography routes to (`geographies`); ``global.*`` adds the region-less ARN
    ``arn:aws:bedrock:::foundation-model/<id>``. A foundation model: its own ARN. Other kinds: ``()``.
    An unknown geography raises ``LookupError``: guessing destinations would under- or over-grant.
    """
    if ref.kind is ModelKind.FOUNDATION_MODEL:
        return (ref.arn,)
    if ref.kind is not ModelKind.INFERENCE_PROFILE:
        return ()
    geo = geography(ref)
    model = base_model_id(ref)
    known = geographies()
    if geo not in known:
        msg = (
            f"unknown destination regions for the {geo!r} geography of {ref.resource_id!r}; "
            f"known: {', '.join(sorted(known))}"
        )
        raise LookupError(msg)
    regions = known[geo]
    arns = [
        f"arn:{ref.partition}:bedrock:{r}::foundation-model/{model}" for r in sorted({*regions, ref.region})
    ]
    if geo == "global":
        arns.append(f"arn:{ref.partition}:bedrock:::foundation-model/{model}")
    return tuple(arns)
