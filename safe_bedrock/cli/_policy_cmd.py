"""`safe-bedrock policy`: the least-privilege IAM policy for an allowlist.

Every source of models is parsed by `ModelAllowlist` (so anything the client would refuse, such as ``*``, is
refused here too, with the same message), then written out with `least_privilege_policy`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from safe_bedrock._allowlist import ENV_VAR, ModelAllowlist
from safe_bedrock._entries import PROFILES_PREFIX, bare_kind
from safe_bedrock._ids import ModelKind, ModelRef, parse_model_id, profile_routes, profiles_from
from safe_bedrock._policy import (
    INVOKE,
    INVOKE_STREAM,
    PROFILE_ARN_KEY,
    PolicyDocument,
    least_privilege_policy,
)
from safe_bedrock._service import partition_of
from safe_bedrock.cli import EXIT_CODES_HELP, EXIT_OK, Command, CommandError
from safe_bedrock.cli._args import resolve_region
from safe_bedrock.cli._invoke import allowlist_errors
from safe_bedrock.cli._output import Output

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


ROLES: Final = ("app", "auditor", "developer")
ACTION_NAMES: Final = {"invoke": INVOKE, "stream": INVOKE_STREAM}
# Read-only: IAM gives these no resource-level permissions, so "*" is the only valid Resource.
LIST_ACTIONS: Final = (
    "bedrock:GetFoundationModelAvailability",
    "bedrock:ListFoundationModels",
    "bedrock:ListInferenceProfiles",
)
# Read-only with resource-level permissions: scoped to the region's models and the account's profiles.
GET_ACTIONS: Final = ("bedrock:GetFoundationModel", "bedrock:GetInferenceProfile")
READ_ONLY_ACTIONS: Final = (*LIST_ACTIONS, *GET_ACTIONS)
_ACCOUNT: Final = re.compile(r"\d{12}")


@dataclass(frozen=True, slots=True)
class Built:
    """A policy and what it was built from, as `policy --json` prints them."""

    policy: dict[str, object]
    role: str
    region: str
    account: str | None
    actions: tuple[str, ...]
    models: tuple[str, ...]
    notes: tuple[str, ...]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="model ids, inference profile ids or ARNs to allow (IAM wildcards * and ? allowed)",
    )
    parser.add_argument("--from-env", action="store_true", help=f"add the entries of {ENV_VAR}")
    parser.add_argument(
        "--file", metavar="F", help="add the entries of an allowlist file (TOML or JSON: allow = [...])"
    )
    parser.add_argument(
        "--from-policy",
        metavar="F",
        help="add what an existing IAM policy (JSON) allows to invoke; its explicit denies are kept",
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="app",
        help="app: invoke only (default); auditor: read-only list/get of models and profiles, "
        "no invoke; developer: app plus the read-only set",
    )
    parser.add_argument(
        "--actions",
        default="invoke,stream",
        metavar="invoke,stream",
        help="which invoke actions to allow: invoke (bedrock:InvokeModel, also Converse), stream "
        "(bedrock:InvokeModelWithResponseStream, also ConverseStream); default both",
    )
    parser.add_argument("--region", help="region bare model ids resolve in (default: your AWS configuration)")
    parser.add_argument(
        "--account", metavar="A", help="12-digit account id for inference profile ARNs (default '*')"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object with the policy and notes")


def parse_actions(text: str) -> tuple[str, ...]:
    """--actions invoke,stream (of `policy` and `check`) -> the IAM actions."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names or not set(names) <= ACTION_NAMES.keys():
        raise CommandError(
            f"--actions {text!r} is not a list of {', '.join(ACTION_NAMES)}",
            fix="write --actions invoke,stream (or just one of them)",
            argument="--actions",
        )
    return tuple(ACTION_NAMES[name] for name in dict.fromkeys(names))


def _read_sources(
    models: Sequence[str], *, from_env: bool, file: str | None, from_policy: str | None, region: str
) -> tuple[list[ModelAllowlist], list[str]]:
    """The allowlists named by each source, and the resources a --from-policy document denies."""
    sources: list[ModelAllowlist] = []
    denied: list[str] = []
    if models:
        with allowlist_errors("MODEL"):
            sources.append(ModelAllowlist(list(models), region=region, source="command line"))
    if from_env:
        if not os.environ.get(ENV_VAR, "").strip():
            raise CommandError(
                f"--from-env: {ENV_VAR} is not set or empty",
                fix=f"set {ENV_VAR}=id[,id...], or pass the models as arguments",
                argument="--from-env",
            )
        with allowlist_errors(ENV_VAR):
            sources.append(ModelAllowlist.from_env(region=region))
    if file:
        with allowlist_errors("--file"):
            sources.append(ModelAllowlist.from_file(file, region=region))
    if from_policy:
        with allowlist_errors("--from-policy"):
            document = PolicyDocument.from_json(Path(from_policy).read_bytes(), source=from_policy)
            allowlist = ModelAllowlist.from_policy(document, region=region, source=f"policy {from_policy}")
        sources.append(allowlist)
        denied = list(
            dict.fromkeys(document.denied_resources(INVOKE) + document.denied_resources(INVOKE_STREAM))
        )
    return sources, denied


