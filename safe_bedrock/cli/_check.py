"""`safe-bedrock check MODEL`: why can (or can't) this app call this model? One step at a time.

The steps are listed in the command's description (COMMAND below); each prints a verdict (ok / denied /
unknown / skip) as soon as it is known. The answer: denied (exit 1) when any step is denied; else allowed
(exit 0) when the real call succeeded or every step was ok; else could not tell (exit 3).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from safe_bedrock._allowlist import ENV_VAR
from safe_bedrock.cli import EXIT_DENIED, EXIT_OK, Command
from safe_bedrock.cli._output import Output, describe

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    import boto3

    from safe_bedrock._allowlist import ModelAllowlist
    from safe_bedrock._ids import ModelRef

__all__ = ["COMMAND", "Step"]

EXIT_UNKNOWN: Final = 3  # could not tell: a step could not be checked and no call proved access
OK: Final = "ok"
DENIED: Final = "denied"
UNKNOWN: Final = "unknown"
SKIP: Final = "skip"
_ROLE_SESSION: Final = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")
_IAM_PRINCIPAL: Final = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):(user|role)/.+")
_CREDENTIAL_FIXES: Final = {
    "ExpiredToken": "refresh them: `aws sso login`, or assume the role again",
    "ExpiredTokenException": "refresh them: `aws sso login`, or assume the role again",
    "InvalidClientTokenId": "the access key is unknown to AWS (deleted, mistyped, or for another partition)",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id, or the clock is off",
}


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    verdict: str  # ok / denied / unknown / skip
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"step": self.name, "verdict": self.verdict, "detail": self.detail, "fix": self.fix}


@dataclass
class _State:
    out: Output
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, verdict: str, detail: str, fix: str = "") -> None:
        self.steps.append(Step(name, verdict, detail, fix))
        if not self.out.json_mode:
            self.out.line(f"  {verdict:<8} {name:<13} {detail}")
            if fix:
                self.out.line(f"  {'':<8} {'':<13} fix: {fix}")


def _configure(parser: argparse.ArgumentParser) -> None:
    from safe_bedrock.cli._invoke import add_aws_arguments

    parser.add_argument("model", metavar="MODEL", help="model id, inference profile id or ARN")
    add_aws_arguments(parser)
    parser.add_argument(
        "--allow-file", metavar="F", help=f"allowlist file (TOML or JSON) to check instead of {ENV_VAR}"
    )
    parser.add_argument(
        "--actions",
        default="invoke,stream",
        metavar="invoke,stream",
        help="the IAM actions the app needs (default both)",
    )
    parser.add_argument("--no-call", action="store_true", help="skip the final real call")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every step")


def _client(session: boto3.session.Session, service: str, endpoint_url: str | None) -> Any:
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 2})
    make: Any = session.client  # boto3-stubs types one overload per service name, not a str variable
    return make(service, endpoint_url=endpoint_url, config=config)


def _ask(  # noqa: PLR0917 - private: a step's name, its call and how to read a refusal
    state: _State,
    step: str,
    operation: str,
    call: Callable[[], Any],
    endpoint: str | None,
    may_not: tuple[str, str] = ("", ""),
) -> Any:
    """`call()`'s answer; or None after recording why the step cannot tell (`may_not`: detail and fix when
    the caller may not make the call). STS refusing the caller is a refusal of the credentials themselves."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if step == "principal":
            fix = _CREDENTIAL_FIXES.get(code, "check the credentials configured for this shell")
            state.add(step, DENIED, f"STS refused the credentials: {code}: {message}", fix)
        elif code in {"AccessDenied", "AccessDeniedException"}:
            state.add(step, UNKNOWN, *may_not)
        else:
            state.add(step, UNKNOWN, f"{operation} failed: {code}: {message}")
    except BotoCoreError as exc:
        problem = describe(exc, endpoint=endpoint)
        state.add(step, UNKNOWN, f"{operation} failed: {problem.summary}", problem.fix)
    return None


