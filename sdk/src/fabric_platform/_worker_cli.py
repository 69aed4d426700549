"""The ``fabric-worker`` command: ``fabric-worker module:attribute [--name N] [--log-level L]``.

It imports ``module`` (the current directory is on the import path), takes the `Worker` or
`AsyncWorker` named ``attribute`` (``worker`` when omitted) and runs it until SIGTERM/SIGINT.
Connection settings come from the environment (``FABRIC_BASE_URL``, ``FABRIC_API_KEY``,
``FABRIC_ORGANIZATION_ID``) unless the module's code sets them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, Optional, Sequence, Union

from ._errors import FabricError
from ._version import __version__
from ._worker import AsyncWorker
from ._worker_sync import Worker, run_until_signalled

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fabric-worker",
        description="Run a Fabric code worker: your functions as workflow steps.",
        epilog="Example: fabric-worker myapp.workers:worker --name resize-1",
    )
    parser.add_argument(
        "target", help="module:attribute of a Worker or AsyncWorker (attribute default: worker)"
    )
    parser.add_argument("--name", help="the worker's name (default host:pid)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging level (default info)",
    )
    parser.add_argument("--version", action="version", version=f"fabric-worker {__version__}")
    return parser


def load_worker(target: str) -> Union[Worker, AsyncWorker]:
    """The worker ``module:attribute`` names; raises `LookupError` saying what is wrong."""
    module_name, _, attribute = target.partition(":")
    if not module_name:
        raise LookupError(f"{target!r}: expected module:attribute")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name}: {exc}") from exc
    for part in (attribute or "worker").split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LookupError(f"{module_name} has no attribute {attribute or 'worker'}") from None
    if not isinstance(found, (Worker, AsyncWorker)):
        raise LookupError(f"{target} is a {type(found).__name__}, not a Worker or AsyncWorker")
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "debug":
        # httpx logs every request at info: every poll and heartbeat would be a line.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        worker = load_worker(args.target)
    except LookupError as exc:
        print(f"fabric-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.name:
        worker.name = args.name
    async_worker = worker.async_worker if isinstance(worker, Worker) else worker
    try:
        run_until_signalled(async_worker)
    except (FabricError, ValueError, RuntimeError) as exc:
        print(f"fabric-worker: {exc}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
