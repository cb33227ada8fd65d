"""Allowlist entries: the grammar, the checks, and the rules over match keys an entry stands for.

The syntax and the coverage rule are documented in `safe_bedrock._allowlist`. `rules` turns entries into
`Rule`s (an exact key or an IAM pattern over `_ids.match_key` strings, for one kind) or raises
`AllowlistError` naming the entry, its source, the problem and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from safe_bedrock._ids import ARN_RESOURCES, ModelKind, geographies, parse_model_id, profiles_from
from safe_bedrock.errors import AllowlistError, InvalidModelIdError

if TYPE_CHECKING:
    from collections.abc import Iterable


PROFILES_PREFIX: Final = "profiles+"
PLACEHOLDER_REGION: Final = "us-east-1"  # validates bare entries before any region is known
_PATTERN_CHARS: Final = re.compile(r"[A-Za-z0-9._:/*?-]+")
_BARE_PATTERN_CHARS: Final = re.compile(r"[a-z0-9.:*?-]+")
# What the literal head of a wildcard entry (the text before its first '*' or '?') must name so that the
# entry covers the models of one provider only: 'anthropic.' for models, 'us.anthropic.' for profiles.
_PROVIDER_HEAD: Final = re.compile(r"[A-Za-z0-9-]+\.")
_GEO_PROVIDER_HEAD: Final = re.compile(r"[a-z]{2,8}(?:-[a-z]{2,8})?\.[A-Za-z0-9-]+\.")
_WILDCARD: Final = re.compile(r"[*?]")


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern over match keys (`_ids.match_key`) for one kind (None: any kind, with allow_any)."""

    entry: str
    kind: ModelKind | None
    key: str  # exact key or IAM pattern; "{region}"/"{partition}" placeholders for bare entries
    bare: bool  # resolved against a region when bound
    profiles: bool = False  # a profiles+ rule: key names the model, bound to the region's profiles of it

    def keys(self, region: str, partition: str) -> tuple[str, ...]:
        if not self.bare:
            return (self.key,)
        key = self.key.replace("{partition}", partition, 1).replace("{region}", region, 1)
        if not self.profiles:
            return (key,)
        head, _, model = key.rpartition("/")
        return tuple(f"{head}/{profile}" for profile in profiles_from(model, region))


def is_wild(text: str) -> bool:
    return "*" in text or "?" in text


def _entry_error(entry: str, source: str, problem: str, fix: str) -> AllowlistError:
    return AllowlistError(source=source, entry=entry, problem=problem, fix=fix)


_TOO_BROAD_FIX = (
    "name the provider (e.g. 'anthropic.*', or 'us.anthropic.*' for profiles) or list exact ids, "
    "or pass allow_any=True if allowing every model is really intended"
)


def _check_coverage(resource_id: str, kind: ModelKind, *, entry: str, source: str) -> None:
    """Refuse a wildcard id whose literal head names no provider (or, for other kinds, is empty).

    Counting literal characters is not enough: '*0', '*e*' or '*-*' have some and still cover nearly every
    model. What limits a pattern is the text before its first wildcard, so that is what must name a
    provider ('anthropic.'), a geography and a provider for profiles ('us.anthropic.'), or, for ids that
    name no provider (application profiles, provisioned, custom, imported models, prompts), start at all.
    """
    head = _WILDCARD.split(resource_id, maxsplit=1)[0]
    if kind is ModelKind.FOUNDATION_MODEL:
        shape, covers, need = _PROVIDER_HEAD, "every provider", "a provider (like 'anthropic.')"
    elif kind is ModelKind.INFERENCE_PROFILE:
        shape, covers = _GEO_PROVIDER_HEAD, "every provider or geography"
        need = (
            "a geography and a provider (like 'us.anthropic.'; 'profiles+<model id>' allows the profiles of "
            "every geography that routes from the region)"
        )
    elif head:
        return
    else:
        problem = f"covers every {kind.value}: the id starts with a wildcard"
        fix = "list the exact ARNs (or an id prefix), or pass allow_any=True if every one is really intended"
        raise _entry_error(entry, source, problem, fix)
    if shape.match(head) is None:
        problem = (
            f"covers models of {covers}: the text before its first wildcard ({head!r}) does not name {need}"
        )
        raise _entry_error(entry, source, problem, _TOO_BROAD_FIX)


def _rules_for(entry: object, *, source: str, broad_ok: bool) -> list[Rule]:
    if not isinstance(entry, str):
        raise _entry_error(
            repr(entry), source, f"entries are strings, not {type(entry).__name__}", "pass model ids or ARNs"
        )
    if not entry or entry != entry.strip() or any(c.isspace() for c in entry):
        raise _entry_error(entry, source, "empty or contains whitespace", f"use {entry.strip()!r}")
    if entry == "*":
        if not broad_ok:
            raise _entry_error(entry, source, "'*' allows every model", _TOO_BROAD_FIX)
        return [Rule(entry, None, "*", bare=False)]
    if entry.startswith(PROFILES_PREFIX):
        model = entry[len(PROFILES_PREFIX) :]
        rules = _bare_rules(model, entry=entry, source=source, broad_ok=broad_ok)
        if rules[0].kind is not ModelKind.FOUNDATION_MODEL:
            raise _entry_error(
                entry,
                source,
                f"{PROFILES_PREFIX!r} takes a foundation-model id (provider.model...), not {model!r}",
                f"write {PROFILES_PREFIX}anthropic.claude-3-haiku-20240307-v1:0",
            )
        key = f"arn:{{partition}}:bedrock:{{region}}::inference-profile/{model}"
        return [*rules, Rule(entry, ModelKind.INFERENCE_PROFILE, key, bare=True, profiles=True)]
    if entry.startswith("arn:"):
        return [_arn_rule(entry, source=source, broad_ok=broad_ok)]
    return _bare_rules(entry, entry=entry, source=source, broad_ok=broad_ok)


