"""Reads deploy/template.yaml with CloudFormation's short tags, as plain dicts and lists."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"

# PyYAML comes with the service's dependencies (uvicorn[standard], moto) but without type
# stubs; imported this way it is Any, so mypy --strict needs no ignore.
yaml: Any = importlib.import_module("yaml")


def _tag(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
    """`!Ref X` -> {"Ref": X}, `!GetAtt A.B` -> {"Fn::GetAtt": [A, B]}, `!Sub s` -> ..."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


def load(path: Path) -> Any:
    """A YAML document with CloudFormation's tags turned into their long form."""
    loader: Any = type("CfnLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", _tag)
    with path.open() as stream:
        return yaml.load(stream, Loader=loader)  # a SafeLoader subclass: no arbitrary objects


@cache
def template() -> Any:
    """deploy/template.yaml, parsed once."""
    return load(TEMPLATE)


def resources(kind: str) -> dict[str, Any]:
    """The template's resources of one type, by logical id."""
    found = template()["Resources"].items()
    return {name: resource for name, resource in found if resource["Type"] == kind}


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(name: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}