# --- the steps ----------------------------------------------------------------------------------------------


def _credentials(state: _State, session: boto3.session.Session) -> bool:
    from botocore.exceptions import NoCredentialsError

    from safe_bedrock.cli._invoke import PLACEHOLDER_KEY

    try:
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError  # reported like a broken profile, just below
    except Exception as exc:  # noqa: BLE001 - a broken profile or SSO cache: report it as this step
        problem = describe(exc)
        state.add("credentials", DENIED, problem.summary, problem.fix)
        return False
    key = credentials.access_key or ""
    if key == PLACEHOLDER_KEY:
        state.add("credentials", OK, "none configured: placeholders for the local endpoint (the fake)")
    else:
        masked = f"{key[:4]}...{key[-4:]}" if len(key) > 12 else "***"
        method = getattr(credentials, "method", "") or "unknown source"
        state.add("credentials", OK, f"found ({method}, access key {masked})")
    return True


def _principal(state: _State, session: boto3.session.Session, endpoint: str | None) -> str | None:
    call = _client(session, "sts", endpoint).get_caller_identity
    identity = _ask(state, "principal", "sts get-caller-identity", call, endpoint)
    if identity is None:
        return None
    arn = str(identity.get("Arn", ""))
    state.add("principal", OK, f"{arn} (account {identity.get('Account', '?')})")
    return arn


def _configured_allowlist(allow_file: str | None, *, region: str | None) -> ModelAllowlist | None:
    """--allow-file, else SAFE_BEDROCK_ALLOWED_MODELS (None when neither is given); malformed: usage error."""
    from safe_bedrock._allowlist import ModelAllowlist
    from safe_bedrock.cli._invoke import allowlist_errors, env_allowlist

    if allow_file:
        with allowlist_errors("--allow-file"):
            return ModelAllowlist.from_file(allow_file, region=region)
    return env_allowlist(region=region)


def _allowlist(
    state: _State, allow_file: str | None, ref: ModelRef, actions: list[str]
) -> ModelAllowlist | None:
    """The allowlist the app would use, or None when none is configured; records the step."""
    from safe_bedrock.cli._invoke import nothing_allowed

    allowlist = _configured_allowlist(allow_file, region=ref.region or None)
    if allowlist is None:
        state.add("allowlist", SKIP, f"{ENV_VAR} is not set and no --allow-file: the app's own list decides")
        return None
    refusal = nothing_allowed(allowlist)
    if refusal is not None:
        state.add("allowlist", DENIED, refusal.problem, refusal.fix)
        return allowlist
    decisions = [(action, allowlist.decide(ref, action=action)) for action in actions]
    refused = [(action, decision) for action, decision in decisions if not decision.allowed]
    if not refused:
        entries = ", ".join(repr(entry) for entry in dict.fromkeys(d.matched or "?" for _, d in decisions))
        state.add("allowlist", OK, f"allowed by {entries} ({allowlist.source})")
        return allowlist
    action, decision = refused[0]
    reason = f": {decision.reason}" if decision.reason else ""
    closest = f" (closest: {', '.join(decision.closest)})" if decision.closest else ""
    fix = f"add {decision.entry_to_add!r} to {allowlist.source}" if decision.entry_to_add else ""
    state.add("allowlist", DENIED, f"{allowlist.source} refuses {action}{reason}{closest}", fix)
    return allowlist


def _policy_source(principal: str) -> str | None:
    """The IAM entity SimulatePrincipalPolicy takes for an STS/IAM caller ARN (None when none can be)."""
    match = _ROLE_SESSION.fullmatch(principal)
    if match:
        partition, account, role = match.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return principal if _IAM_PRINCIPAL.fullmatch(principal) else None


