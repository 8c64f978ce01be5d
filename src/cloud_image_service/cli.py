"""`cloud-image-service`: serve the API, or create the bucket and table."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from cloud_image_service.config import Settings
from cloud_image_service.errors import ServiceError

log = logging.getLogger("cloud_image_service")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(f"invalid configuration: {exc}")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # moto's werkzeug logs every request of the embedded backend: noise next to uvicorn's.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(args: argparse.Namespace) -> int:
    """Run the API under uvicorn."""
    settings = _settings()
    _logging(settings.log_level)
    from cloud_image_service.app import create_app

    app = create_app(settings)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    return 0


def init(_: argparse.Namespace) -> int:
    """Create the bucket (private, CORS) and the table with its index; idempotent."""
    settings = _settings()
    _logging(settings.log_level)
    if settings.backend == "embedded":
        print("backend is embedded: the service creates its resources itself at start-up")
        return 0
    from cloud_image_service.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        warnings = runtime.init_resources()
    except ServiceError as exc:
        print(f"init failed: {exc.message}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"ready: bucket {settings.bucket}, table {settings.table}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    root = argparse.ArgumentParser(prog="cloud-image-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the HTTP API")
    run.add_argument("--host", help="bind address (default CIS_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default CIS_PORT, 8000)")
    run.set_defaults(handler=serve)
    commands.add_parser("init", help="create bucket and table").set_defaults(handler=init)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    sys.exit(args.handler(args))


if __name__ == "__main__":
    main()