@dataclass
class _Resources:
    """Resources for one set of actions: exact model refs, and patterns the user wrote with wildcards."""

    refs: list[ModelRef] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    routed_patterns: list[str] = field(default_factory=list)
    profile_patterns: list[str] = field(default_factory=list)


def _expand(entry: str, *, region: str, partition: str, account: str, into: _Resources) -> None:
    if entry.startswith(PROFILES_PREFIX):  # the model and its profiles a client in the region can call
        model = entry[len(PROFILES_PREFIX) :]
        for each in (model, *profiles_from(model, region)):
            _expand(each, region=region, partition=partition, account=account, into=into)
        return
    if "*" not in entry and "?" not in entry:
        into.refs.append(parse_model_id(entry, region=region, partition=partition, account=account))
        return
    if entry.startswith("arn:"):
        into.patterns.append(entry)
        return
    kind = bare_kind(entry)
    if kind is ModelKind.FOUNDATION_MODEL:
        into.patterns.append(f"arn:{partition}:bedrock:{region}::foundation-model/{entry}")
        return
    pattern = f"arn:{partition}:bedrock:{region}:{account or '*'}:inference-profile/{entry}"
    try:  # the foundation models a profile pattern routes to: those of the patterned profile
        routed = profile_routes(ModelRef(entry, kind, partition, region, account, entry, pattern))
    except LookupError:
        raise CommandError(
            f"cannot tell where the inference profiles {entry!r} route requests "
            f"(geography {entry.partition('.')[0]!r})",
            fix="list the inference profiles exactly, for example us.anthropic.claude-3-haiku-20240307-v1:0",
        ) from None
    into.patterns.append(pattern)
    into.profile_patterns.append(pattern)
    into.routed_patterns.extend(routed)


def _allow(sid: str, action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}


def _statements_for(
    resources: _Resources, actions: Sequence[str], *, account: str, prefix: str
) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    if resources.refs:
        policy = least_privilege_policy(resources.refs, actions=actions, account=account)
        statements.extend(policy["Statement"])  # type: ignore[arg-type]
    action: str | list[str] = actions[0] if len(actions) == 1 else sorted(actions)
    if resources.patterns:
        statements.append(_allow("InvokeModelPatterns", action, sorted(dict.fromkeys(resources.patterns))))
    if resources.routed_patterns:
        routed = sorted(dict.fromkeys(resources.routed_patterns))
        through = {"StringLike": {PROFILE_ARN_KEY: sorted(dict.fromkeys(resources.profile_patterns))}}
        statements.append(
            {**_allow("InvokeModelPatternsThroughProfiles", action, routed), "Condition": through}
        )
    return [{**statement, "Sid": prefix + str(statement["Sid"])} for statement in statements]


def _read_only_statements(*, region: str, partition: str, account: str) -> list[dict[str, Any]]:
    profiles = f"arn:{partition}:bedrock:{region}:{account or '*'}"
    return [
        # These actions take no resource ARN in IAM: "*" is the only valid Resource, and grants no invoke.
        _allow("ListBedrockModels", list(LIST_ACTIONS), "*"),
        _allow(
            "ReadFoundationModels",
            "bedrock:GetFoundationModel",
            f"arn:{partition}:bedrock:{region}::foundation-model/*",
        ),
        _allow(
            "ReadInferenceProfiles",
            "bedrock:GetInferenceProfile",
            [f"{profiles}:application-inference-profile/*", f"{profiles}:inference-profile/*"],
        ),
    ]


def _invoke_statements(  # noqa: PLR0917 - private, one caller
    invoke: list[str],
    stream: list[str],
    denied: list[str],
    wanted: tuple[str, ...],
    region: str,
    account: str,
) -> list[dict[str, Any]]:
    """Allow statements for the entries allowed for both actions, for invoke only and for stream only, then
    the Deny statement a --from-policy document brought."""
    if not invoke and not stream:
        raise CommandError(
            "no models to allow",
            fix="pass model ids (safe-bedrock policy anthropic.claude-3-haiku-20240307-v1:0), "
            "--from-env, --file F or --from-policy F",
        )
    both = [entry for entry in invoke if entry in stream]
    groups = (
        (both, wanted, ""),
        ([e for e in invoke if e not in both], [a for a in wanted if a == INVOKE], "InvokeOnly"),
        ([e for e in stream if e not in both], [a for a in wanted if a == INVOKE_STREAM], "StreamOnly"),
    )
    statements: list[dict[str, Any]] = []
    for entries, actions, prefix in groups:
        if entries and actions:
            resources = _Resources()
            for entry in entries:
                _expand(entry, region=region, partition=partition_of(region), account=account, into=resources)
            statements.extend(_statements_for(resources, actions, account=account, prefix=prefix))
    if denied:
        statements.append(
            {"Sid": "DenyFromSourcePolicy", "Effect": "Deny", "Action": sorted(wanted), "Resource": denied}
        )
    return statements


