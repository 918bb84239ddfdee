"""Reading the public API contracts in `../shared/specs` for tests that check an emulator against them.

The folder sits beside the checkout (also in CI); `RETSYNC_SPECS` points elsewhere. Where it is missing the
test is skipped with the reason, except in CI, where a missing contract fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SPECS = Path(os.environ.get("RETSYNC_SPECS", REPO.parent / "shared" / "specs"))


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
