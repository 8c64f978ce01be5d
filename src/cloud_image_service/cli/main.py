"""`cloud-image-service`: serve the API, run the worker, and the operator's commands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from cloud_image_service.adapters.keys_table import ApiKeyStore
from cloud_image_service.cli import fsck as fsck_cli
from cloud_image_service.cli import keys as keys_cli
from cloud_image_service.cli import variants as variants_cli
from cloud_image_service.config import Settings
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.observability.logs import configure as configure_logs
from cloud_image_service.runtime import Runtime, build_runtime

log = logging.getLogger("cloud_image_service")
# SIGTERM: uvicorn stops accepting, then waits this long for requests in flight.
GRACEFUL_SECONDS = 20


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(describe_invalid_settings(exc))


def describe_invalid_settings(exc: ValidationError) -> str:
    """One line per bad variable, named as it is set: `CIS_PORT: ...`."""
    lines = ["invalid configuration:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        lines.append(f"  CIS_{field.upper()}: {message}")
    return "\n".join(lines)


def _logging(settings: Settings) -> None:
    configure_logs(settings.log_level, settings.log_style)


def serve(args: argparse.Namespace) -> int:
    """Run the API under uvicorn."""
    settings = _settings()
    _logging(settings)
    from cloud_image_service.api.app import create_app

    try:
        app = create_app(settings)
    except ValueError as exc:  # an unsafe setting, refused with the reason
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    shown = f"[{host}]" if ":" in host else host
    log.info("serving on http://%s:%d (API docs: http://%s:%d/docs)", shown, port, shown, port)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # ours (configure_logs): JSON lines with request ids
        access_log=False,  # api/access.py logs each request, with more
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    return 0


def init(_: argparse.Namespace) -> int:
    """Create the bucket (private, CORS) and the table with its index; idempotent."""
    runtime = _aws_runtime("the service creates its resources itself at start-up")
    if runtime is None:
        return 0
    settings = runtime.settings
    try:
        warnings = runtime.init_resources()
    except ServiceError as exc:
        print(f"init failed: {exc.message}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"ready: bucket {settings.bucket}, table {settings.table}")
    return 0


def _aws_runtime(on_embedded: str) -> Runtime | None:
    """The runtime of an operator command; None (after saying why) on `embedded`.

    On `embedded` the data lives inside a running `serve`: with CIS_EMBEDDED_PORT set
    (the same value on both) the command attaches to that server's moto instead.
    """
    settings = _settings()
    _logging(settings)
    if settings.backend == "embedded":
        if settings.embedded_port:
            return build_runtime(settings, attach_embedded=True)
        print(
            f"backend is embedded: {on_embedded} "
            "(or set CIS_EMBEDDED_PORT to the same port here and on `serve`)",
            file=sys.stderr,
        )
        return None
    return build_runtime(settings)


def worker(_: argparse.Namespace) -> int:
    """Confirm uploads from S3 events and sweep periodically, until SIGTERM or Ctrl-C."""
    runtime = _aws_runtime("`serve` runs the worker itself, in its own process")
    if runtime is None:
        return 0
    try:
        loop = runtime.make_worker()
    except ServiceError as exc:  # e.g. the queue does not exist: `init` was not run
        print(f"worker failed: {exc.message}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    if runtime.settings.metrics_port:
        start_http_server(runtime.settings.metrics_port, addr=runtime.settings.host)
        log.info(
            "worker metrics on http://%s:%d/metrics",
            runtime.settings.host,
            runtime.settings.metrics_port,
        )
    log.info("worker started (events %s)", "on" if runtime.sqs else "off: sweeping only")
    try:
        loop.run()
    except KeyboardInterrupt:
        loop.stop()
    return 0


def sweep(_: argparse.Namespace) -> int:
    """One sweep: finish expired pending uploads, delete objects without a record."""
    runtime = _aws_runtime("`serve` runs the sweep itself, in its own process")
    if runtime is None:
        return 0
    try:
        report = runtime.make_sweeper().sweep()
    except ServiceError as exc:
        print(f"sweep failed: {exc.message}", file=sys.stderr)
        return 1
    print(
        f"expired pending rejected: {report.expired_rejected}, "
        f"expired pending verified: {report.expired_verified}, "
        f"stray objects deleted: {report.stray_objects_deleted}"
    )
    return 0


def token(args: argparse.Namespace) -> int:
    """Print a development JWT (HS256 with CIS_JWT_SECRET)."""
    from cloud_image_service.auth.tokens import mint_token

    try:
        print(mint_token(_settings(), args.user, args.admin, args.ttl))
    except ValueError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 1
    return 0


def _key_store() -> ApiKeyStore:
    runtime = _aws_runtime(
        "its key table lives inside `serve`, which prints a development admin key at "
        "start-up with CIS_AUTH_MODE=api-key"
    )
    if runtime is None:
        sys.exit(2)
    return runtime.keys


def parser() -> argparse.ArgumentParser:
    """The command line."""
    root = argparse.ArgumentParser(prog="cloud-image-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the HTTP API")
    run.add_argument("--host", help="bind address (default CIS_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default CIS_PORT, 8000)")
    run.set_defaults(handler=serve)
    commands.add_parser("init", help="create bucket, table, queue").set_defaults(handler=init)
    commands.add_parser("worker", help="confirm uploads from events").set_defaults(handler=worker)
    commands.add_parser("sweep", help="expire abandoned uploads").set_defaults(handler=sweep)
    keys_cli.add_commands(commands, _key_store)
    fsck_cli.add_command(commands, lambda: _aws_runtime("its data lives inside `serve`"))
    variants_cli.add_command(commands, lambda: _aws_runtime("its data lives inside `serve`"))
    mint = commands.add_parser("token", help="print a development JWT (CIS_JWT_SECRET)")
    mint.add_argument("--user", required=True, type=keys_cli.user_id)
    mint.add_argument("--admin", action="store_true", help="may act for and list any user")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    mint.set_defaults(handler=token)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    sys.exit(args.handler(args))


if __name__ == "__main__":
    main()
