"""The CLI commands of returns without an API (`returns add/edit/set-status`, `import returns`)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any, returns: Any) -> None:
    """Adds the commands to the CLI's top level (`sub`) and to `retsync returns` (`returns`)."""
    del sub, returns
