"""`retsync`: the command line a merchant's admin uses.

Exit codes are part of the interface: 0 all good, 1 something failed (a
channel, a decision, a refused command; the message says which), 2 the
config or the command line is wrong.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import structlog

from retsync import __version__, logs, registry
from retsync.app.command import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from retsync.app.command import database as _engine
from retsync.app.command import read_config as _load
from retsync.app.command import say as _say
from retsync.app.tables import RETURN_LIST_COLUMNS, cell, plural, print_table
from retsync.config import Config, ConfigError, config_path, load_config, require_secrets, unreadable
from retsync.intake.commands import add_commands as add_intake_commands
from retsync.kit.model import DecisionKind, ReturnStatus
from retsync.kit.secrets import SecretError, store_in_keyring
from retsync.ops.commands import add_commands as add_ops_commands
from retsync.reconcile.flags import FlagCode
from retsync.safe_text import for_spreadsheet, for_terminal
from retsync.web.commands import add_commands as add_web_commands

log = structlog.get_logger(__name__)


class CommandError(Exception):
    """A command that cannot do what was asked; printed as is, exit code 1."""


class UsageError(Exception):
    """The command line itself cannot be honoured (a date that is none, a channel nobody knows): exit code 2,
    as argparse and `retsync report` answer such mistakes."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# --- commands -----------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from retsync.store.db import upgrade

    config = _load(args)
    before, after = upgrade(_engine(config))
    print(f"database schema: {before or 'empty'} -> {after}" if before != after else f"database schema is current ({after})")
    return EXIT_OK


def _runner(config: Config) -> Any:
    from retsync.app.daemon import Runner

    return Runner(config)


def _single_instance(config: Config, command: str) -> Any:
    """On SQLite, the lock file that keeps one daemon (or one `sync`) per database file; None on PostgreSQL."""
    from retsync.store.filelock import SingleInstance, sqlite_lock_path

    path = sqlite_lock_path(config.settings.database_url())
    if path is None:
        return None
    lock = SingleInstance(path, command)
    if command == "run":
        lock.acquire(wait_for_one_shot=True)  # a `retsync sync` in progress finishes first
    else:
        lock.acquire()
    return lock


def _configured(config: Config, names: list[str] | None) -> None:
    """`--channel` of sync and push names channels of the config: they are the ones retsync can talk to."""
    unknown = [name for name in names or [] if name not in config.channels]
    if unknown:
        raise ConfigError(f"{config.path}: no channel {', '.join(unknown)} (configured: {', '.join(config.channels)})")


def cmd_sync(args: argparse.Namespace) -> int:
    config = _load(args)
    _configured(config, args.channel)
    from retsync.sync.progress import terminal_counters

    lock = _single_instance(config, "sync")
    runner = _runner(config)
    counters = terminal_counters(sys.stderr)
    if counters is not None:
        runner.progress.listeners.append(counters)
    try:
        runner.open(args.channel or None)
        outcomes, summary = runner.sync_once(args.channel or None)
    finally:
        if counters is not None:
            counters.close()
        runner.close()
        if lock is not None:
            lock.release()
    for outcome in outcomes:
        if outcome.skipped:
            print(f"{outcome.channel}: skipped: {outcome.skipped}; `retsync channels` shows its last pull",
                  file=sys.stderr)
        elif outcome.ok:
            print(f"{outcome.channel}: ok ({outcome.returns_new} new, {outcome.returns_updated} updated returns)")
        else:
            _say(f"{outcome.channel}: FAILED: {outcome.error}", file=sys.stderr)
    for error in summary.errors:
        _say(f"push: {error}", file=sys.stderr)
    return EXIT_OK if all(o.ok and not o.skipped for o in outcomes) else EXIT_FAILED


