"""The CLI commands of returns without an API (`returns add/edit/set-status`, `import returns`, `serve`).

Exit codes as everywhere in retsync: 0 done, 1 refused or failed (the message says which record and what to do),
2 the config or the command line is wrong.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from retsync.app.command import EXIT_FAILED, EXIT_OK, database
from retsync.app.command import read_config as _load
from retsync.app.command import say as _say
from retsync.config import Config, ConfigError
from retsync.intake.records import IntakeError, Written, entered_by_people
from retsync.kit.model import ReturnStatus, utcnow


def _engine(config: Config) -> Any:
    return database(config, current_schema=True)


def _manual_channel(config: Config, name: str) -> Any:
    settings = config.channels.get(name)
    if settings is None:
        raise ConfigError(f"{config.path}: no channel {name!r}; add [channels.{name}] with connector = \"manual\" "
                          f"(configured: {', '.join(config.channels) or 'none'})")
    if not entered_by_people(settings.connector):
        raise ConfigError(f"{config.path}: channel {name} uses the {settings.connector} connector; returns are "
                          f"added by hand or imported only into a channel with connector = \"manual\"")
    return settings


def _moment(flag: str, value: str | None) -> datetime | None:
    """A date (`2026-12-01`, taken as midnight UTC) or an ISO time; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise IntakeError(f"{flag} {value!r} is not a date or time: write 2026-12-01 or 2026-12-01T14:30+01:00") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _entry(args: argparse.Namespace) -> Any:
    from retsync.intake.manual import Entry, parse_line

    return Entry(lines=[parse_line(text) for text in args.line or ()], order=getattr(args, "order", None),
                 order_channel=getattr(args, "order_channel", None), external_id=getattr(args, "id", None),
                 reason=args.reason, email=args.email, name=args.name, phone=args.phone, postcode=args.postcode,
                 tracking=args.tracking, carrier=args.carrier, created_at=_moment("--created", args.created))


def _refused(exc: Exception) -> int:
    _say(f"retsync: {exc}", file=sys.stderr)
    return EXIT_FAILED


def _links(written: Written) -> None:
    for external_id, order in written.linked.items():
        _say(f"  {external_id}: linked to order {order}")
    for external_id, why in written.unlinked.items():
        _say(f"  {external_id}: not linked: {why}")


def cmd_returns_add(args: argparse.Namespace) -> int:
    from retsync.intake.manual import add

    config = _load(args)
    settings = _manual_channel(config, args.channel)
    try:
        external_id, written = add(_engine(config), args.channel, settings, _entry(args), utcnow(), note=args.note)
    except IntakeError as exc:
        return _refused(exc)
    _say(f"recorded return {args.channel}/{external_id}")
    _links(written)
    return EXIT_OK


def cmd_returns_edit(args: argparse.Namespace) -> int:
    from retsync.intake.manual import edit

    config = _load(args)
    try:
        target, written = edit(_engine(config), args.ret, dict(config.channels), utcnow(), entry=_entry(args),
                               note=args.note)
    except IntakeError as exc:
        return _refused(exc)
    changed = "changed" if written.updated else "unchanged (nothing new given)"
    _say(f"return {target.channel}/{target.external_id} {changed}" + (", note added" if args.note else ""))
    _links(written)
    return EXIT_OK


def cmd_returns_set_status(args: argparse.Namespace) -> int:
    from retsync.intake.manual import set_status

    config = _load(args)
    try:
        target, written = set_status(_engine(config), args.ret, dict(config.channels), ReturnStatus(args.status),
                                     utcnow(), at=_moment("--at", args.at), note=args.note)
    except IntakeError as exc:
        return _refused(exc)
    if written.updated:
        _say(f"return {target.channel}/{target.external_id} is {args.status} now")
    else:
        _say(f"return {target.channel}/{target.external_id} was {args.status} already")
    return EXIT_OK


