"""The API's JSON bodies as a schema (README.md, "The API", and api/template-api.json): the sandbox must answer
by it, and the mapping must read anything it allows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator
from retsync.testing.specs import strict

API = Path(__file__).resolve().parent.parent / "api" / "template-api.json"
SCHEMA: dict[str, Any] = json.loads(API.read_text())
SCHEMAS: dict[str, Any] = SCHEMA["components"]["schemas"]


def problems(body: Any, name: str) -> list[str]:
    """Where `body` departs from the schema `name`, a field it does not list included (`strict`), so a misspelt
    field in the sandbox fails instead of passing as an extra one: [] when it follows it."""
    schema = {**strict(SCHEMAS[name]), "components": {"schemas": {k: strict(v) for k, v in SCHEMAS.items()}}}
    return [f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in OAS30Validator(schema).iter_errors(body)]

