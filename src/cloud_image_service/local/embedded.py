"""The `embedded` backend: moto's S3 + DynamoDB server, started inside this process.

For development only: everything lives in memory and is gone when the process stops,
and moto enforces no presigned-URL rule (signature, expiry, signed Content-Type).

moto's own `ThreadedMotoServer` runs werkzeug's development server, which answers every
request with `Connection: close`: botocore then opens a new connection for each call, a
TCP handshake and a thread per call, which cost more CPU than the call itself. waitress
(Pylons' production WSGI server) serves the same moto application with HTTP/1.1
keep-alive, so the service's pooled connections are reused as they are on AWS.
"""

from __future__ import annotations

import logging
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress.server import create_server

from cloud_image_service.local.devstores.base import free_port

log = logging.getLogger(__name__)

# moto accepts any credentials; fixed ones keep boto3 from searching the machine for some.
ACCESS_KEY = "embedded"
SECRET_KEY = "embedded"
# The service keeps up to 64 connections per client (adapters/clients.py): a thread each
# would idle; waitress multiplexes connections on an event loop and runs requests on these.
_THREADS = 16


class EmbeddedServer:
    """moto's server on a loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        app = DomainDispatcherApplication(create_backend_app)
        self._server = create_server(
            app,
            host=host,
            port=self.port,
            threads=_THREADS,
            connection_limit=1000,
            channel_timeout=300,  # idle keep-alive connections
            ident="moto",
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def endpoint_url(self) -> str:
        """Where boto3 and the presigned URLs point."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._serve, name="cis-moto", daemon=True)
        self._thread.start()
        log.info("embedded S3 + DynamoDB (moto) listening on %s", self.endpoint_url)

    def _serve(self) -> None:
        try:
            self._server.run()
        except OSError:  # a socket closed under the loop by stop()
            if not self._stopping.is_set():
                raise

    def stop(self) -> None:
        """Stop serving; all data is gone."""
        self._stopping.set()
        self._server.close()  # the listening socket and the loop's trigger
        # The loop runs while any connection is open: kept-alive ones are closed here.
        for channel in list(self._server._map.values()):
            channel.close()
        self._server.task_dispatcher.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