def build_policy(
    *,
    models: Sequence[str] = (),
    from_env: bool = False,
    file: str | None = None,
    from_policy: str | None = None,
    role: str = "app",
    actions: str = "invoke,stream",
    region: str | None = None,
    account: str | None = None,
) -> Built:
    """The policy `safe-bedrock policy` prints, as data (raises CommandError / SafeBedrockError)."""
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise CommandError(
            f"--account {account!r} is not a 12-digit AWS account id",
            fix="pass the 12 digits, e.g. --account 123456789012",
            argument="--account",
        )
    wanted = parse_actions(actions)
    where = resolve_region(region)
    owner = account or ""
    sources, denied = _read_sources(
        models, from_env=from_env, file=file, from_policy=from_policy, region=where
    )
    invoke = list(dict.fromkeys(entry for source in sources for entry in source.invoke_entries))
    stream = list(dict.fromkeys(entry for source in sources for entry in source.stream_entries))
    entries = tuple(dict.fromkeys([*invoke, *stream]))
    notes: list[str] = []
    statements: list[dict[str, Any]] = []
    if role == "auditor":
        if entries:
            notes.append("--role auditor allows no invoke: the models given are not part of the policy")
    else:
        statements = _invoke_statements(invoke, stream, denied, wanted, where, owner)
        if not statements:
            raise CommandError(
                f"nothing to allow for --actions {actions}: the models are allowed only for the other action",
                fix="pass --actions invoke,stream",
            )
        if not owner and any("inference-profile/" in str(s.get("Resource")) for s in statements):
            notes.append("inference profile ARNs use '*' for the account; pass --account to name yours")
    if role in {"auditor", "developer"}:
        statements.extend(_read_only_statements(region=where, partition=partition_of(where), account=owner))
    return Built(
        policy={"Version": "2012-10-17", "Statement": statements},
        role=role,
        region=where,
        account=account,
        actions=wanted if role != "auditor" else (),
        models=entries,
        notes=tuple(notes),
    )


def _run(args: argparse.Namespace) -> int:
    out = Output.of(args)
    options = ("models", "from_env", "file", "from_policy", "role", "actions", "region", "account")
    built = build_policy(**{name: getattr(args, name) for name in options})
    if out.json_mode:
        out.emit({"ok": True, **asdict(built)})
        return EXIT_OK
    out.line(json.dumps(built.policy, indent=2))
    count = len(built.policy["Statement"])  # type: ignore[arg-type]
    what = f"{len(built.models)} model entr{'y' if len(built.models) == 1 else 'ies'}"
    statements = f"{count} statement{'' if count == 1 else 's'}"
    out.note(f"# role {built.role}: {statements}, {what}, region {built.region}")
    for note in built.notes:
        out.note(f"# note: {note}")
    return EXIT_OK


COMMAND = Command(
    name="policy",
    help="write the least-privilege IAM policy for an allowlist",
    description=(
        "Write the least-privilege IAM policy (JSON, on stdout) that allows exactly the models of an\n"
        "allowlist: bedrock:InvokeModel and/or bedrock:InvokeModelWithResponseStream on their exact ARNs.\n"
        "A cross-Region inference profile gets its own ARN plus the foundation model in every region it\n"
        "routes to (the region-less ARN for global.* profiles), allowed only through the profile. Invoking\n"
        'is never allowed on Resource "*": a wildcard entry must name the provider before its first\n'
        "wildcard ('anthropic.*', 'us.anthropic.*'); entries like '*' or '*0' are refused.\n"
        "Model sources add up: arguments, --from-env, --file, --from-policy."
    ),
    epilog=(
        "examples:\n"
        "  safe-bedrock policy anthropic.claude-3-haiku-20240307-v1:0 --region us-east-1 > policy.json\n"
        "  safe-bedrock policy us.anthropic.claude-3-7-sonnet-20250219-v1:0 --account 123456789012\n"
        "  export SAFE_BEDROCK_ALLOWED_MODELS=amazon.nova-lite-v1:0\n"
        "  safe-bedrock policy --from-env --actions invoke\n"
        "  safe-bedrock policy --from-policy deployed.json --role developer\n"
        "  safe-bedrock policy --role auditor --region eu-west-1\n"
        "  aws iam put-role-policy --role-name app --policy-name bedrock \\\n"
        "      --policy-document file://policy.json\n\n" + EXIT_CODES_HELP
    ),
    configure=_configure,
    run=_run,
)
