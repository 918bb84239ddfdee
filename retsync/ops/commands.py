"""The CLI commands of operating retsync: `init`, `doctor`, `privacy export|forget` and `db backup`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from retsync.safe_text import for_terminal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> int:
    print(f"retsync: {for_terminal(message, keep_newlines=True)}", file=sys.stderr)
    return EXIT_FAILED


def cmd_init(args: argparse.Namespace) -> int:
    from retsync.ops.init import InitRefused, home_warning, installed_executable, write_initial_files

    executable = installed_executable()
    if args.systemd and (warning := home_warning(executable)):
        return _fail(warning)
    try:
        written = write_initial_files(Path(args.dir), systemd=args.systemd, unit_dir=Path(args.unit_dir),
                                      executable=executable)
    except InitRefused as exc:
        return _fail(str(exc))
    for item in written:
        print(f"wrote {item.path}: {item.what}")
    config = Path(args.dir) / "config.toml"
    print(f"next: edit {config}, then `retsync --config {config} config check` and `retsync --config {config} "
          f"doctor`")
    return EXIT_OK


def add_commands(sub: Any, db: Any) -> None:
    """Adds the commands to the CLI's top level (`sub`) and to `retsync db` (`db`)."""
    from retsync.ops.init import DEFAULT_CONFIG_DIR, DEFAULT_UNIT_DIR

    p = sub.add_parser("init", help="write a commented config (and with --systemd the unit); never overwrites")
    p.add_argument("--dir", default=str(DEFAULT_CONFIG_DIR), help=f"where config.toml goes (default {DEFAULT_CONFIG_DIR})")
    p.add_argument("--systemd", action="store_true",
                   help="also write retsync.service (to --unit-dir) and a 0700 credentials/ folder beside the config")
    p.add_argument("--unit-dir", default=str(DEFAULT_UNIT_DIR), help=f"where the unit goes (default {DEFAULT_UNIT_DIR})")
    p.set_defaults(func=cmd_init)