def cmd_import_returns(args: argparse.Namespace) -> int:
    from retsync.intake.imports import ImportProblem, import_file, report_text

    config = _load(args)
    settings = _manual_channel(config, args.channel)
    try:
        result = import_file(_engine(config), args.channel, settings, Path(args.file), fmt=args.format,
                             mapping=args.mapping, dry_run=args.dry_run, now=utcnow(),
                             base=config.path.parent if config.path else None)
    except (ImportProblem, IntakeError) as exc:
        return _refused(exc)
    for line in report_text(result, dry_run=args.dry_run).splitlines():
        _say(line, file=sys.stderr if line.startswith(f"{result.where} ") else None)
    return EXIT_FAILED if result.bad_rows else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from retsync.intake.webhook import serve

    config = _load(args)
    return serve(config, host=args.host, port=args.port)


def add_commands(sub: Any, returns: Any) -> None:
    """Adds the commands to the CLI's top level (`sub`) and to `retsync returns` (`returns`)."""

    def who(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reason", help="the customer's reason, in their words (sorted into retsync's reasons)")
        p.add_argument("--email", help="the customer's e-mail (default: the order's)")
        p.add_argument("--name", help="the customer's name (default: the order's)")
        p.add_argument("--phone", help="the customer's phone (default: the order's)")
        p.add_argument("--postcode", help="the customer's postcode (default: the order's)")
        p.add_argument("--tracking", metavar="NUMBER", help="the return parcel's tracking number")
        p.add_argument("--carrier", help="the parcel's carrier (inpost is followed by the daemon; default: the "
                                         "channel's tracking_carrier)")
        p.add_argument("--created", metavar="WHEN", help="when the customer registered the return (default: now)")
        p.add_argument("--note", help="a note for the return's history (who took the call, what the form said)")

    p = returns.add_parser("add", help="record a return by hand in a manual channel (a paper form, an e-mail)")
    p.add_argument("channel", metavar="CHANNEL", help="a channel with connector = \"manual\"")
    p.add_argument("--order", help="the order number, stored on any channel (leave out: a return on its own)")
    p.add_argument("--order-channel", help="the channel of --order, where the number is stored on several")
    p.add_argument("--line", action="append", metavar="SKU_OR_EAN:QTY", required=True,
                   help="an item sent back and how many (repeat for several items)")
    p.add_argument("--id", help="the return's id (e.g. the form's number; default: one made up, M-<date>-<code>)")
    who(p)
    p.set_defaults(func=cmd_returns_add)

    p = returns.add_parser("edit", help="change a manual return: reason, customer, parcel, an item's quantity")
    p.add_argument("ret", metavar="RETURN", help="internal id or channel/external_id")
    p.add_argument("--line", action="append", metavar="SKU_OR_EAN:QTY", help="the new quantity of an item")
    who(p)
    p.set_defaults(func=cmd_returns_edit)

    p = returns.add_parser("set-status", help="a step of a manual return a person reports (the parcel came)")
    p.add_argument("ret", metavar="RETURN", help="internal id or channel/external_id")
    p.add_argument("status", choices=[s.value for s in ReturnStatus])
    p.add_argument("--at", metavar="WHEN", help="when it happened (default: now); `received` keeps it as received_at")
    p.add_argument("--note", help="a note for the return's history")
    p.set_defaults(func=cmd_returns_set_status)

    imports = sub.add_parser("import", help="import returns from a file").add_subparsers(
        dest="import_command", required=True, metavar="WHAT")
    p = imports.add_parser("returns", help="import a return service's export (CSV or XLSX) into a manual channel")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--channel", required=True, help="a channel with connector = \"manual\"")
    p.add_argument("--format", choices=("csv", "xlsx"), help="default: the file's extension")
    p.add_argument("--mapping", metavar="NAME_OR_FILE.toml",
                   help="a shipped mapping by name or a TOML file (default: the channel's `mapping`, else generic)")
    p.add_argument("--dry-run", action="store_true", help="show what would change and write nothing")
    p.set_defaults(func=cmd_import_returns)

    p = sub.add_parser("serve", help="listen for returns posted to the webhook (POST /hooks/<channel>) only")
    p.add_argument("--host", help="address to listen on (default: [returns_webhook] host, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: [returns_webhook] port, else 8790)")
    p.set_defaults(func=cmd_serve)
