"""Spec-driven tests: the public API contracts, and payloads drawn from them for mapping property tests.

Reading the public API contracts in `shared/specs` for tests that check an emulator or a mapping against them.

The folder sits beside the checkout (also in CI): the first `shared/specs` found going up from the directory
pytest runs in; `RETSYNC_SPECS` points elsewhere. Where it is missing the test is skipped with the reason,
except in CI, where a missing contract fails the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from retsync.kit.model import Order, Return, ReturnStatus
from retsync.kit.payload import QUANTITY_LIMIT


def _specs_folder() -> Path:
    if os.environ.get("RETSYNC_SPECS"):
        return Path(os.environ["RETSYNC_SPECS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "shared" / "specs").is_dir():
            return folder / "shared" / "specs"
    return here.parent / "shared" / "specs"


SPECS = _specs_folder()


def spec_file(api: str, name: str) -> Path:
    """`SPECS/api/name`, or skip (fail in CI) saying where it was looked for."""
    path = SPECS / api / name
    if not path.is_file():
        reason = f"the {api} contract {path} is not there; set RETSYNC_SPECS to the folder holding {api}/"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def strict(node: Any) -> Any:
    """The spec with `additionalProperties: false` on every object schema that lists its properties,
    so an emulator answering with a misspelt field fails instead of passing as an extra one."""
    if isinstance(node, dict):
        result = {key: strict(value) for key, value in node.items()}
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            result["additionalProperties"] = False
        return result
    if isinstance(node, list):
        return [strict(value) for value in node]
    return node


PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- a JSON schema (OpenAPI 3.0 flavour) as a hypothesis strategy ----------------------------

MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=1)),
                                                  timezone(timedelta(hours=-5, minutes=-30))]))
FREE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
IDENTIFIER = st.text("0123456789abcdefABCDEF-", min_size=1, max_size=16)


def _string(schema: Mapping[str, Any], name: str) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        return MOMENTS.map(lambda moment: moment.isoformat())
    if fmt == "date":
        return MOMENTS.map(lambda moment: moment.date().isoformat())
    if fmt == "uuid":
        return st.uuids().map(str)
    if schema.get("pattern"):
        return st.from_regex(schema["pattern"], fullmatch=True)
    choices: list[st.SearchStrategy[str]] = [FREE_TEXT, st.decimals(-10**6, 10**6, places=2).map(str)]
    if isinstance(schema.get("example"), str):
        choices.append(st.just(schema["example"]))
    if name == "id" or name.endswith("Id"):  # an id is whatever the channel issues, but never blank
        return IDENTIFIER
    return st.one_of(choices)


def from_schema(schema: Mapping[str, Any], root: Mapping[str, Any], name: str = "", depth: int = 0
                ) -> st.SearchStrategy[Any]:
    """A strategy for the values `schema` allows; `root` resolves `$ref`s. Deep optional parts are cut off."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return from_schema({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, root, name, depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            while "$ref" in part:
                target = root
                for piece in part["$ref"].lstrip("#/").split("/"):
                    target = target[piece]
                part = target
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return from_schema(merged, root, name, depth)
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return st.one_of([from_schema(option, root, name, depth) for option in schema[combinator]])
    strategy = _plain(schema, root, name, depth)
    return st.one_of(st.none(), strategy) if schema.get("nullable") else strategy


def _plain(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind == "string":
        return _string(schema, name)
    if kind == "integer" or (kind == "number" and schema.get("format") in ("integer", "int32", "int64")):
        highest = int(schema.get("maximum", 2**31 - 1))
        if "quantity" in name.lower():  # a line of more than QUANTITY_LIMIT units is quarantined (test_hostile)
            highest = min(highest, QUANTITY_LIMIT)
        return st.integers(int(schema.get("minimum", -(2**31))), highest)
    if kind == "number":
        top = schema.get("maximum")
        if "quantity" in name.lower():
            top = QUANTITY_LIMIT if top is None else min(top, QUANTITY_LIMIT)
        return st.floats(schema.get("minimum"), top, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = from_schema(schema.get("items", {}), root, name, depth + 1)
        most = 0 if depth > 6 else 3
        return st.lists(items, min_size=min(int(schema.get("minItems", 0)), most), max_size=most)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {key: from_schema(value, root, key, depth + 1) for key, value in properties.items() if key in required}
        optional = {} if depth > 4 else {
            key: from_schema(value, root, key, depth + 1) for key, value in properties.items() if key not in required}
        return st.fixed_dictionaries(fixed, optional=optional)
    return st.one_of(st.none(), st.booleans(), st.integers(), FREE_TEXT)


def load_spec(api: str, name: str) -> dict[str, Any]:
    """The contract `SPECS/api/name` (JSON or YAML) as data, or skip (fail in CI) when it is missing."""
    path = spec_file(api, name)
    return json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())


def check_mapped_return(mapped: Return, external_id: str, items: int) -> None:
    """What any mapped return must be, whatever the channel sent: its id, a unified status, its lines, a revision."""
    assert mapped.external_id == external_id.strip() or mapped.external_id == external_id
    assert isinstance(mapped.status, ReturnStatus)
    assert len(mapped.lines) == items
    assert all(line.quantity >= 0 for line in mapped.lines)
    assert mapped.revision


def check_mapped_order(mapped: Order, external_id: str) -> None:
    """What any mapped order must be: its id, and a total in minor units or none."""
    assert mapped.external_id in (external_id, external_id.strip())
    assert mapped.total_amount is None or isinstance(mapped.total_amount, int)