def _iam(  # noqa: PLR0917 - private, called once with every piece of the chain so far
    state: _State,
    session: boto3.session.Session,
    endpoint: str | None,
    principal: str,
    ref: ModelRef,
    actions: list[str],
) -> None:
    from safe_bedrock._ids import ModelKind, profile_routes

    source = _policy_source(principal)
    if source is None:
        detail = f"IAM cannot simulate policies for {principal} (only users and roles)"
        state.add("iam policy", UNKNOWN, detail, "the call below tells")
        return
    resources = [ref.arn]
    request: dict[str, Any] = {"PolicySourceArn": source, "ActionNames": actions, "ResourceArns": resources}
    if ref.kind is ModelKind.INFERENCE_PROFILE:
        with contextlib.suppress(LookupError):  # unknown geography: the profile ARN alone is still checked
            resources.extend(profile_routes(ref))
        context = {"ContextKeyName": "bedrock:InferenceProfileArn", "ContextKeyValues": [ref.arn]}
        request["ContextEntries"] = [{**context, "ContextKeyType": "string"}]
    may_not = (
        f"{principal} may not call iam:SimulatePrincipalPolicy, so the policy cannot be read",
        f"allow iam:SimulatePrincipalPolicy on {source} to see this step; the call below tells",
    )
    simulate = functools.partial(_client(session, "iam", endpoint).simulate_principal_policy, **request)
    answer = _ask(state, "iam policy", "simulate-principal-policy", simulate, endpoint, may_not)
    if answer is None:
        return
    # (action, resource, decision, statement id), per resource when IAM gives them, else per action.
    decisions = [
        (result.get("EvalActionName", "?"), item.get("EvalResourceName", "?"), _decision(item), _sid(item))
        for result in answer["EvaluationResults"]
        for item in result.get("ResourceSpecificResults") or [result]
    ]
    explicit = [d for d in decisions if d[2] == "explicitDeny"]
    implicit = [d for d in decisions if d[2] != "allowed"]
    if explicit:
        action, resource, _, sid = explicit[0]
        where = f" (statement {sid})" if sid else ""
        fix = "remove or narrow the Deny statement; adding Allow statements does not help"
        state.add("iam policy", DENIED, f"explicit deny{where}: {action} on {resource}", fix)
    elif implicit:
        action, resource, _, _ = implicit[0]
        more = f" (and {len(implicit) - 1} more)" if len(implicit) > 1 else ""
        fix = f"attach the policy from: safe-bedrock policy {ref.raw} --region {ref.region or 'REGION'}"
        state.add("iam policy", DENIED, f"no policy of {source} allows {action} on {resource}{more}", fix)
    else:
        routed = f" and {len(resources) - 1} routed model ARNs" if len(resources) > 1 else ""
        state.add("iam policy", OK, f"allows {', '.join(actions)} on {ref.arn}{routed}")


def _decision(result: dict[str, Any]) -> str:
    return str(result.get("EvalResourceDecision") or result.get("EvalDecision", "?"))


def _sid(result: dict[str, Any]) -> str:
    ids = (str(s["SourcePolicyId"]) for s in result.get("MatchedStatements") or [] if s.get("SourcePolicyId"))
    return next(ids, "")


