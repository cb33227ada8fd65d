"""Checks for the values a user types or configures (regions, endpoint URLs, model ids), before any call.

Each check names where the value came from (``--region``, ``AWS_REGION``, ``MODEL``...) and says the fix,
so a typo is a usage error (exit 2) instead of a library exception the command line reports as a bug.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import SplitResult, urlsplit

import botocore.session

from safe_bedrock._ids import parse_model_id
from safe_bedrock._service import data
from safe_bedrock.cli import CommandError
from safe_bedrock.errors import InvalidModelIdError

if TYPE_CHECKING:
    from collections.abc import Sequence

# A region's shape: letters, one or two more dash-separated words, a number (us-east-1, us-gov-west-1).
_REGION_SHAPE: Final = re.compile(r"[a-z]{2,4}(?:-[a-z]+){1,2}-[0-9]{1,2}")
_LOCAL_HOSTS: Final = ("localhost", "127.", "[::1]", "0.0.0.0")  # noqa: S104 - matched as text, not bound
_EXAMPLE_URL: Final = "http://127.0.0.1:4010"


def _partitions() -> Sequence[Any]:
    return data("partitions")["partitions"]  # type: ignore[no-any-return]


@functools.cache
def _known_regions() -> tuple[str, ...]:
    """Every region botocore's partition data names (the ``*-global`` pseudo-regions left out)."""
    regions = {name for p in _partitions() for name in p.get("regions", {}) if not name.endswith("-global")}
    return tuple(sorted(regions))


def _looks_like_a_region(region: str) -> bool:
    """True for a region newer than botocore's data that is named like the others: an AWS region's shape,
    in a partition, with the usual words (so ``eu-wst-1`` is a typo, while ``ap-southeast-9`` passes)."""
    words = {word for known in _known_regions() for word in known.split("-")[1:-1]}
    return (
        _REGION_SHAPE.fullmatch(region) is not None
        and set(region.split("-")[1:-1]) <= words
        and any(re.match(p["regionRegex"], region) for p in _partitions())
    )


def _closest_region(region: str) -> str | None:
    candidate = region.strip().lower().replace("_", "-").replace(" ", "-")
    # us-east1 -> us-east-1: a missing dash before the number.
    dashed = re.sub(r"([a-z])([0-9]+)$", r"\1-\2", candidate)
    regions = _known_regions()
    close = difflib.get_close_matches(candidate, regions, n=1, cutoff=0.75)
    return next((each for each in (candidate, dashed) if each in regions), close[0] if close else None)


def _setting(where: str, value: str) -> str:
    """How to give `value` where it came from: ``--region us-east-1``, ``AWS_REGION=us-east-1``..."""
    if where.startswith("--"):
        return f"{where} {value}"
    if where.isupper():  # an environment variable
        return f"{where}={value}"
    return f"region = {value} in ~/.aws/config ({where})"


def check_region(region: str, *, where: str = "--region") -> str:
    """`region` when it is (or looks like) an AWS region; else `CommandError` naming `where` and the closest
    known region."""
    if region in _known_regions() or _looks_like_a_region(region):
        return region
    closest = _closest_region(region)
    if closest is not None:
        fix = f"did you mean {closest}? pass {_setting(where, closest)}"
    else:
        example = _setting(where, "us-east-1")
        fix = f"pass an AWS region such as {example} (`aws ec2 describe-regions` lists them)"
    raise CommandError(f"{where} {region!r} is not an AWS region", fix=fix, argument=where)


def resolve_region(region: str | None) -> str:
    """--region, else the AWS configuration (AWS_REGION, AWS_DEFAULT_REGION, the profile); each checked to be
    an AWS region, the error naming where it came from."""
    if region is not None:
        return check_region(region, where="--region")
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(var):
            return check_region(os.environ[var], where=var)
    configured = botocore.session.get_session().get_config_variable("region")
    if configured:
        return check_region(str(configured), where="the region of your AWS profile")
    raise CommandError(
        "no AWS region given or configured", fix="pass --region (for example us-east-1)", argument="--region"
    )


def _bad_port(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        return True
    return False


def check_endpoint(url: str, *, where: str = "--endpoint-url") -> str:
    """`url` when it is an http(s) URL with a host; else `CommandError` naming `where` and the fix
    (``127.0.0.1:4010`` -> add the scheme: ``http://127.0.0.1:4010``)."""
    text = url.strip()
    parts = urlsplit(text)
    example = _setting(where, _EXAMPLE_URL)
    if not text:
        problem, fix = "is empty", f"pass a URL such as {example}"
    elif "://" not in text:
        scheme = "http" if text.startswith(_LOCAL_HOSTS) else "https"
        problem, fix = "has no scheme", f"add the scheme: {scheme}://{text.lstrip('/')}"
    elif parts.scheme.lower() not in {"http", "https"}:
        problem = f"uses the scheme {parts.scheme!r}"
        fix = f"use http:// or https://, e.g. http://{text.split('://', 1)[1]}"
    elif not parts.hostname:
        problem, fix = "names no host", f"write the host after the scheme, e.g. {example}"
    elif _bad_port(parts):
        problem, fix = "has a port that is not a number from 0 to 65535", f"write host:port, e.g. {example}"
    else:
        return text
    subject = f"{where} {url!r}" if text else where
    raise CommandError(f"{subject} {problem}", fix=fix, argument=where)


def check_model(model: str, *, region: str, where: str = "MODEL") -> None:
    """`CommandError` naming `where` when `model` is not a model id, profile id or ARN."""
    try:
        parse_model_id(model, region=region)
    except InvalidModelIdError as exc:
        raise CommandError(
            f"{where} {model!r} is not a model id: {' '.join(exc.problem.split())}",
            fix=" ".join(exc.fix.split())
            or "pass a model id, inference profile id or ARN, e.g. anthropic.claude-3-haiku-20240307-v1:0",
            argument=where,
        ) from None
