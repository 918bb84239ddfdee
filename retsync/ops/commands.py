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

    p = sub.add_parser("doctor", help="check config, database, disk, permissions, keyring, clocks and every channel's "
                                      "sign-in; one line each, exit 1 on any failure")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from retsync import logs
    from retsync.ops.doctor import as_json, run_checks

    logs.configure(level="ERROR")  # the checks' own lines are the output; retries and pulls are not news here
    checks = run_checks(args.config)
    if args.format == "json":
        json.dump(as_json(checks), sys.stdout, indent=2)
        print()
    else:
        width = max(len(c.check) for c in checks)
        for c in checks:
            first, *rest = c.detail.splitlines() or [""]
            print(for_terminal(f"{c.status:<4}  {c.check:<{width}}  {first}"))
            for line in rest:
                print(for_terminal(f"{'':<4}  {'':<{width}}  {line}"))
    return EXIT_FAILED if any(c.failed for c in checks) else EXIT_OK
