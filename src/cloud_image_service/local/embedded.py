"""The `embedded` backend: moto's S3 + DynamoDB server, started inside this process.

For development only: everything lives in memory and is gone when the process stops,
and moto enforces no presigned-URL rule (signature, expiry, signed Content-Type).
"""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

from cloud_image_service.local.devstores.base import free_port

log = logging.getLogger(__name__)

# moto accepts any credentials; fixed ones keep boto3 from searching the machine for some.
ACCESS_KEY = "embedded"
SECRET_KEY = "embedded"


class EmbeddedServer:
    """moto's server on a loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        """Where boto3 and the presigned URLs point."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._server.start()
        log.info("embedded S3 + DynamoDB (moto) listening on %s", self.endpoint_url)

    def stop(self) -> None:
        """Stop serving; all data is gone."""
        self._server.stop()
