"""`safe-bedrock check MODEL`: why can (or can't) this app call this model? One step at a time.

The steps are listed in the command's description (COMMAND below); each prints a verdict (ok / denied /
unknown / skip) as soon as it is known. The answer: denied (exit 1) when any step is denied; else allowed
(exit 0) when the real call succeeded or every step was ok; else could not tell (exit 3).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from safe_bedrock import errors
from safe_bedrock._allowlist import ENV_VAR, ModelAllowlist
from safe_bedrock._ids import ModelKind, base_model_id, parse_model_id, profile_routes
from safe_bedrock.cli import EXIT_DENIED, EXIT_OK, Command, _invoke
from safe_bedrock.cli._args import check_model
from safe_bedrock.cli._output import Output, describe
from safe_bedrock.cli._policy_cmd import parse_actions

if TYPE_CHECKING:
    import argparse

    import boto3

    from safe_bedrock._ids import ModelRef


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
    step: str  # its name
    verdict: str  # ok / denied / unknown / skip
    detail: str
    fix: str = ""


@dataclass
class _Check:
    """One run of `check`: the steps so far, and the session and endpoint its AWS calls use."""

    out: Output
    session: boto3.session.Session
    endpoint: str | None
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, verdict: str, detail: str, fix: str = "") -> None:
        self.steps.append(Step(name, verdict, detail, fix))
        if not self.out.json_mode:
            fix_line = f"\n  {'':<8} {'':<13} fix: {fix}" if fix else ""
            self.out.line(f"  {verdict:<8} {name:<13} {detail}{fix_line}")

    def ask(
        self, step: str, service: str, operation: str, may_not: tuple[str, str] = ("", ""), **params: Any
    ) -> Any:
        """`service`'s answer to `operation` (a boto3 method name), or None after recording why the step can't
        tell (`may_not`: detail and fix when the caller may not ask); STS refusing refuses the credentials."""
        config = Config(connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 2})
        make: Any = self.session.client  # boto3-stubs types one overload per service name, not a str variable
        what = f"{service} {operation.replace('_', '-')}"
        try:
            return getattr(make(service, endpoint_url=self.endpoint, config=config), operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if service == "sts":
                fix = _CREDENTIAL_FIXES.get(code, "check the credentials configured for this shell")
                self.add(step, DENIED, f"STS refused the credentials: {code}: {message}", fix)
            elif code in {"AccessDenied", "AccessDeniedException"}:
                self.add(step, UNKNOWN, *may_not)
            else:
                self.add(step, UNKNOWN, f"{what} failed: {code}: {message}")
        except BotoCoreError as exc:
            problem = describe(exc, endpoint=self.endpoint)
            self.add(step, UNKNOWN, f"{what} failed: {problem.summary}", problem.fix)
        return None


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model id, inference profile id or ARN")
    _invoke.add_aws_arguments(parser)
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


# --- the steps ----------------------------------------------------------------------------------------------


def _credentials(check: _Check) -> bool:
    try:
        credentials = check.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError  # reported like a broken profile, just below
    except Exception as exc:  # noqa: BLE001 - a broken profile or SSO cache: report it as this step
        problem = describe(exc)
        check.add("credentials", DENIED, problem.summary, problem.fix)
        return False
    key = credentials.access_key or ""
    if key == _invoke.PLACEHOLDER_KEY:
        check.add("credentials", OK, "none configured: placeholders for the local endpoint (the fake)")
    else:
        masked = f"{key[:4]}...{key[-4:]}" if len(key) > 12 else "***"
        method = getattr(credentials, "method", "") or "unknown source"
        check.add("credentials", OK, f"found ({method}, access key {masked})")
    return True


def _principal(check: _Check) -> str | None:
    identity = check.ask("principal", "sts", "get_caller_identity")
    if identity is None:
        return None
    arn = str(identity.get("Arn", ""))
    check.add("principal", OK, f"{arn} (account {identity.get('Account', '?')})")
    return arn


def _allowlist(check: _Check, allowlist: ModelAllowlist | None, ref: ModelRef, actions: list[str]) -> bool:
    """Record whether the allowlist the app would use (None: none configured) lets it call the model."""
    if allowlist is None:
        check.add("allowlist", SKIP, f"{ENV_VAR} is not set and no --allow-file: the app's own list decides")
        return True
    refusal = _invoke.nothing_allowed(allowlist)
    if refusal is not None:
        check.add("allowlist", DENIED, refusal.problem, refusal.fix)
        return False
    decisions = [(action, allowlist.decide(ref, action=action)) for action in actions]
    refused = [(action, decision) for action, decision in decisions if not decision.allowed]
    if not refused:
        entries = ", ".join(repr(entry) for entry in dict.fromkeys(d.matched or "?" for _, d in decisions))
        check.add("allowlist", OK, f"allowed by {entries} ({allowlist.source})")
        return True
    action, decision = refused[0]
    reason = f": {decision.reason}" if decision.reason else ""
    closest = f" (closest: {', '.join(decision.closest)})" if decision.closest else ""
    fix = f"add {decision.entry_to_add!r} to {allowlist.source}" if decision.entry_to_add else ""
    check.add("allowlist", DENIED, f"{allowlist.source} refuses {action}{reason}{closest}", fix)
    return False


def _policy_source(principal: str) -> str | None:
    """The IAM entity SimulatePrincipalPolicy takes for an STS/IAM caller ARN (None when none can be)."""
    if match := _ROLE_SESSION.fullmatch(principal):
        partition, account, role = match.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return principal if _IAM_PRINCIPAL.fullmatch(principal) else None


def _iam(check: _Check, principal: str, ref: ModelRef, actions: list[str]) -> None:
    source = _policy_source(principal)
    if source is None:
        detail = f"IAM cannot simulate policies for {principal} (only users and roles)"
        check.add("iam policy", UNKNOWN, detail, "the call below tells")
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
    answer = check.ask("iam policy", "iam", "simulate_principal_policy", may_not, **request)
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
        check.add("iam policy", DENIED, f"explicit deny{where}: {action} on {resource}", fix)
    elif implicit:
        action, resource, _, _ = implicit[0]
        more = f" (and {len(implicit) - 1} more)" if len(implicit) > 1 else ""
        fix = f"attach the policy from: safe-bedrock policy {ref.raw} --region {ref.region or 'REGION'}"
        check.add("iam policy", DENIED, f"no policy of {source} allows {action} on {resource}{more}", fix)
    else:
        routed = f" and {len(resources) - 1} routed model ARNs" if len(resources) > 1 else ""
        check.add("iam policy", OK, f"allows {', '.join(actions)} on {ref.arn}{routed}")


def _decision(result: dict[str, Any]) -> str:
    return str(result.get("EvalResourceDecision") or result.get("EvalDecision", "?"))


def _sid(result: dict[str, Any]) -> str:
    ids = (str(s["SourcePolicyId"]) for s in result.get("MatchedStatements") or [] if s.get("SourcePolicyId"))
    return next(ids, "")


def _model_access(check: _Check, ref: ModelRef, region: str) -> None:
    model = base_model_id(ref)
    if not model:
        check.add("model access", SKIP, f"not a foundation model or system profile ({ref.kind.value})")
        return
    may_not = (
        "this identity may not call bedrock:GetFoundationModelAvailability",
        "allow it (safe-bedrock policy --role developer) to see this step; the call below tells",
    )
    answer = check.ask("model access", "bedrock", "get_foundation_model_availability", may_not, modelId=model)
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
        check.add("model access", OK, f"{model} is available and access is granted in {region}")
        return
    check.add("model access", DENIED, detail, fix)


def _call(check: _Check, model: str, allowlist: ModelAllowlist) -> None:
    messages: list[Any] = [{"role": "user", "content": [{"text": "Hi"}]}]
    started = time.monotonic()
    operation = "CountTokens"
    try:
        with _invoke.safe_client(
            session=check.session, allowlist=allowlist, endpoint_url=check.endpoint
        ) as client:
            try:
                counted = client.count_tokens(modelId=model, input={"converse": {"messages": messages}})
                detail = f"answered ({counted.get('inputTokens', '?')} input tokens)"
            except (errors.InvalidRequestError, errors.AccessDeniedError) as exc:
                # CountTokens is not offered for every model, and has its own IAM action: fall back to the
                # call the app makes, with one output token.
                if isinstance(exc, errors.AccessDeniedError) and exc.action != "bedrock:CountTokens":
                    raise
                operation = "Converse"
                answer = client.converse(modelId=model, messages=messages, inferenceConfig={"maxTokens": 1})
                usage: dict[str, Any] = dict(answer.get("usage", {}))
                tokens = f"{usage.get('inputTokens', '?')} in / {usage.get('outputTokens', '?')} out"
                detail = f"answered ({tokens} tokens)"
    except (errors.BedrockServiceError, BotoCoreError) as exc:
        # A refusal answers the question; a transient or transport failure does not.
        refused = isinstance(exc, errors.BedrockServiceError) and not isinstance(exc, errors.TransientError)
        problem = describe(exc, endpoint=check.endpoint)
        check.add("call", DENIED if refused else UNKNOWN, f"{operation}: {problem.summary}", problem.fix)
        return
    check.add("call", OK, f"{operation} {detail} in {time.monotonic() - started:.2f} s")


# --- the command --------------------------------------------------------------------------------------------


def _verdict(steps: list[Step]) -> tuple[str, int]:
    verdicts = [step.verdict for step in steps]
    if DENIED in verdicts:
        return "denied", EXIT_DENIED
    if any(step.step == "call" and step.verdict == OK for step in steps) or UNKNOWN not in verdicts:
        return "allowed", EXIT_OK
    return "could not tell", EXIT_UNKNOWN


def _run(args: argparse.Namespace) -> int:
    out = Output.of(args)
    actions = list(parse_actions(args.actions))
    session = _invoke.aws_session(region=args.region, endpoint_url=args.endpoint_url)
    region = str(session.region_name)
    check_model(args.model, region=region)  # bad ids are usage errors naming MODEL, before any call
    ref = parse_model_id(args.model, region=region)
    # The allowlist the app would use: a malformed one is a usage error before any step, not after three.
    in_region = ref.region or None
    if args.allow_file:
        with _invoke.allowlist_errors("--allow-file"):
            allowlist: ModelAllowlist | None = ModelAllowlist.from_file(args.allow_file, region=in_region)
    else:
        allowlist = _invoke.env_allowlist(region=in_region)
    endpoint = args.endpoint_url
    check = _Check(out, session, endpoint)
    if not out.json_mode:
        out.line(f"Checking {args.model} in {region}{f' via {endpoint}' if endpoint else ''}")
    principal = _principal(check) if _credentials(check) else None
    if principal is not None:
        ref = parse_model_id(args.model, region=region, account=principal.split(":")[4])
    allowlist_allows = _allowlist(check, allowlist, ref, actions)
    if principal is None:
        for name in ("iam policy", "model access", "call"):
            check.add(name, SKIP, "needs working credentials")
    else:
        _iam(check, principal, ref, actions)
        _model_access(check, ref, region)
        if args.no_call:
            check.add("call", SKIP, "--no-call")
        elif not allowlist_allows:
            check.add("call", SKIP, "the allowlist refuses the model, so the app cannot call it")
        else:
            _call(check, args.model, allowlist or ModelAllowlist([args.model], source="check"))
    verdict, code = _verdict(check.steps)
    if out.json_mode:
        document = {"ok": code == EXIT_OK, "model_id": args.model, "model_arn": ref.arn, "region": region}
        steps = [asdict(step) for step in check.steps]
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