def bare_kind(text: str) -> ModelKind:
    """The kind a bare id or id pattern names: a profile when it starts with a geography, or has a third
    part that is no version number (``deepseek.v3.2`` is a model, ``xx.deepseek.v3.2`` a profile)."""
    head = text.split(":", 1)[0]
    parts = head.split(".")
    if parts[0] in geographies() or (len(parts) > 2 and (parts[2][:1].isalpha() or is_wild(parts[0]))):
        return ModelKind.INFERENCE_PROFILE
    return ModelKind.FOUNDATION_MODEL


def _bare_rules(text: str, *, entry: str, source: str, broad_ok: bool) -> list[Rule]:
    kind = bare_kind(text)
    if not is_wild(text):
        try:
            kind = parse_model_id(text, region=PLACEHOLDER_REGION).kind
        except InvalidModelIdError as exc:
            raise _entry_error(entry, source, exc.problem, exc.fix) from None
    elif text.lower() != text:
        raise _entry_error(entry, source, "model ids are lower case", f"use {text.lower()!r}")
    elif not _BARE_PATTERN_CHARS.fullmatch(text) or ".." in text:
        raise _entry_error(
            entry,
            source,
            "a bare pattern uses lower-case letters, digits, '.', '-', ':', '*' and '?'",
            "write a model id with wildcards, or a full ARN",
        )
    elif not broad_ok:
        _check_coverage(text, kind, entry=entry, source=source)
    return [Rule(entry, kind, f"arn:{{partition}}:bedrock:{{region}}::{kind.value}/{text}", bare=True)]


def _arn_rule(entry: str, *, source: str, broad_ok: bool) -> Rule:
    if not _PATTERN_CHARS.fullmatch(entry) or ".." in entry:
        raise _entry_error(
            entry,
            source,
            "contains characters no ARN has (or '..')",
            "copy the ARN from the Bedrock console; '*' and '?' are the only wildcards",
        )
    parts = entry.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    resource_type, slash, resource_id = resource.partition("/")
    service = parts[2] if len(parts) > 2 else ""
    kind = ARN_RESOURCES.get((service, resource_type), (None,))[0] if slash else None
    if kind is None or not resource_id:
        # '*', 'arn:aws:bedrock:*', '.../*', a wildcard resource type, or not a model resource at all.
        if broad_ok:
            return Rule(entry, None, entry, bare=False)
        if len(parts) < 6 or resource in {"*", ""} or is_wild(resource_type) or is_wild(service):
            raise _entry_error(entry, source, "the resource part covers every model", _TOO_BROAD_FIX)
        names = ", ".join(f"{s}:{t}" for s, t in sorted(ARN_RESOURCES))
        raise _entry_error(
            entry,
            source,
            f"{service}:{resource_type or resource!r} is not a resource Bedrock invokes",
            f"use one of {names}",
        )
    partition, region, account = parts[1], parts[3], parts[4]
    checked = entry
    if kind is ModelKind.INFERENCE_PROFILE:
        # System profiles are the same in every account (see _ids.match_key): any account, "" or "*" will
        # do, and it is left out of the key.
        checked = f"arn:{partition}:{service}:{region}:000000000000:{resource}"
        account = ""
    key = f"arn:{partition}:{service}:{region}:{account}:{resource_type}/{resource_id}"
    if not is_wild(key):
        try:
            parse_model_id(checked, region=PLACEHOLDER_REGION)
        except InvalidModelIdError as exc:
            raise _entry_error(entry, source, exc.problem, exc.fix) from None
    elif not broad_ok:
        _check_coverage(resource_id, kind, entry=entry, source=source)
    return Rule(entry, kind, key, bare=False)


def rules(entries: Iterable[str], *, source: str, broad_ok: bool) -> tuple[Rule, ...]:
    """The rules ``entries`` stand for; `AllowlistError` names the first bad (or too broad) one."""
    return tuple(rule for entry in entries for rule in _rules_for(entry, source=source, broad_ok=broad_ok))


def resource_part(entry: str) -> str:
    """The id part of an entry (what a refused id is compared with to find the closest entries)."""
    if entry.startswith(PROFILES_PREFIX):
        return entry[len(PROFILES_PREFIX) :]
    if entry.startswith("arn:"):
        resource = entry.split(":", 5)[-1]
        return resource.partition("/")[2] or resource
    return entry
