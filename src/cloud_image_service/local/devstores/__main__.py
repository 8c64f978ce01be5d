"""`python -m cloud_image_service.local.devstores`: run both stores until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from cloud_image_service.local.devstores.dynamodb_local import DynamoDBLocal
from cloud_image_service.local.devstores.seaweed import SeaweedS3


def _environment(s3: SeaweedS3, dynamodb: DynamoDBLocal) -> dict[str, str]:
    """The variables that run the service against these stores."""
    return {
        "CIS_BACKEND": "aws",
        "CIS_S3_ENDPOINT_URL": s3.endpoint_url,
        "CIS_DYNAMODB_ENDPOINT_URL": dynamodb.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of `python -m cloud_image_service.local.devstores`."""
    parser = argparse.ArgumentParser(
        prog="python -m cloud_image_service.local.devstores",
        description="Run SeaweedFS (S3) and DynamoDB Local for the service, until Ctrl-C.",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(".data"), help="where both keep their data (./.data)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both stores; a store that cannot start is a one-line error, not a traceback."""
    try:
        _serve(_parse_args(argv).dir.resolve())
    except RuntimeError as exc:
        sys.exit(f"devstores: {exc}")


def _serve(data_dir: Path) -> None:
    """Run both stores persisted under data_dir, print the service's environment."""
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop_requested.set())
    # suppress outermost: on Ctrl-C, even mid-start, both stores stop before main returns.
    # DynamoDB Local is made (its port chosen) only once SeaweedFS listens: no collision.
    with (
        contextlib.suppress(KeyboardInterrupt),
        SeaweedS3(data_dir / "seaweedfs") as s3,
        DynamoDBLocal(db_path=data_dir / "dynamodb") as dynamodb,
    ):
        for key, value in _environment(s3, dynamodb).items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        print(f"# data in {data_dir}; Ctrl-C stops both", file=sys.stderr, flush=True)
        stop_requested.wait()


if __name__ == "__main__":
    main()
