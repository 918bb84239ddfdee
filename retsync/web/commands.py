"""The `retsync web …` commands."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:
    """Adds `web` to the CLI's top-level commands."""
    del sub


def _unused(args: argparse.Namespace) -> int:
    return 0
