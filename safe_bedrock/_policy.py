"""IAM policy documents: read and validate, evaluate, and write least-privilege policies (sans-I/O).

The subset understood here is what an application's Bedrock permissions are written in: Allow and Deny
statements with Action/NotAction and Resource/NotResource. Everything else that changes a statement's
meaning (Principal, any Condition other than the one below) is refused loudly with `PolicyError`: a
statement we cannot evaluate must never be silently ignored, since ignoring a Deny or a narrowing
Condition would allow more than the policy says.

The one Condition understood is ``bedrock:InferenceProfileArn`` (with StringEquals, StringLike, ArnEquals
or ArnLike): it is how AWS recommends allowing a foundation model only when a cross-Region inference
profile routes to it, and it is what `least_privilege_policy` writes for the destination regions. The
key is present only on requests that went through a profile; a statement conditioned on it does not apply
to direct calls, exactly as in IAM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from safe_bedrock._ids import ModelKind, ModelRef, profile_routes
from safe_bedrock.errors import PolicyError as PolicyError  # noqa: PLC0414 - the CLI and the fake import it here

INVOKE: Final = "bedrock:InvokeModel"
INVOKE_STREAM: Final = "bedrock:InvokeModelWithResponseStream"
INVOKE_BIDI_STREAM: Final = "bedrock:InvokeModelWithBidirectionalStream"
PROFILE_ARN_KEY: Final = "bedrock:InferenceProfileArn"

_MAX_POLICY_CHARS: Final = 1 << 20  # IAM's own limits are far lower (6,144 for managed policies)
_MAX_DEPTH: Final = 16
_MAX_STATEMENTS: Final = 5000
_VERSIONS: Final = frozenset({"2012-10-17", "2008-10-17"})
_STATEMENT_KEYS: Final = frozenset((
    "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition",
    "Principal", "NotPrincipal",
))  # fmt: skip
_CONDITION_OPERATORS: Final = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike"})
_ACTION_RE: Final = re.compile(r"\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+")


_EXACT: Final = int(re.DOTALL)  # plain ints: combining RegexFlag members costs more than the lookup
_FOLD: Final = int(re.DOTALL | re.IGNORECASE)


def iam_pattern(pattern: str, *, fold: bool = False) -> re.Pattern[str]:
    """An IAM wildcard pattern as a regex, anchored at both ends (``\\A...\\Z``) whatever method is used.

    ``*`` matches any run of characters (``:`` and ``/`` included), ``?`` exactly one, everything else is
    literal. Case-sensitive, as IAM compares resource ARNs, unless ``fold`` (IAM compares actions ignoring
    case). The one translation of IAM wildcards in the package: policies, the allowlist (which joins the
    ``.pattern`` of several into one alternation) and the fake all use it; ``re`` caches compiled forms.
    """
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(rf"\A{body}\Z", _FOLD if fold else _EXACT)


def iam_match(pattern: str, value: str, *, fold: bool = False) -> bool:
    """Whether ``value`` matches the IAM wildcard ``pattern`` (see `iam_pattern`)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if fold else pattern == value
    return iam_pattern(pattern, fold=fold).match(value) is not None


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    allowed: bool
    explicit_deny: bool
    matched_sid: str | None


