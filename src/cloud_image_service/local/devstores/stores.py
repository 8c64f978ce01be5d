"""Both local stores, started one after the other so their ports never collide."""

from __future__ import annotations

from pathlib import Path

from cloud_image_service.local.devstores.base import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from cloud_image_service.local.devstores.dynamodb_local import DynamoDBLocal
from cloud_image_service.local.devstores.seaweed import SeaweedS3


def start_stores(
    s3_dir: Path,
    db_path: Path | None = None,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
) -> tuple[SeaweedS3, DynamoDBLocal]:
    """SeaweedFS, then DynamoDB Local once SeaweedFS listens (in memory unless db_path).

    DynamoDB Local's port is chosen only after every SeaweedFS port is bound, so the
    OS cannot hand it one SeaweedFS is about to take; each start retries once on a
    port taken meanwhile by another process.
    """
    s3 = SeaweedS3(s3_dir, access_key, secret_key)
    s3.start()
    try:
        dynamodb = DynamoDBLocal(db_path=db_path)
        dynamodb.start()
    except BaseException:
        s3.stop()
        raise
    return s3, dynamodb
