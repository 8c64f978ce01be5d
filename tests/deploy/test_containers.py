"""The Dockerfile and docker-compose.yml keep their promises (their linters: deploy/check.sh)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.deploy.cfn import ROOT, load

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_dockerfile_final_stage_runs_serve_as_a_non_root_user() -> None:
    assert len(_instructions("FROM")) >= 2  # build stage, runtime stage
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert "pip install" not in final  # nothing is built in the image that runs
    (user,) = re.findall(r"^USER (\S+)", final, re.M)
    assert user.split(":")[0] not in ("0", "root")
    (cmd,) = _instructions("CMD")
    assert json.loads(cmd)[:4] == ["cloud-image-service", "serve", "--host", "0.0.0.0"]
    (healthcheck,) = _instructions("HEALTHCHECK")
    assert "python" in healthcheck
    assert "/health" in healthcheck


def _compose() -> Any:
    return load(ROOT / "docker-compose.yml")


def test_compose_runs_localstack_init_api_and_worker() -> None:
    services = _compose()["services"]
    assert set(services) == {"localstack", "init", "api", "worker"}
    assert services["init"]["command"] == ["cloud-image-service", "init"]
    assert services["worker"]["command"] == ["cloud-image-service", "worker"]
    for name in ("api", "worker"):
        service = services[name]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        env = service["environment"]
        assert env["CIS_BACKEND"] == "aws"
        assert env["CIS_EVENTS"] == "sqs"  # the worker turns uploads ready from their events
        # Presigned URLs must work from the host, not only inside the compose network.
        assert env["CIS_PUBLIC_S3_URL"] == "http://localhost:4566"
    assert services["init"]["depends_on"]["localstack"]["condition"] == "service_healthy"
    localstack = services["localstack"]
    assert set(localstack["environment"]["SERVICES"].split(",")) == {"s3", "dynamodb", "sqs"}
    assert localstack["environment"]["S3_SKIP_SIGNATURE_VALIDATION"] == "0"
    assert "127.0.0.1:4566:4566" in localstack["ports"]
