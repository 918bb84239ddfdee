"""The `retsync web …` commands: serve the console, and manage who may use it."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from retsync.web.settings import ROLES


def add_commands(sub: Any) -> None:
    """Adds `web` to the CLI's top-level commands."""
    web = sub.add_parser("web", help="serve the web console (`retsync web user …` manages its users)")
    web.add_argument("--listen", metavar="HOST:PORT", help="bind here instead of [web] listen")
    web.set_defaults(func=cmd_web)
    actions = web.add_subparsers(dest="web_command", metavar="ACTION")
    users = actions.add_parser("user", help="the console's users and their roles").add_subparsers(
        dest="user_command", required=True, metavar="ACTION")

    p = users.add_parser("add", help="a new user (asks for the password; --proxy-only for users of a reverse proxy)")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, required=True,
                   help="viewer: looks; decider: also decides and retries; admin: also overrides the guards")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--proxy-only", action="store_true",
                   help="no password: the user logs in only through the trusted reverse proxy")
    p.set_defaults(func=cmd_user_add)

    p = users.add_parser("password", help="set a new password (ends the user's sessions)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_user_password)

    p = users.add_parser("role", help="change a user's role")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(func=cmd_user_role)

    p = users.add_parser("remove", help="remove a user (and end their sessions)")
    p.add_argument("name")
    p.set_defaults(func=cmd_user_remove)

    p = users.add_parser("logout", help="end every session of a user (a lost laptop)")
    p.add_argument("name")
    p.set_defaults(func=cmd_user_logout)

    users.add_parser("list", help="users, roles and open sessions").set_defaults(func=cmd_user_list)


def _config(args: argparse.Namespace) -> Any:
    from retsync.app.command import read_config

    return read_config(args)


def _engine(args: argparse.Namespace, config: Any = None) -> Any:
    from retsync.app.command import database

    return database(config or _config(args), current_schema=True)


def _refused(message: str) -> int:
    print(f"retsync: {message}", file=sys.stderr)
    return 1


def _password(args: argparse.Namespace) -> str:
    from retsync.web.auth import UserError

    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ; nothing changed")
    return first


def _user_command(action: Any) -> int:
    from retsync.web.auth import UserError

    try:
        action()
    except UserError as exc:
        return _refused(str(exc))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from retsync.web.auth import add_user

    engine = _engine(args)
    code = _user_command(lambda: add_user(engine, args.name, args.role,
                                          None if args.proxy_only else _password(args)))
    if code == 0:
        print(f"user {args.name} added as {args.role}")
    return code


def cmd_user_password(args: argparse.Namespace) -> int:
    from retsync.web.auth import set_password

    engine = _engine(args)
    code = _user_command(lambda: set_password(engine, args.name, _password(args)))
    if code == 0:
        print(f"password of {args.name} changed; their sessions are ended")
    return code


def cmd_user_role(args: argparse.Namespace) -> int:
    from retsync.web.auth import set_role

    engine = _engine(args)
    code = _user_command(lambda: set_role(engine, args.name, args.role))
    if code == 0:
        print(f"{args.name} is now {args.role}")
    return code


def cmd_user_remove(args: argparse.Namespace) -> int:
    from retsync.web.auth import remove_user

    engine = _engine(args)
    code = _user_command(lambda: remove_user(engine, args.name))
    if code == 0:
        print(f"user {args.name} removed")
    return code


def cmd_user_logout(args: argparse.Namespace) -> int:
    from retsync.web.auth import close_all_sessions, user_named

    engine = _engine(args)
    user = user_named(engine, args.name)
    if user is None:
        return _refused(f"no user {args.name!r} (see `retsync web user list`)")
    print(f"{close_all_sessions(engine, user.id)} sessions of {args.name} ended")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from retsync.web.auth import list_users

    users = list_users(_engine(args))
    for user in users:
        login = "password" if user["password"] else "proxy only"
        print(f"{user['name']:<24} {user['role']:<8} {login:<10} {user['sessions']} open sessions")
    if not users:
        print("no users yet: `retsync web user add NAME --role decider`")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from retsync.config import ConfigError
    from retsync.web.app import create_app
    from retsync.web.settings import split_listen

    config = _config(args)
    settings = config.settings.web
    listen = args.listen or settings.listen
    try:
        host, port = split_listen(listen)
    except ValueError as exc:
        raise ConfigError(f"--listen: {exc}") from None
    problem = settings.exposure_problem(listen)
    if problem:
        raise ConfigError(f"{config.path}: {problem}")
    engine = _engine(args, config)
    app = create_app(engine, config)
    scheme = "https" if settings.tls else "http"
    print(f"web console on {scheme}://{listen} (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=host, port=port, ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
                proxy_headers=False,  # the proxy's own address is what trusted_proxies is checked against
                log_level="warning", access_log=False, server_header=False)
    return 0
