"""Small readers for channel JSON that never raise on a missing or odd field.

Marketplaces add fields, drop optional ones and send `null` where a list
belongs; a mapping that reads through these turns all of that into "not
known" instead of a crashed sync. Every connector's mapping uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(value: Any) -> str | None:
    """A non-empty, stripped string, or None for anything that is not a scalar."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    result = str(value).strip()
    return result or None


def obj(value: Any) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def objs(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects of a list; anything else in it, or a non-list, is left out."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
