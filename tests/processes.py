"""The service as a user starts it: `cloud-image-service serve` in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cloud_image_service.local.devstores import free_port


@dataclass
class ServeProcess:
    """A running `serve`, its URL and its log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self, timeout: float = 30) -> int:
        self.process.terminate()
        return self.process.wait(timeout)


def start_serve(folder: Path, command: str = "serve", **env: str) -> ServeProcess:
    """Start `cloud-image-service serve` (embedded unless env says) and wait for /health."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CIS_")}
    environment |= {"CIS_PORT": str(port), "CIS_LOG_LEVEL": "info"} | env
    log = folder / f"{command}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloud_image_service.cli", command],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return ServeProcess(process, url, log)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(log.read_text())
        time.sleep(0.2)
