"""The ``fabric`` entry point: global options, error reporting and exit codes."""

from __future__ import annotations

import sys
import traceback
from typing import Any, List, Optional

import click

from .. import (
    FabricAPIError,
    FabricAuthError,
    FabricConnectionError,
    FabricError,
    FabricForbiddenError,
    FabricNotFoundError,
    FabricValidationError,
)
from .._version import __version__
from . import (
    auth_cmds,
    events_cmds,
    jobs_cmds,
    keys_cmds,
    org_cmds,
    runs_cmds,
    workers_cmds,
    workflows_cmds,
)
from .app import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_SERVER, EXIT_USAGE, App
from .config import resolve
from .examples import add_examples

EPILOG = """\b
Exit codes: 0 success, 1 a failed run/job (--wait/--follow), 2 usage error,
3 authentication/permission, 4 not found, 5 server or connection error.

\b
Examples:
  fabric login --api-key fk_...
  fabric jobs create --modality text --input '{"prompt": "Hi"}' --wait
  fabric runs start my-pipeline --context topic=cats --follow
"""


@click.group(epilog=EPILOG)
@click.version_option(__version__, prog_name="fabric")
@click.option("--profile", envvar="FABRIC_PROFILE", help="Credentials profile to use.")
@click.option("--base-url", help="Server URL (env FABRIC_BASE_URL).")
@click.option("--api-key", help="API key (env FABRIC_API_KEY).")
@click.option("--org", "organization_id", help="Organization id (env FABRIC_ORGANIZATION_ID).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    help="Output format for every command.",
)
@click.option("--debug", is_flag=True, help="Show full error details.")
@click.pass_context
def cli(
    ctx: click.Context,
    profile: Optional[str],
    base_url: Optional[str],
    api_key: Optional[str],
    organization_id: Optional[str],
    output: str,
    debug: bool,
) -> None:
    """Fabric from the command line: jobs, workflows, runs and your account."""
    app = App(resolve(profile, base_url, api_key, organization_id), output, debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


for _module in (
    auth_cmds,
    jobs_cmds,
    workflows_cmds,
    runs_cmds,
    events_cmds,
    keys_cmds,
    org_cmds,
    workers_cmds,
):
    _module.register(cli)
add_examples(cli)


def exit_code(error: FabricError) -> int:
    if isinstance(error, (FabricAuthError, FabricForbiddenError)):
        return EXIT_AUTH
    if isinstance(error, FabricNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, FabricValidationError):
        return EXIT_USAGE
    return EXIT_SERVER


def describe(error: FabricError) -> str:
    """One readable line: the message, the server's code and the request id."""
    if isinstance(error, FabricAPIError):
        parts = [f"error: {error.message}"]
        if error.code:
            parts.append(f"(code {error.code}")
            parts[-1] += f", request {error.request_id})" if error.request_id else ")"
        elif error.request_id:
            parts.append(f"(request {error.request_id})")
        return " ".join(parts)
    if isinstance(error, FabricConnectionError):
        return f"error: cannot reach the server: {error}"
    return f"error: {error}"


def run(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result: Any = cli.main(args=argv, prog_name="fabric", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FabricError as exc:
        click.echo(describe(exc), err=True)
        if debug:
            details = getattr(exc, "details", None)
            if details:
                click.echo(f"details: {details}", err=True)
            traceback.print_exc()
        sys.exit(exit_code(exc))
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    run()