@dataclass(frozen=True, slots=True)
class Statement:
    """One validated statement. ``profile_arns`` is the bedrock:InferenceProfileArn condition, if any."""

    index: int
    sid: str | None
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    profile_arns: tuple[str, ...] | None = None
    profile_exact: bool = False  # StringEquals/ArnEquals: compare exactly, no wildcards

    @property
    def label(self) -> str:
        return f"statement {self.index}" + (f" (Sid {self.sid!r})" if self.sid else "")

    def applies_to_action(self, action: str) -> bool:
        hit = any(iam_match(pattern, action, fold=True) for pattern in self.actions)
        return hit != self.not_action

    def applies_to_resource(self, resource: str) -> bool:
        hit = any(iam_match(pattern, resource) for pattern in self.resources)
        return hit != self.not_resource

    def condition_holds(self, inference_profile_arn: str | None) -> bool:
        if self.profile_arns is None:
            return True
        if inference_profile_arn is None:  # key absent: a non-IfExists condition is false
            return False
        if self.profile_exact:
            return inference_profile_arn in self.profile_arns
        return any(iam_match(pattern, inference_profile_arn) for pattern in self.profile_arns)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDocument:
    """A parsed and validated IAM identity policy. Build it with `from_json`."""

    statements: tuple[Statement, ...]
    version: str
    source: str

    def __repr__(self) -> str:
        return f"<PolicyDocument {self.source} with {len(self.statements)} statements>"

    @classmethod
    def from_json(
        cls, text: str | bytes | Mapping[str, object], *, source: str = "<policy>"
    ) -> PolicyDocument:
        """Parse a policy from JSON text or an already-decoded mapping; `PolicyError` names what is wrong."""
        data: object
        if isinstance(text, (str, bytes, bytearray)):
            data = load_json(text, what="policy", fail=lambda problem: _error(source, problem))
        elif isinstance(text, Mapping):
            data = text
        else:
            raise _error(source, f"a policy is JSON text or a mapping, not {type(text).__name__}")
        _check_depth(data, source)
        return _parse_document(data, source)

    def evaluate(
        self, *, action: str, resource: str, inference_profile_arn: str | None = None
    ) -> PolicyVerdict:
        """IAM's decision for one action on one resource: an explicit Deny wins, otherwise deny by default.

        ``inference_profile_arn`` is the bedrock:InferenceProfileArn request context: the profile a request
        went through when IAM checks the foundation model in the region it was routed to.
        """
        applying = [
            statement
            for statement in self.statements
            if statement.applies_to_action(action)
            and statement.applies_to_resource(resource)
            and statement.condition_holds(inference_profile_arn)
        ]
        deny = next((statement for statement in applying if statement.effect == "Deny"), None)
        if deny is not None:
            return PolicyVerdict(allowed=False, explicit_deny=True, matched_sid=deny.sid)
        sid = applying[0].sid if applying else None
        return PolicyVerdict(allowed=bool(applying), explicit_deny=False, matched_sid=sid)

    def allowed_resources(self, action: str) -> tuple[str, ...]:
        """Resource patterns of the Allow statements that apply to ``action`` unconditionally.

        Statements conditioned on bedrock:InferenceProfileArn are left out: they allow a resource only
        through a profile, never when called directly. NotResource in an applicable Allow raises
        `PolicyError` (it allows everything except a list, which no allowlist should become).
        """
        return self._resources("Allow", action, include_conditional=False)

    def denied_resources(self, action: str) -> tuple[str, ...]:
        """Resource patterns of the Deny statements that apply to ``action``, conditional ones included."""
        return self._resources("Deny", action, include_conditional=True)

    def _resources(self, effect: str, action: str, *, include_conditional: bool) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for statement in self.statements:
            if statement.effect != effect or not statement.applies_to_action(action):
                continue
            if statement.profile_arns is not None and not include_conditional:
                continue
            if statement.not_resource:
                raise PolicyError(
                    f"{self.source}: {statement.label} uses NotResource for {action}; it cannot be read "
                    "as a list of resources. Fix: list the resources in Resource instead",
                    source=self.source,
                    problem="NotResource",
                    statement=statement.label,
                )
            found.update(dict.fromkeys(statement.resources))
        return tuple(found)


# --- Allowlists read from a policy (`ModelAllowlist.from_policy`): denies for any account, routed profiles


def _any_account(pattern: str) -> str:
    parts = pattern.split(":", 5)
    if len(parts) == 6 and "/" not in parts[4]:
        parts[4] = "*"
    return ":".join(parts)


def any_account_denies(document: PolicyDocument) -> PolicyDocument:
    """The policy with every Deny widened to any account (its resources and its profile condition).

    The caller's account is unknown to an allowlist: a Deny naming any account is assumed to apply.
    """

    def widen(statement: Statement) -> Statement:
        if statement.effect != "Deny" or statement.not_resource:
            return statement
        arns = statement.profile_arns
        return replace(
            statement,
            resources=tuple(map(_any_account, statement.resources)),
            profile_arns=None if arns is None else tuple(map(_any_account, arns)),
            profile_exact=False,
        )

    return replace(document, statements=tuple(map(widen, document.statements)))


