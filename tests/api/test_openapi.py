"""The OpenAPI document is a contract: ids, descriptions, examples, exact error codes."""

from __future__ import annotations

from typing import Any

import pytest

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings

OPERATION_IDS = {
    ("post", "/images/upload"): "create_upload",
    ("get", "/images"): "list_images",
    ("get", "/images/{image_id}"): "get_image",
    ("post", "/images/{image_id}/complete"): "complete_upload",
    ("get", "/images/{image_id}/download"): "download_image",
    ("delete", "/images/{image_id}"): "delete_image",
    ("post", "/images/{image_id}/restore"): "restore_image",
}


def _document(**settings: Any) -> dict[str, Any]:
    # The document is built from the routes alone: no store is started for it.
    app = create_app(Settings(backend="embedded", **settings))
    document: dict[str, Any] = app.openapi()
    return document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _document()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_has_an_explicit_id(document: dict[str, Any]) -> None:
    found = {(m, p): op["operationId"] for m, p, op in _operations(document)}
    for key, operation_id in OPERATION_IDS.items():
        assert found[key] == operation_id
    for key, operation_id in found.items():
        assert "_" in operation_id or operation_id.isalpha(), key
        assert not operation_id.endswith(("_get", "_post", "_delete")), (key, operation_id)


def test_every_route_parameter_and_field_is_described(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(document):
        if not operation.get("description"):
            missing.append(f"{method} {path}")
        for parameter in operation.get("parameters", []):
            if not parameter.get("description"):
                missing.append(f"{method} {path} ?{parameter['name']}")
    for name, schema in document["components"]["schemas"].items():
        if not schema.get("description"):
            missing.append(name)
        for field, spec in schema.get("properties", {}).items():
            if not spec.get("description"):
                missing.append(f"{name}.{field}")
    assert missing == []


def test_every_body_has_an_example(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    referenced = set()
    for _, _, operation in _operations(document):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            ref = body.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
            if ref:
                referenced.add(ref.rsplit("/", 1)[-1])
    assert referenced
    for name in referenced:
        assert schemas[name].get("examples"), f"{name} has no example"


def test_each_route_lists_only_the_errors_it_can_return(document: dict[str, Any]) -> None:
    responses = {op["operationId"]: set(op["responses"]) for _, _, op in _operations(document)}
    assert responses["get_image"] == {"200", "404", "503"}
    assert responses["delete_image"] == {"200", "404", "422", "503"}
    assert "413" in responses["create_upload"]
    assert "409" in responses["complete_upload"]
    for codes in responses.values():
        assert "500" not in codes
    for _, _, operation in _operations(document):
        for code, response in operation["responses"].items():
            assert response["description"], (operation["operationId"], code)
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if code >= "400" and operation["operationId"] != "readiness":
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_security_and_limits_follow_the_settings(document: dict[str, Any]) -> None:
    assert "securitySchemes" not in document["components"]
    for _, _, operation in _operations(document):
        assert "security" not in operation
        assert not {"401", "403", "429"} & set(operation["responses"])
    secured = _document(
        auth_mode="jwt", jwt_secret="s" * 40, rate_limit="10/minute", verify_rate_limit="5/minute"
    )
    assert set(secured["components"]["securitySchemes"]) == {"BearerToken", "ApiKey"}
    upload = secured["paths"]["/images/upload"]["post"]
    assert upload["security"]
    assert {"401", "403", "429"} <= set(upload["responses"])
    assert "429" in secured["paths"]["/images/{image_id}/complete"]["post"]["responses"]
    assert "429" not in secured["paths"]["/images/{image_id}"]["get"]["responses"]
