"""The CLI commands of operating retsync."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any, db: Any) -> None:
    """Adds the commands to the CLI's top level (`sub`) and to `retsync db` (`db`)."""
    del sub, db