def _model_access(
    state: _State, session: boto3.session.Session, endpoint: str | None, ref: ModelRef, region: str
) -> None:
    from safe_bedrock._ids import base_model_id

    model = base_model_id(ref)
    if not model:
        state.add("model access", SKIP, f"not a foundation model or system profile ({ref.kind.value})")
        return
    may_not = (
        "this identity may not call bedrock:GetFoundationModelAvailability",
        "allow it (safe-bedrock policy --role developer) to see this step; the call below tells",
    )
    ask = functools.partial(
        _client(session, "bedrock", endpoint).get_foundation_model_availability, modelId=model
    )
    answer = _ask(state, "model access", "get-foundation-model-availability", ask, endpoint, may_not)
    if answer is None:
        return
    console = f"https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/modelaccess"
    agreement = (answer.get("agreementAvailability") or {}).get("status", "AVAILABLE")
    if answer.get("regionAvailability") == "NOT_AVAILABLE":
        detail = f"{model} is not offered in {region}"
        fix = "use a region that offers it, or a cross-Region inference profile (us., eu., apac., global.)"
    elif answer.get("authorizationStatus") == "NOT_AUTHORIZED":
        detail = f"the account is not authorized to use {model} in {region}"
        fix = f"submit the use-case details for the provider in the Bedrock console: {console}"
    elif answer.get("entitlementAvailability") == "NOT_AVAILABLE":
        detail = f"model access to {model} is not granted in {region}"
        fix = f"request access in the Bedrock console (Model access): {console}"
    elif agreement != "AVAILABLE":
        status = "is still being processed" if agreement == "PENDING" else f"is {agreement}"
        detail = f"the Marketplace agreement for {model} {status}"
        fix = (
            "wait a few minutes if pending; otherwise accept the offer in the Bedrock console and allow "
            "aws-marketplace:Subscribe and aws-marketplace:ViewSubscriptions"
        )
    else:
        state.add("model access", OK, f"{model} is available and access is granted in {region}")
        return
    state.add("model access", DENIED, detail, fix)


def _call(
    state: _State, session: boto3.session.Session, endpoint: str | None, model: str, allowlist: ModelAllowlist
) -> None:
    from botocore.exceptions import BotoCoreError

    from safe_bedrock.cli._invoke import safe_client
    from safe_bedrock.errors import (
        AccessDeniedError,
        BedrockServiceError,
        InvalidRequestError,
        TransientError,
    )

    messages: list[Any] = [{"role": "user", "content": [{"text": "Hi"}]}]
    started = time.monotonic()
    operation = "CountTokens"
    try:
        with safe_client(session=session, allowlist=allowlist, endpoint_url=endpoint) as client:
            try:
                counted = client.count_tokens(modelId=model, input={"converse": {"messages": messages}})
                detail = f"answered ({counted.get('inputTokens', '?')} input tokens)"
            except (InvalidRequestError, AccessDeniedError) as exc:
                # CountTokens is not offered for every model, and has its own IAM action: fall back to the
                # call the app makes, with one output token.
                if (
                    isinstance(exc, AccessDeniedError)
                    and getattr(exc, "action", None) != "bedrock:CountTokens"
                ):
                    raise
                operation = "Converse"
                answer = client.converse(modelId=model, messages=messages, inferenceConfig={"maxTokens": 1})
                usage: dict[str, Any] = dict(answer.get("usage", {}))
                tokens = f"{usage.get('inputTokens', '?')} in / {usage.get('outputTokens', '?')} out"
                detail = f"answered ({tokens} tokens)"
    except (BedrockServiceError, BotoCoreError) as exc:
        # A refusal answers the question; a transient or transport failure does not.
        refused = isinstance(exc, BedrockServiceError) and not isinstance(exc, TransientError)
        problem = describe(exc, endpoint=endpoint)
        state.add("call", DENIED if refused else UNKNOWN, f"{operation}: {problem.summary}", problem.fix)
        return
    state.add("call", OK, f"{operation} {detail} in {time.monotonic() - started:.2f} s")


# --- the command --------------------------------------------------------------------------------------------


def _verdict(steps: list[Step]) -> tuple[str, int]:
    verdicts = [step.verdict for step in steps]
    if DENIED in verdicts:
        return "denied", EXIT_DENIED
    call_ok = any(step.name == "call" and step.verdict == OK for step in steps)
    if call_ok or UNKNOWN not in verdicts:
        return "allowed", EXIT_OK
    return "could not tell", EXIT_UNKNOWN


