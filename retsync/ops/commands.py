"""The CLI commands of operating retsync: `init`, `doctor`, `privacy export|forget` and `db backup`."""

from __future__ import annotations

import argparse
import os
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
        print(f"{'wrote' if item.path.exists() else 'needs'} {item.path}: {item.what}")
    config = Path(args.dir) / "config.toml"
    print(f"next: edit {config}, then `retsync --config {config} config check` and `retsync --config {config} "
          f"doctor`")
    return EXIT_OK


def add_commands(sub: Any, db: Any) -> None:
    """Adds the commands to the CLI's top level (`sub`) and to `retsync db` (`db`)."""
    from retsync.ops.init import DEFAULT_CONFIG_DIR, DEFAULT_UNIT_DIR

    p = sub.add_parser("init", help="write a commented config (and with --systemd the unit); never overwrites")
    p.add_argument("--dir", default=str(DEFAULT_CONFIG_DIR),
                   help=f"where config.toml goes (default {DEFAULT_CONFIG_DIR})")
    p.add_argument("--systemd", action="store_true",
                   help="also write retsync.service (to --unit-dir) and a 0700 credentials/ folder beside the config")
    p.add_argument("--unit-dir", default=str(DEFAULT_UNIT_DIR),
                   help=f"where the unit goes (default {DEFAULT_UNIT_DIR})")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("doctor", help="check config, database, disk, permissions, keyring, clocks and every channel's "
                                      "sign-in; one line each, exit 1 on any failure")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_doctor)

    privacy = sub.add_parser("privacy", help="a person's data: export it, or erase it now (GDPR)").add_subparsers(
        dest="privacy_command", required=True, metavar="ACTION")
    p = privacy.add_parser("export", help="everything stored about the person with this e-mail, as JSON")
    p.add_argument("--email", required=True, metavar="ADDRESS")
    p.add_argument("--output", metavar="FILE", help="write to a new FILE (0600) instead of standard output")
    p.set_defaults(func=cmd_privacy_export)
    p = privacy.add_parser("forget", help="erase the personal data of the person with this e-mail now")
    p.add_argument("--email", required=True, metavar="ADDRESS")
    p.set_defaults(func=cmd_privacy_forget)

    p = db.add_parser("backup", help="copy the SQLite database to FILE while retsync runs (PostgreSQL: pg_dump)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_db_backup)


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


def _config_and_engine(args: argparse.Namespace) -> tuple[Any, Any]:
    from retsync.app.command import database, read_config

    config = read_config(args, configure_logs=False)
    return config, database(config, current_schema=True)


def cmd_privacy_export(args: argparse.Namespace) -> int:
    import json

    from retsync.ops.privacy import NotAnAddress, export_person

    _config, engine = _config_and_engine(args)
    try:
        found = export_person(engine, args.email)
    except NotAnAddress as exc:
        print(f"retsync privacy export: {for_terminal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    text = json.dumps(found, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            fd = os.open(args.output, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror or exc} (an existing file is never replaced)")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{len(found['returns'])} returns, {len(found['orders'])} orders written to {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_privacy_forget(args: argparse.Namespace) -> int:
    from retsync import logs
    from retsync.ops.privacy import NotAnAddress, forget_person

    config, engine = _config_and_engine(args)
    logs.configure(level=config.settings.daemon.log_level, fmt=config.settings.daemon.log_format)
    try:
        erased = forget_person(engine, args.email, config.settings.daemon.state_dir)
    except NotAnAddress as exc:
        print(f"retsync privacy forget: {for_terminal(exc)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    print(f"erased the personal data of {erased} (the records stay, without it)")
    return EXIT_OK


def cmd_db_backup(args: argparse.Namespace) -> int:
    from retsync.app.command import read_config
    from retsync.ops.backup import BackupRefused, backup_database

    config = read_config(args, configure_logs=False)
    try:
        size = backup_database(config.settings.database_url(), Path(args.file))
    except BackupRefused as exc:
        return _fail(str(exc))
    print(f"backed up to {args.file} ({size / 1024 / 1024:.1f} MiB); restore: stop retsync, copy it over the "
          f"database file, start retsync")
    return EXIT_OK
