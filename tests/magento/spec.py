"""Magento's Admin REST schema 2.4.9 (shared/specs/magento2/admin-schema-2.4.9.yaml, Swagger 2.0), read once, and
a check of a body against what it declares for a path, method and status (objects strict: no undeclared field)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from retsync.testing.specs import spec_file, strict

URI = "urn:magento:admin-2.4.9"


@functools.cache
def document() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with spec_file("magento2", "admin-schema-2.4.9.yaml").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)
    loaded["info"].pop("description", None)  # a $ref to a Markdown file of the docs repository (NOTES.md)
    return loaded


@functools.cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(URI, Resource.from_contents(strict(copy.deepcopy(document())),
                                                                default_specification=DRAFT4))


def problems(body: Any, schema: dict[str, Any]) -> list[str]:
    """Where `body` departs from `schema` (refs into the document), [] when it follows it."""
    rooted = _rooted(strict(copy.deepcopy(schema)))
    validator = Draft4Validator(rooted, registry=_registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(body)]


def _rooted(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rooted(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rooted(v) for v in node]
    return node


def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    declared = document()["paths"][path][method.lower()]["responses"]
    answer = declared.get(str(status)) or declared["default"]
    return answer["schema"]


def body_schema(path: str, method: str) -> dict[str, Any]:
    parameters = document()["paths"][path][method.lower()]["parameters"]
    return next(p["schema"] for p in parameters if p.get("in") == "body")


def definition(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}