def cmd_push(args: argparse.Namespace) -> int:
    config = _load(args)
    _configured(config, args.channel)
    runner = _runner(config)
    try:
        runner.open(args.channel or None)
        summary = runner.push(args.channel or None)
    finally:
        runner.close()
    print(f"pushed {summary.pushed}, waiting for the channel {summary.pending}, retrying {summary.retrying}, "
          f"failed {summary.failed}, unsupported {summary.unsupported}")
    for error in summary.errors:
        _say(error, file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from retsync.app.daemon import STOP_LIMIT_SECONDS, leave_now, run_forever, threads_keeping_alive

    config = _load(args)
    require_secrets(config, list(config.enabled_channels), notify=config.settings.notify.enabled, carriers=True)
    lock = _single_instance(config, "run")
    runner = _runner(config)
    runner.open()
    code = run_forever(runner, stop_limit=STOP_LIMIT_SECONDS)
    runner.close()
    if lock is not None:
        lock.release()
    if threads_keeping_alive():  # a request still hanging after the grace period: leave now, not at SIGKILL
        leave_now(code)
    return code


def cmd_decide(args: argparse.Namespace) -> int:
    from retsync.kit.model import DecisionState
    from retsync.outbox.decisions import record_decision

    config = _load(args)
    chosen = {line: args.quantity for line in args.line} if args.line else None
    recorded = record_decision(_engine(config), args.ret, DecisionKind(args.decision), note=args.note,
                               lines=chosen, quantity=None if chosen else args.quantity, connector_for=registry.get,
                               refuse_flagged=not args.force, refuse_contradicting=not args.force,
                               source=_decided_by())
    ids = ", ".join(str(i) for i in recorded.decision_ids)
    if recorded.state is DecisionState.UNSUPPORTED:
        _say(f"recorded as unsupported (decision {ids}): {recorded.detail}; nothing will be pushed", file=sys.stderr)
        return EXIT_FAILED
    print(f"recorded decision {ids}: {args.decision}; it is pushed on the next push run (`retsync push`)")
    return EXIT_OK


def _decided_by() -> str:
    """Who decided, for the return's history: the OS user running the command, or just `cli`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _since(value: str | None) -> datetime | None:
    """Read as `retsync report` reads it: a date or an ISO time, in UTC, inside the calendar."""
    from retsync.report import ReportUsageError, parse_moment

    try:
        return parse_moment("--since", value)
    except ReportUsageError as exc:
        raise UsageError(str(exc)) from None


def cmd_returns_list(args: argparse.Namespace) -> int:
    from retsync.app.queries import V_RETURNS_COLUMNS, count_returns, list_returns

    config = _load(args)
    since = _since(args.since)
    engine = _engine(config)
    if args.channel:
        _known(engine, config, [args.channel])
    rows = list_returns(engine, channel=args.channel, status=args.status, since=since, limit=args.limit,
                        flag=args.flag)
    if args.format == "json":
        json.dump(_jsonable(rows), sys.stdout, indent=2)
        print()
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else list(V_RETURNS_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: for_spreadsheet(_jsonable(v)) for k, v in row.items()})
    else:
        print_table(rows, RETURN_LIST_COLUMNS)
        total = len(rows) if args.limit is None or len(rows) < args.limit else count_returns(
            engine, channel=args.channel, status=args.status, since=since, flag=args.flag)
        print(f"({plural(len(rows), 'return')})" if total == len(rows) else f"({len(rows)} of {total} returns)")
    return EXIT_OK


def _money(minor: int | None, currency: str | None) -> str:
    """An amount as a person reads it (69.95 EUR); the JSON formats keep minor units, as the views do."""
    from retsync.report.money import format_money

    return "" if minor is None else format_money(minor, currency) if currency else str(minor)


def _known(engine: Any, config: Config, names: list[str]) -> None:
    """A channel asked for by name is in the config or the database; a typo gets exit 2, not an empty list."""
    from retsync.report import ReportUsageError, check_channels

    try:
        check_channels(engine, config, names)
    except ReportUsageError as exc:
        raise UsageError(str(exc)) from None


def cmd_returns_show(args: argparse.Namespace) -> int:
    from retsync.app.queries import return_story
    from retsync.logs import redact_personal

    config = _load(args)
    story = return_story(_engine(config), args.ret)
    if args.format == "json":
        json.dump(_jsonable(story), sys.stdout, indent=2)
        print()
        return EXIT_OK
    r, d = story["return"], story["details"]
    _say(f"return {r['return_id']}  {r['channel']}/{r['external_id']}  ({r['connector']})")
    _say(f"  status      {r['status']} (channel: {r['channel_status']})")
    _say(f"  order       {r['order_external_id'] or '-'}")
    _say(f"  customer    {redact_personal(r['customer_email']) if r['customer_email'] else '-'}"
         f"{'  ' + redact_personal(d['customer_name']) if d['customer_name'] else ''}")
    _say(f"  reason      {r['reason']} ({r['channel_reason'] or '-'})")
    _say(f"  created     {cell(r['created_at'])}   decided {cell(r['decided_at']) or '-'}"
         f"   refunded {cell(r['refunded_at']) or '-'}")
    if d["tracking_number"]:
        _say(f"  parcel      {d['tracking_number']} ({d['carrier'] or 'carrier unknown'})")
    if d["handled_by_channel"]:
        print("  handled by the channel itself: decisions are not pushed")
    _say(f"  decision    {r['decision'] or '-'} ({r['decision_state'] or 'none'})")
    if d["customer_group_id"] is not None:
        _say(f"  customer group {d['customer_group_id']} (matched by {d['customer_match']}): "
             f"{plural(story['customer']['returns'], 'return')}, {plural(story['customer']['orders'], 'order')} "
             f"on {plural(story['customer']['channels'], 'channel')}")
    for flag in story["flags"]:
        on_line = f" line {flag['return_line_id']}" if flag["return_line_id"] is not None else ""
        _say(f"  FLAG        {flag['code']}{on_line}: {flag['detail']} (since {cell(flag['flagged_at'])})")
    if story["held"]:
        held = story["held"]
        _say(f"  in shop     {held['shop']} as {held['reference'] or '(not created yet)'}: {held['state']}"
             + (f", decided {held['decided_kind']}" if held["decided_kind"] else "")
             + (f" ({held['last_error']})" if held["last_error"] else ""))
    print("\nlines")
    print_table(story["lines"], ("line_id", "external_line_id", "ean", "sku", "title", "quantity",
                                 "order_line_external_id", "link_method", "reason", "decision", "decision_state"))
    if story["order"]:
        order = story["order"]
        print()
        _say(f"order {order['external_id']} placed {cell(order['placed_at'])}")
        print_table([{**line, "unit_price": _money(line["unit_price"], line["currency"])} for line in order["lines"]],
                    ("external_id", "ean", "sku", "title", "quantity", "unit_price"))
    if story["decisions"]:
        print("\ndecisions")
        print_table(story["decisions"], ("id", "return_line_id", "kind", "quantity", "origin", "state", "attempts",
                                         "last_error", "created_at", "pushed_at"))
    print("\nhistory")
    print_table(story["events"], ("at", "kind", "return_line_id", "old_value", "new_value", "source", "detail"))
    return EXIT_OK


def cmd_channels(args: argparse.Namespace) -> int:
    from retsync.app.queries import channel_health
    from retsync.notify.outbox import notification_problems
    from retsync.store.quarantine import open_by_channel

    config = _load(args)
    engine = _engine(config)
    rows = channel_health(engine)
    notifying = notification_problems(engine)
    with engine.connect() as conn:
        quarantined = open_by_channel(conn)
    for row in rows:
        problem = notifying.get(row["name"])
        row["notifications"] = None if problem is None else {
            "failed": problem.failed, "retrying": problem.retrying, "last_error": problem.last_error}
        row["quarantine"] = quarantined.get(row["name"], {"open": 0, "newest": []})
    if args.format == "json":
        json.dump(_jsonable(rows), sys.stdout, indent=2)
        print()
        return EXIT_OK
    for row in rows:
        configured = config.channels.get(row["name"])
        state = "disabled" if configured is not None and not configured.enabled else (
            "not in config" if configured is None else "enabled")
        _say(f"{row['name']} ({row['connector']}, {state}): {plural(row['returns'], 'return')}")
        if row["last_success_at"] is None and row["last_pull_started_at"] is not None:
            _say(f"  backfilling        {plural(row['returns'], 'return')} so far (first pull started "
                 f"{cell(row['last_pull_started_at'])}; each page is kept as it comes)")
        _say(f"  last pull started  {cell(row['last_pull_started_at']) or 'never'}")
        _say(f"  last success       {cell(row['last_success_at']) or 'never'}")
        if row["last_error"]:
            _say(f"  last error         {cell(row['last_error_at'])} ({row['consecutive_failures']} in a row): "
                 f"{row['last_error']}")
        if row["rate_limit_waits"]:
            _say(f"  rate limited       {plural(row['rate_limit_waits'], 'request')} held back by the channel, "
                 f"{row['rate_limit_wait_seconds']:.0f} s in all (last {cell(row['last_rate_limited_at'])})")
        for stream, cursor in row["cursors"].items():
            _say(f"  resumes {stream:<10} {_position(cursor)}")
        if row["decisions"]:
            _say("  decisions          " + ", ".join(f"{k} {v}" for k, v in sorted(row["decisions"].items())))
        if row["quarantine"]["open"]:
            _say(f"  quarantine         {row['quarantine']['open']} records set aside, retried on every pull "
                 f"(v_quarantine has them whole):")
            for held in row["quarantine"]["newest"]:
                _say(f"    {held['kind']} {held['external_id'] or '(no id)'}: {held['reason']} "
                     f"(seen {held['times_seen']}x, last {cell(held['last_seen_at'])})")
        if row["notifications"]:
            note = row["notifications"]
            _say(f"  notifications      {note['failed']} failed, {note['retrying']} retrying; last error: "
                 f"{note['last_error']}")
    if not rows:
        print("no channel has synced yet (run `retsync sync`)")
    return EXIT_OK


def _position(cursor: Any) -> str:
    """Where a stream resumes, as `key value` pairs (times to the minute); `--format json` has it whole."""
    if not isinstance(cursor, dict):
        return cell(cursor)
    words = []
    for key, value in sorted(cursor.items()):
        if value in (None, "", [], {}):
            continue
        if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
            value = value[:16].replace("T", " ")  # an ISO time: to the minute is what a person compares
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        words.append(f"{key} {value}")
    return ", ".join(words) or "from the start"


def cmd_connectors(args: argparse.Namespace) -> int:
    found = registry.connectors()
    if args.format == "json":
        json.dump({name: {"title": cls.title, "streams": [s.value for s in cls.capabilities.streams],
                          "decisions": {k.value: v for k, v in cls.capabilities.decisions.items()},
                          "unsupported": {k.value: v for k, v in cls.capabilities.unsupported.items()},
                          "fetches_orders": cls.capabilities.fetches_orders,
                          "holds_returns": cls.capabilities.holds_returns}
                   for name, cls in found.items()}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    for name, cls in found.items():
        caps = cls.capabilities
        print(f"{name}: {cls.title}")
        print(f"  pulls      {', '.join(s.value for s in caps.streams)}"
              f"{' (+ fetches the orders its returns reference)' if caps.fetches_orders else ''}")
        for kind in DecisionKind:
            how = caps.decisions.get(kind)
            print(f"  {kind.value:<10} {how if how else 'unsupported: ' + caps.why_unsupported(kind)}")
        if caps.holds_returns:
            print(f"  back office holds other channels' returns (decisions_from) as {caps.holds_returns}")
    if not found:
        print("no connector is installed")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from retsync.store.db import DatabaseError, missing_driver

    config = _load(args)
    problem = missing_driver(config.settings.database_url())
    if problem:
        raise DatabaseError(problem)
    data = {
        "file": str(config.path),
        "database": {"url": _mask_url(config.settings.database_url())},
        "daemon": json.loads(config.settings.daemon.model_dump_json()),
        "notify": json.loads(config.settings.notify.model_dump_json()),
        "channels": {name: json.loads(ch.model_dump_json()) for name, ch in config.channels.items()},
    }
    print(json.dumps(data, indent=2))
    print(f"config ok: {len(config.enabled_channels)} of {len(config.channels)} channels enabled", file=sys.stderr)
    for line in unreadable(config, notify=True, carriers=True):  # fine where the service provides them
        _say(f"not readable from here (sync, push and run need it): {line}", file=sys.stderr)
    return EXIT_OK


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_secret_set(args: argparse.Namespace) -> int:
    value = sys.stdin.readline().rstrip("\r\n") if args.stdin or not sys.stdin.isatty() else getpass.getpass(
        f"secret for [channels.{args.channel}] {args.key}: ")
    if not value:
        raise CommandError("no secret given; nothing stored")
    reference = store_in_keyring(args.channel, args.key, value)
    print(f"stored. In the config, under [channels.{args.channel}], write:\n  {args.key} = \"{reference}\"")
    return EXIT_OK


def cmd_auth(args: argparse.Namespace) -> int:
    from retsync.kit.contract import Runtime
    from retsync.kit.http import ChannelError

    config = _load(args)
    settings = config.channels.get(args.channel)
    if settings is None:
        raise ConfigError(f"{config.path}: no channel {args.channel!r} (configured: {', '.join(config.channels)})")
    if settings.connector != args.connector:
        raise CommandError(f"channel {args.channel} uses the {settings.connector} connector, not {args.connector}")
    cls = registry.get(settings.connector)
    assert cls is not None
    connector = cls(args.channel, settings, Runtime(state_dir=config.settings.daemon.state_dir))
    try:
        # the URL and the code to type come from the channel
        connector.authorize(lambda line: print(for_terminal(line), flush=True))
    except (NotImplementedError, ChannelError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        connector.close()
    print(f"channel {args.channel} is signed in")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from retsync.report import ReportUsageError, run_report
    from retsync.store.db import require_current_schema

    config = _load(args)
    engine = _engine(config)
    require_current_schema(engine)
    try:
        where = run_report(engine, config, since=args.since, until=args.until, channels=args.channel,
                           fmt=args.format, output=args.output)
    except ReportUsageError as exc:
        print(f"retsync report: {for_terminal(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_CONFIG
    if args.output:
        print(f"report written to {where}", file=sys.stderr)
    return EXIT_OK


def cmd_as_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retsync.app.as_service import UnitProblem, default_unit, run_as_service

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("name the retsync command to run, e.g. `retsync as-service -- returns list`")
    try:
        return run_as_service(Path(args.unit) if args.unit else default_unit(), command, args.print)
    except UnitProblem as exc:
        raise CommandError(str(exc)) from None


def cmd_sandbox(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from retsync.app.sandbox import UnknownConnectors, run_sandbox

    logs.configure(level="WARNING")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="retsync-sandbox-"))
    names = [name.strip() for name in args.connectors.split(",") if name.strip()] if args.connectors else None
    try:
        return run_sandbox(names, args.returns, workdir)
    except UnknownConnectors as exc:
        raise UsageError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from retsync.app.demo import run_demo

    return run_demo(args.workdir)


# --- parser -------------------------------------------------------------------------------------


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retsync", description="Returns from every channel in one database.")
    parser.add_argument("--version", action="version", version=f"retsync {__version__}")
    parser.add_argument("--config", help="config file (default: $RETSYNC_CONFIG or /etc/retsync/config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the daemon (pull on schedule, push decisions)").set_defaults(func=cmd_run)

    p = sub.add_parser("sync", help="one pull + push pass, then exit (0 ok, 1 a channel failed, 2 bad config)")
    p.add_argument("--channel", action="append", help="only this channel (repeatable)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("push", help="push due decisions now")
    p.add_argument("--channel", action="append", help="only this channel (repeatable)")
    p.set_defaults(func=cmd_push)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db.add_parser("upgrade", help="create or migrate the schema").set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("decide", help="record a decision on a return (pushed by the next push run)")
    p.add_argument("ret", metavar="RETURN", help="internal id or channel/external_id")
    p.add_argument("decision", choices=[k.value for k in DecisionKind])
    p.add_argument("--note", help="reason or message passed to the channel where it takes one")
    p.add_argument("--line", action="append", help="only this line (line id or the channel's line id); repeat it "
                   "for several lines: they go to the channel as one act (one refund)")
    p.add_argument("--quantity", type=int, help="only this many units of the line (of each --line given)")
    p.add_argument("--force", action="store_true",
                   help="record an accept or keep even on a return flagged double_refund or quantity_exceeds_ordered, "
                   "or a decision that contradicts what the channel already did (refunded, rejected, cancelled)")
    p.set_defaults(func=cmd_decide)

    returns = sub.add_parser("returns", help="list and show returns").add_subparsers(
        dest="returns_command", required=True, metavar="ACTION")
    p = returns.add_parser("list", help="list returns (newest first)")
    p.add_argument("--channel")
    p.add_argument("--status", choices=[s.value for s in ReturnStatus])
    p.add_argument("--since", help="created on or after (YYYY-MM-DD or ISO time)")
    p.add_argument("--limit", type=_positive, help="at most this many (newest first)")
    p.add_argument("--flag", metavar="CODE", choices=[c.value for c in FlagCode],
                   help="only returns with this flag open (" + ", ".join(c.value for c in FlagCode) + ")")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_returns_list)
    p = returns.add_parser("show", help="one return: lines, order, decisions, history")
    p.add_argument("ret", metavar="RETURN", help="internal id or channel/external_id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_returns_show)
    add_intake_commands(sub, returns)
    add_web_commands(sub)
    add_ops_commands(sub, db)

    p = sub.add_parser("channels", help="last sync, cursors and last error per channel")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_channels)

    p = sub.add_parser("connectors", help="installed connectors and what they can do")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_connectors)

    cfg = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True,
                                                                        metavar="ACTION")
    cfg.add_parser("check", help="validate and print the resolved config, secrets masked").set_defaults(
        func=cmd_config_check)

    secret = sub.add_parser("secret", help="secrets in the system keyring").add_subparsers(
        dest="secret_command", required=True, metavar="ACTION")
    p = secret.add_parser("set", help="store a channel secret in the keyring (value read from the terminal or stdin)")
    p.add_argument("channel")
    p.add_argument("key")
    p.add_argument("--stdin", action="store_true", help="read the value from standard input")
    p.set_defaults(func=cmd_secret_set)

    p = sub.add_parser("auth", help="sign a channel in interactively where its connector needs it (e.g. an OAuth device flow)")
    p.add_argument("connector")
    p.add_argument("channel")
    p.set_defaults(func=cmd_auth)

    p = sub.add_parser("report", help="return KPIs for a period: text, JSON or a self-contained HTML page")
    p.add_argument("--since", help="returns created and orders placed on or after (YYYY-MM-DD or ISO time)")
    p.add_argument("--until", help="... and before; a date includes that whole day")
    p.add_argument("--channel", action="append", help="only this channel (repeatable)")
    p.add_argument("--format", choices=("text", "json", "html"), default="text")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("as-service", help="run a retsync command as the systemd service runs (its user, state "
                       "directory, credentials and environment), through systemd-run")
    p.add_argument("--unit", help="the unit file to copy them from (default: /etc/systemd/system/retsync.service, "
                   "else the packaged one)")
    p.add_argument("--print", action="store_true", help="print the systemd-run command instead of running it")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the retsync command, after --")
    p.set_defaults(func=cmd_as_service)

    p = sub.add_parser("sandbox", help="serve the bundled sandboxes on loopback until Ctrl-C, with a config for them")
    p.add_argument("--connectors", metavar="A,B", help="only these connectors' sandboxes (default: every one)")
    p.add_argument("--returns", type=_positive, help="returns each sandbox holds (default: its own size)")
    p.add_argument("--workdir", help="where the config and its database go (default: a new temporary folder)")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("demo", help="sync the bundled sandboxes into a fresh SQLite database and show the result")
    p.add_argument("--workdir", help="where to put the demo database and config (default: a temporary folder)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from retsync.outbox.decisions import DecisionRefused
    from retsync.store.db import DatabaseError, SchemaError
    from retsync.store.filelock import InstanceLocked

    parser = build_parser()
    args = parser.parse_args(argv)
    if not structlog.is_configured():
        logs.configure()
    try:
        return int(args.func(args))
    except ConfigError as exc:
        shown = for_terminal(exc, keep_newlines=True)
        print(f"config error:\n{shown}" if "\n" in shown else f"config error: {shown}", file=sys.stderr)
        return EXIT_CONFIG
    except (SchemaError, DatabaseError, DecisionRefused, CommandError, SecretError, InstanceLocked) as exc:
        print(f"retsync: {for_terminal(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_FAILED
    except UsageError as exc:
        print(f"retsync: {for_terminal(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            print(f"retsync: {for_terminal(_database_problem(args, exc), keep_newlines=True)}", file=sys.stderr)
            return EXIT_FAILED
        raise


def _database_problem(args: argparse.Namespace, exc: Exception) -> str:
    """The database error in the admin's words, naming the database when the config can still be read."""
    from retsync.store.db import database_problem, describe_database

    try:
        where = describe_database(load_config(config_path(args.config), registry.settings_model_for)
                                  .settings.database_url())
    except Exception:
        where = None
    return database_problem(exc, where)


if __name__ == "__main__":
    sys.exit(main())
