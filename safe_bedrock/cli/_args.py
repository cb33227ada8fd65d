"""Checks for the values a user types or configures (regions, endpoint URLs, model ids), before any call.

Each check names where the value came from (``--region``, ``AWS_REGION``, ``MODEL``...) and says the fix,
so a typo is a usage error (exit 2) instead of a library exception the command line reports as a bug.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Final
from urllib.parse import urlsplit

from safe_bedrock.cli import CommandError

__all__ = ["check_endpoint", "check_model", "check_region", "known_regions"]

# A region's shape: letters, one or two more dash-separated words, a number (us-east-1, us-gov-west-1).
_REGION_SHAPE: Final = re.compile(r"[a-z]{2,4}(?:-[a-z]+){1,2}-[0-9]{1,2}")
_LOCAL_HOSTS: Final = ("localhost", "127.", "[::1]", "0.0.0.0")  # noqa: S104 - matched as text, not bound


@functools.cache
def known_regions() -> tuple[str, ...]:
    """Every region botocore's partition data names (the ``*-global`` pseudo-regions left out)."""
    from safe_bedrock._service import data

    try:
        partitions = data("partitions")["partitions"]
        regions = {name for p in partitions for name in p.get("regions", {}) if not name.endswith("-global")}
    except Exception:  # noqa: BLE001 - no partition data: the shape check alone still applies  # pragma: no cover
        regions = set()
    return tuple(sorted(regions))


@functools.cache
def _region_words() -> frozenset[str]:
    """The words between a known region's prefix and number: east, southeast, central, gov, iso..."""
    return frozenset(word for region in known_regions() for word in region.split("-")[1:-1])


def _looks_like_a_region(region: str) -> bool:
    """True for a region newer than botocore's data that is named like the others: an AWS region's shape,
    in a partition, with the usual words (so ``eu-wst-1`` is a typo, while ``ap-southeast-9`` passes)."""
    from safe_bedrock._service import data

    if not _REGION_SHAPE.fullmatch(region):
        return False
    words = _region_words()
    if words and not set(region.split("-")[1:-1]) <= words:
        return False
    try:
        regexes = [p["regionRegex"] for p in data("partitions")["partitions"]]
    except Exception:  # noqa: BLE001  # pragma: no cover
        return True
    return any(re.match(regex, region) for regex in regexes)


def _closest_region(region: str) -> str | None:
    candidate = region.strip().lower().replace("_", "-").replace(" ", "-")
    regions = known_regions()
    if candidate in regions:
        return candidate
    # us-east1 -> us-east-1: a missing dash before the number.
    dashed = re.sub(r"([a-z])([0-9]+)$", r"\1-\2", candidate)
    if dashed in regions:
        return dashed
    close = difflib.get_close_matches(candidate, regions, n=1, cutoff=0.75)
    return close[0] if close else None


def check_region(region: str, *, where: str = "--region") -> str:
    """`region` when it is (or looks like) an AWS region; else `CommandError` naming `where` and the closest
    known region."""
    if region in known_regions() or _looks_like_a_region(region):
        return region
    closest = _closest_region(region)
    if closest is not None:
        fix = f"did you mean {closest}? pass {_setting(where, closest)}"
    else:
        example = _setting(where, "us-east-1")
        fix = f"pass an AWS region such as {example} (`aws ec2 describe-regions` lists them)"
    raise CommandError(f"{where} {region!r} is not an AWS region", fix=fix, argument=where)


def _setting(where: str, value: str) -> str:
    """How to give `value` where it came from: ``--region us-east-1``, ``AWS_REGION=us-east-1``..."""
    if where.startswith("--"):
        return f"{where} {value}"
    if where.isupper():  # an environment variable
        return f"{where}={value}"
    return f"region = {value} in ~/.aws/config ({where})"


def check_endpoint(url: str, *, where: str = "--endpoint-url") -> str:
    """`url` when it is an http(s) URL with a host; else `CommandError` naming `where` and the fix
    (``127.0.0.1:4010`` -> add the scheme: ``http://127.0.0.1:4010``)."""
    text = url.strip()
    if not text:
        raise CommandError(
            f"{where} is empty",
            fix=f"pass a URL such as {_setting(where, 'http://127.0.0.1:4010')}",
            argument=where,
        )
    if "://" not in text:
        scheme = "http" if text.startswith(_LOCAL_HOSTS) else "https"
        raise CommandError(
            f"{where} {url!r} has no scheme",
            fix=f"add the scheme: {scheme}://{text.lstrip('/')}",
            argument=where,
        )
    parts = urlsplit(text)
    if parts.scheme.lower() not in {"http", "https"}:
        rest = text.split("://", 1)[1]
        raise CommandError(
            f"{where} {url!r} uses the scheme {parts.scheme!r}",
            fix=f"use http:// or https://, e.g. http://{rest}",
            argument=where,
        )
    if not parts.hostname:
        raise CommandError(
            f"{where} {url!r} names no host",
            fix=f"write the host after the scheme, e.g. {_setting(where, 'http://127.0.0.1:4010')}",
            argument=where,
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise CommandError(
            f"{where} {url!r} has a port that is not a number from 0 to 65535",
            fix=f"write host:port, e.g. {_setting(where, 'http://127.0.0.1:4010')}",
            argument=where,
        ) from None
    return text


def check_model(model: str, *, region: str, where: str = "MODEL") -> None:
    """`CommandError` naming `where` when `model` is not a model id, profile id or ARN."""
    from safe_bedrock._ids import parse_model_id
    from safe_bedrock.errors import InvalidModelIdError

    try:
        parse_model_id(model, region=region)
    except InvalidModelIdError as exc:
        problem = " ".join(exc.problem.split())
        raise CommandError(
            f"{where} {model!r} is not a model id: {problem}",
            fix=" ".join(exc.fix.split())
            or "pass a model id, inference profile id or ARN, e.g. anthropic.claude-3-haiku-20240307-v1:0",
            argument=where,
        ) from None