def _run(args: argparse.Namespace) -> int:
    from safe_bedrock._allowlist import ModelAllowlist
    from safe_bedrock._ids import parse_model_id
    from safe_bedrock.cli._args import check_model
    from safe_bedrock.cli._invoke import aws_session
    from safe_bedrock.cli._policy_cmd import parse_actions

    out = Output.of(args)
    actions = list(parse_actions(args.actions))
    session = aws_session(region=args.region, endpoint_url=args.endpoint_url)
    region = str(session.region_name)
    check_model(args.model, region=region)  # bad ids are usage errors naming MODEL, before any call
    ref = parse_model_id(args.model, region=region)
    # A malformed allowlist (file or variable) is a usage error before any step, not after three.
    _configured_allowlist(args.allow_file, region=region)
    endpoint = args.endpoint_url
    state = _State(out)
    if not out.json_mode:
        out.line(f"Checking {args.model} in {region}{f' via {endpoint}' if endpoint else ''}")
    principal = _principal(state, session, endpoint) if _credentials(state, session) else None
    if principal is not None:
        ref = parse_model_id(args.model, region=region, account=principal.split(":")[4])
    allowlist = _allowlist(state, args.allow_file, ref, actions)
    allowlist_refuses = state.steps[-1].verdict == DENIED
    if principal is None:
        for name in ("iam policy", "model access", "call"):
            state.add(name, SKIP, "needs working credentials")
    else:
        _iam(state, session, endpoint, principal, ref, actions)
        _model_access(state, session, endpoint, ref, region)
        if args.no_call:
            state.add("call", SKIP, "--no-call")
        elif allowlist_refuses:
            state.add("call", SKIP, "the allowlist refuses the model, so the app cannot call it")
        else:
            allow = allowlist or ModelAllowlist([args.model], source="check")
            _call(state, session, endpoint, args.model, allow)
    verdict, code = _verdict(state.steps)
    if out.json_mode:
        document = {"ok": code == EXIT_OK, "model_id": args.model, "model_arn": ref.arn, "region": region}
        steps = [step.as_json() for step in state.steps]
        out.emit({**document, "verdict": verdict, "exit_code": code, "steps": steps})
    else:
        out.line(f"Answer: {verdict} (exit {code})")
    return code


COMMAND = Command(
    name="check",
    help="diagnose access to a model, step by step",
    description=(
        "Walk the chain app -> credentials -> principal -> allowlist -> IAM policy -> model access ->\n"
        "answer, printing each step with a verdict (ok / denied / unknown / skip) and the fix:\n"
        "  credentials   found locally, and from where\n"
        "  principal     sts get-caller-identity\n"
        f"  allowlist     {ENV_VAR} or --allow-file allows the model (skipped only when neither\n"
        "                is set; a blank variable refuses every model)\n"
        "  iam policy    iam simulate-principal-policy for the actions on the model ARN\n"
        "  model access  bedrock get-foundation-model-availability in the region\n"
        "  call          a minimal real call through SafeBedrockClient: CountTokens, or Converse with\n"
        "                maxTokens=1 when the model does not count tokens (--no-call skips it)"
    ),
    epilog=(
        "examples:\n"
        "  safe-bedrock check anthropic.claude-3-haiku-20240307-v1:0 --region us-east-1\n"
        "  safe-bedrock check us.anthropic.claude-3-7-sonnet-20250219-v1:0 --no-call --json\n"
        "  safe-bedrock check amazon.nova-lite-v1:0 --allow-file allowlist.toml --actions invoke\n"
        "  safe-bedrock check anthropic.claude-3-haiku-20240307-v1:0 --endpoint-url http://127.0.0.1:4010\n\n"
        "exit codes: 0 allowed; 1 denied (a step said no: the fix is printed under it);\n"
        "  2 usage or bad input; 3 could not tell (a step could not be checked and no call proved access);\n"
        "  70 unexpected internal error; 130 interrupted (Ctrl-C)"
    ),
    configure=_configure,
    run=_run,
)
