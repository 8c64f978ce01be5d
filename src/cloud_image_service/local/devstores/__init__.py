"""Local S3 (SeaweedFS) and DynamoDB (DynamoDB Local) servers for tests, benchmarks and development.

`python -m cloud_image_service.local.devstores [--dir DIR]` runs both, persisted under DIR,
and prints the environment that points the service at them.
"""

from cloud_image_service.local.devstores.base import REGION, free_port
from cloud_image_service.local.devstores.dynamodb_local import DynamoDBLocal
from cloud_image_service.local.devstores.seaweed import SeaweedS3
from cloud_image_service.local.devstores.stores import start_stores

__all__ = ["REGION", "DynamoDBLocal", "SeaweedS3", "free_port", "start_stores"]