# Stands for the caller's account in a system profile's ARN when the id does not name it: only a wildcard
# account matches it, so an Allow naming some account is never taken to be the caller's.
_UNKNOWN_ACCOUNT: Final = "{account-id}"


def routed_refusal(document: PolicyDocument, ref: ModelRef, *, action: str) -> str:
    """Why IAM would refuse calling the system profile ``ref`` under ``document``; "" when it allows it.

    IAM authorizes such a call on the profile ARN and on the foundation model in every region the request
    may be routed to, each with bedrock:InferenceProfileArn set to the profile (`PolicyDocument.evaluate`
    with that context is IAM's decision; the routes are `profile_routes`).
    """
    profile = ref.arn
    if not ref.account:
        profile = (
            f"arn:{ref.partition}:bedrock:{ref.region}:{_UNKNOWN_ACCOUNT}:inference-profile/{ref.resource_id}"
        )
    try:
        routes = profile_routes(ref)
    except LookupError as exc:
        return f"{exc}, so the policy cannot be checked for every region this profile may send requests to"
    for resource in (profile, *routes):
        verdict = document.evaluate(action=action, resource=resource, inference_profile_arn=profile)
        if verdict.allowed:
            continue
        where = "the profile" if resource == profile else f"{resource}, where this profile may route"
        if verdict.explicit_deny:
            sid = f" (Sid {verdict.matched_sid!r})" if verdict.matched_sid else ""
            return (
                f"an explicit Deny{sid} in the policy covers {where}, "
                "so IAM refuses the call; narrow that Deny, or call a model or profile it does not cover"
            )
        if resource == profile and ref.account:
            return f"the policy does not allow {action} on {profile} (it names another account)"
        if resource == profile:
            return (
                "the policy allows the profile only in a named account, and the caller's account is not "
                f"known here; allow {policy_resource(ref)} (any account), or pass the profile's full ARN "
                "with your account as modelId"
            )
        return (
            f"the policy does not allow {action} on {where} (IAM checks every routed region); allow it "
            f"conditioned on bedrock:InferenceProfileArn {policy_resource(ref)} "
            f"(`safe-bedrock policy {ref.resource_id}` writes that statement)"
        )
    return ""


# --- Parsing -----------------------------------------------------------------------------------------------


def _error(source: str, problem: str, statement: str | None = None) -> PolicyError:
    where = f"{source}: {statement}: " if statement else f"{source}: "
    return PolicyError(where + problem, source=source, problem=problem, statement=statement)


class _DuplicateKeyError(ValueError):
    pass


