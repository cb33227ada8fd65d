"""`safe-bedrock catalog update`: refresh a local copy of the model catalog from the real control plane.

For each region asked it calls ``bedrock:ListFoundationModels`` and ``bedrock:ListInferenceProfiles`` (system
profiles), merges the answers over the packaged snapshot (regions not asked keep the snapshot's facts) and
writes the JSON file that ``SAFE_BEDROCK_CATALOG`` points the library, the fake and the CLI at.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError, NoCredentialsError

from safe_bedrock._catalog import ENV_VAR, from_control_plane, load, save
from safe_bedrock.cli import EXIT_CODES_HELP, EXIT_OK, Command, CommandError
from safe_bedrock.cli._args import check_region
from safe_bedrock.cli._invoke import aws_session
from safe_bedrock.cli._output import Output, run_command

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from safe_bedrock._catalog import Catalog

DEFAULT_OUTPUT: Final = "safe-bedrock-catalog.json"
_ACTIONS: Final = "bedrock:ListFoundationModels and bedrock:ListInferenceProfiles"
_REFUSED_CREDENTIALS: Final = ("UnrecognizedClientException", "ExpiredTokenException")


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("update",), help="update: refresh the local copy")
    parser.add_argument(
        "--region",
        action="append",
        metavar="R",
        help="a region to ask (repeatable; default: the region of your AWS configuration)",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        help=f"where to write the catalog (default: ${ENV_VAR} when set, else ./{DEFAULT_OUTPUT})",
    )
    parser.add_argument("--endpoint-url", help="the Bedrock control-plane endpoint (default: AWS's)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary of what was written")


def update(regions: Sequence[str], output: str, client_for: Callable[[str], Any]) -> Catalog:
    """Ask each region's control plane (`client_for(region)`: a boto3 ``bedrock`` client), write `output`."""
    replies = {}
    for region in regions:
        client = client_for(region)
        try:
            models = client.list_foundation_models()["modelSummaries"]
            pages = client.get_paginator("list_inference_profiles").paginate(typeEquals="SYSTEM_DEFINED")
            profiles = [summary for page in pages for summary in page["inferenceProfileSummaries"]]
        except NoCredentialsError:
            raise CommandError(
                "no AWS credentials found to ask the Bedrock control plane",
                fix="configure credentials (`aws configure`, `aws sso login`, AWS_PROFILE) and run it again",
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if "AccessDenied" not in code and code not in _REFUSED_CREDENTIALS:
                raise
            raise CommandError(
                f"{code} in {region}: the Bedrock control plane refused to list models",
                fix=f'allow {_ACTIONS} to your principal (Resource "*"), or use fresh credentials',
                kind="denied",
            ) from None
        replies[region] = (models, profiles)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    catalog = from_control_plane(replies, date=today, base=load())
    save(catalog, output)
    return catalog


def _run(args: argparse.Namespace) -> int:
    def body(out: Output) -> int:
        regions = [check_region(r) for r in args.region or ()]
        session = aws_session(region=regions[0] if regions else None, endpoint_url=args.endpoint_url)
        regions = regions or [str(session.region_name)]
        output = args.output or os.environ.get(ENV_VAR) or DEFAULT_OUTPUT
        make: Any = session.client  # boto3-stubs types one overload per service name
        catalog = update(
            regions, output, lambda r: make("bedrock", region_name=r, endpoint_url=args.endpoint_url)
        )
        summary = {"path": output, "date": catalog.date, "regions": regions, "models": len(catalog.models)}
        if out.json_mode:
            out.emit({"ok": True, **summary, "profiles": len(catalog.profiles)})
        else:
            out.line(
                f"wrote {output}: {len(catalog.models)} models, {len(catalog.profiles)} inference profiles"
            )
            out.line(f"  refreshed {', '.join(regions)} on {catalog.date}; use it: export {ENV_VAR}={output}")
        return EXIT_OK

    return run_command(args, body, endpoint=args.endpoint_url)


COMMAND = Command(
    name="catalog",
    help="refresh the model catalog from the Bedrock control plane",
    description=(
        "update: ask the Bedrock control plane of each --region which models and system inference\n"
        "profiles it offers, merge that over the snapshot shipped with safe-bedrock, and write the\n"
        f"result. Point {ENV_VAR} at the file to use it. Needs {_ACTIONS}."
    ),
    epilog=(
        "examples:\n"
        "  safe-bedrock catalog update --region us-east-1 --region eu-west-1\n"
        f"  safe-bedrock catalog update --output ~/.config/safe-bedrock/catalog.json\n\n{EXIT_CODES_HELP}"
    ),
    configure=_configure,
    run=_run,
)
