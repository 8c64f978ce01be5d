"""The Grafana dashboard in deploy/ plots only metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "cloud-image-service.json"
METRIC = re.compile(r"\b((?:cis|http)_[a-z_]+)")


def test_every_plotted_metric_exists() -> None:
    document = json.loads(DASHBOARD.read_text())
    plotted = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for panel in document["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }
    assert "cis_verifications_total" in plotted
    with TestClient(create_app(Settings(backend="embedded", worker_in_process=False))) as client:
        client.get("/health")
        exposed = client.get("/metrics").text
    names = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in METRIC.findall(exposed)}
    assert plotted <= names, plotted - names