def _strict_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def load_json(text: str | bytes | bytearray, *, what: str, fail: Callable[[str], Exception]) -> object:
    """JSON text as a reviewer reads it: at most 1 MiB, UTF-8, each key once; ``fail(problem)`` is raised.

    `json` silently keeps the last of two equal keys, so `{"Effect": "Deny", "Effect": "Allow"}` would be
    read as an Allow: what a reviewer reads must be what is enforced.
    """
    if len(text) > _MAX_POLICY_CHARS:
        raise fail(f"{what} is {len(text)} characters, over the {_MAX_POLICY_CHARS} limit")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_strict_object)
    except _DuplicateKeyError as exc:
        raise fail(f"{exc} in one JSON object (JSON keeps only the last): write it once") from None
    except RecursionError:
        raise fail(f"{what} JSON is nested too deeply (more than {_MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _check_depth(data: object, source: str) -> None:
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise _error(source, f"policy JSON is nested too deeply (more than {_MAX_DEPTH} levels)")
        if isinstance(node, Mapping):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


def _parse_document(data: object, source: str) -> PolicyDocument:
    if not isinstance(data, Mapping):
        raise _error(source, f"a policy is a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - {"Version", "Id", "Statement"})
    if unknown:
        raise _error(source, f"unknown top-level key(s) {', '.join(map(repr, unknown))}")
    version = data.get("Version", "2008-10-17")
    if version not in _VERSIONS:
        raise _error(source, f"Version {version!r} is not '2012-10-17' (or '2008-10-17')")
    if "Statement" not in data:
        raise _error(source, "policy has no Statement")
    items = data["Statement"]
    items = [items] if isinstance(items, Mapping) else items
    if not isinstance(items, list):
        raise _error(source, f"Statement is an object or a list of objects, not {type(items).__name__}")
    if len(items) > _MAX_STATEMENTS:
        raise _error(source, f"{len(items)} statements, over the limit of {_MAX_STATEMENTS}")
    statements = tuple(_parse_statement(item, index, source) for index, item in enumerate(items))
    return PolicyDocument(statements=statements, version=str(version), source=source)


def _strings(value: object, *, key: str, source: str, label: str) -> tuple[str, ...]:
    if isinstance(value, str):
        values: list[object] = [value]
    elif isinstance(value, list) and value:
        values = list(value)
    else:
        raise _error(source, f"{key} must be a string or a non-empty list of strings", label)
    for item in values:
        if not isinstance(item, str) or not item:
            raise _error(source, f"{key} contains {item!r}, not a non-empty string", label)
    return tuple(str(item) for item in values)


def _parse_statement(item: object, index: int, source: str) -> Statement:
    label = f"statement {index}"
    if not isinstance(item, Mapping):
        raise _error(source, f"a statement is a JSON object, not {type(item).__name__}", label)
    sid = item.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise _error(source, f"Sid must be a string, not {type(sid).__name__}", label)
        label = f"statement {index} (Sid {sid!r})"
    unknown = sorted(set(item) - _STATEMENT_KEYS)
    if unknown:
        raise _error(source, f"unknown key(s) {', '.join(map(repr, unknown))}", label)
    for key in ("Principal", "NotPrincipal"):
        if key in item:
            raise _error(
                source,
                f"{key} is not supported: this reads identity-based policies (what a role or user may do); "
                "remove it, or use the identity policy of the principal instead",
                label,
            )
    effect = item.get("Effect")
    if effect not in {"Allow", "Deny"}:
        raise _error(source, f"Effect must be 'Allow' or 'Deny', not {effect!r}", label)
    actions, not_action = _one_of(item, "Action", "NotAction", source, label)
    for action in actions:
        if not _ACTION_RE.fullmatch(action):
            raise _error(
                source, f"action {action!r} is not 'service:Action' (wildcards allowed) or '*'", label
            )
    resources, not_resource = _one_of(item, "Resource", "NotResource", source, label)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise _error(source, f"resource {resource!r} is not an ARN (arn:...) or '*'", label)
    profile_arns, exact = _parse_condition(item.get("Condition"), source, label)
    return Statement(
        index=index,
        sid=sid,
        effect=str(effect),
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        profile_arns=profile_arns,
        profile_exact=exact,
    )


def _one_of(
    item: Mapping[str, object], key: str, not_key: str, source: str, label: str
) -> tuple[tuple[str, ...], bool]:
    if (key in item) == (not_key in item):
        raise _error(source, f"a statement needs exactly one of {key} and {not_key}", label)
    name = key if key in item else not_key
    return _strings(item[name], key=name, source=source, label=label), name == not_key


def _parse_condition(condition: object, source: str, label: str) -> tuple[tuple[str, ...] | None, bool]:
    if condition is None:
        return None, False
    refuse = (
        "Condition is not supported except "
        f"{{'StringLike'|'StringEquals'|'ArnLike'|'ArnEquals': {{'{PROFILE_ARN_KEY}': ...}}}}; "
        "a condition that cannot be evaluated is never ignored. Fix: express the restriction with "
        "Resource ARNs, or leave this statement out of the policy given to safe-bedrock"
    )
    if not isinstance(condition, Mapping) or len(condition) != 1:
        raise _error(source, refuse, label)
    ((operator, block),) = condition.items()
    if operator not in _CONDITION_OPERATORS or not isinstance(block, Mapping) or len(block) != 1:
        raise _error(source, refuse, label)
    ((key, value),) = block.items()
    if not isinstance(key, str) or key.lower() != PROFILE_ARN_KEY.lower():
        raise _error(source, refuse, label)
    values = _strings(value, key=f"Condition {operator} {key}", source=source, label=label)
    return values, operator.endswith("Equals")


# --- Writing least-privilege policies ----------------------------------------------------------------------

_SIDS: Final[Mapping[ModelKind, str]] = {
    ModelKind.FOUNDATION_MODEL: "InvokeFoundationModels",
    ModelKind.INFERENCE_PROFILE: "InvokeCrossRegionInferenceProfiles",
    ModelKind.APPLICATION_INFERENCE_PROFILE: "InvokeApplicationInferenceProfiles",
    ModelKind.PROVISIONED_MODEL: "InvokeProvisionedModels",
    ModelKind.CUSTOM_MODEL: "InvokeCustomModels",
    ModelKind.CUSTOM_MODEL_DEPLOYMENT: "InvokeCustomModelDeployments",
    ModelKind.IMPORTED_MODEL: "InvokeImportedModels",
    ModelKind.PROMPT: "InvokePrompts",
    ModelKind.PROMPT_ROUTER: "InvokePromptRouters",
    ModelKind.SAGEMAKER_ENDPOINT: "InvokeSageMakerEndpoints",
}
ROUTED_SID: Final = "InvokeFoundationModelsThroughProfiles"


def policy_resource(ref: ModelRef, *, account: str = "") -> str:
    """The ARN a policy names for ``ref``; a system profile with no known account gets ``*`` there.

    A caller only ever invokes the system profile in its own account, so ``*`` grants nothing more.
    """
    if ref.kind is ModelKind.INFERENCE_PROFILE and not ref.account:
        owner = account or "*"
        return f"arn:{ref.partition}:bedrock:{ref.region}:{owner}:inference-profile/{ref.resource_id}"
    return ref.arn


def least_privilege_policy(
    refs: Iterable[ModelRef], *, actions: Iterable[str], account: str = ""
) -> dict[str, object]:
    """The IAM policy allowing exactly ``actions`` on exactly ``refs``; never ``Resource: "*"``.

    One statement per kind of resource, with exact ARNs in a stable (sorted) order. A cross-Region
    inference profile needs its own ARN plus the foundation model in every region it routes to (the
    region-less ARN for ``global.*``); those foundation-model ARNs go into a separate statement allowed
    only through the profiles (Condition on bedrock:InferenceProfileArn), so the policy does not also allow
    calling the model directly in other regions. ``account`` fills the account of bare profile ids
    (otherwise ``*``).
    """
    action_list = sorted(dict.fromkeys(actions))
    if not action_list:
        raise PolicyError("least_privilege_policy: no actions given", problem="no actions")
    for action in action_list:
        if not _ACTION_RE.fullmatch(action) or "*" in action or "?" in action:
            raise PolicyError(
                f"least_privilege_policy: action {action!r} is not an exact 'service:Action'",
                problem="bad action",
            )
    by_kind: dict[ModelKind, set[str]] = {}
    routed: set[str] = set()
    profiles: set[str] = set()
    for ref in refs:
        resource = policy_resource(ref, account=account)
        by_kind.setdefault(ref.kind, set()).add(resource)
        if ref.kind is ModelKind.INFERENCE_PROFILE:
            try:
                routes = profile_routes(ref)
            except LookupError as exc:
                raise PolicyError(f"least_privilege_policy: {exc}", problem=str(exc)) from None
            routed.update(routes)
            profiles.add(resource)
    if not by_kind:
        raise PolicyError("least_privilege_policy: no models given", problem="no models")
    action_value: str | list[str] = action_list[0] if len(action_list) == 1 else action_list
    statements: list[dict[str, Any]] = [
        {"Sid": _SIDS[kind], "Effect": "Allow", "Action": action_value, "Resource": sorted(by_kind[kind])}
        for kind in ModelKind  # enum order: stable and readable
        if kind in by_kind
    ]
    if routed:
        statements.append(
            {
                "Sid": ROUTED_SID,
                "Effect": "Allow",
                "Action": action_value,
                "Resource": sorted(routed),
                "Condition": {"ArnLike": {PROFILE_ARN_KEY: sorted(profiles)}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
