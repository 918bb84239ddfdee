"""Opening the database and keeping its schema honest.

The schema belongs to Alembic: `retsync db upgrade` creates and changes it,
and `run`/`sync` refuse a database whose schema is behind this version of
retsync, because writing to a half-migrated schema is how data gets lost.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import retsync_migrations
from retsync.kit.files import create_private_file, private_dir


class SchemaError(Exception):
    """The database is not at this retsync's schema; the message names the command that fixes it."""


class DatabaseError(Exception):
    """The database cannot be opened or used; the message says which and why."""


SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's write lock before the command fails with "locked"."""


SQLITE_CACHED_STATEMENTS = 16
"""Prepared statements each SQLite connection keeps (Python's default is 128). A statement with a long IN list
holds most of a megabyte, and each list length is a statement of its own: 128 of them made a backfill's
memory grow with its history. The statements a page repeats stay prepared."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")  # first: WAL needs the lock too
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (reporting tools) never block the daemon
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a power cut loses at most the last commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def describe_database(url: str) -> str:
    """The SQLite file, or the URL without its password: how messages name the database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def database_problem(exc: BaseException, database: str | None = None) -> str:
    """One line for the admin on a database that cannot be used: what is wrong and what to do, no traceback.

    Every write is one transaction, so each of these leaves the database as it was before the write.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    where = f" {database}" if database else ""
    if "database is locked" in message:  # the SQL of a failed statement is not for the admin
        message = "database is locked"
    lowered = message.lower()
    code = getattr(orig, "errno", None)
    if type(orig).__module__.startswith("psycopg") and "read-only" in lowered:
        return (f"the database{where} only takes reads ({message}): retsync needs a writable primary, not a "
                f"standby, and a role without default_transaction_read_only")
    if "readonly database" in lowered or "read-only" in lowered or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"the database{where} is read-only for this process ({message}): the database file and its "
                f"folder must be writable by the user retsync runs as (SQLite writes -wal and -shm files beside it)")
    if "disk is full" in lowered or "no space" in lowered or code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return (f"the disk holding the database{where} is full ({message}): free some space; nothing was "
                f"half-written, the failed write was rolled back and is retried")
    if "disk i/o error" in lowered:
        return (f"the database{where} could not be written: the disk is full or failing ({message}); free some "
                f"space or check the disk: the failed write was rolled back and is retried")
    if "database is locked" in lowered or "database table is locked" in lowered:
        return (f"the database{where} is locked by another process, which held its write lock longer than "
                f"{SQLITE_BUSY_TIMEOUT_S:g} s ({message}): find the program keeping a write transaction open "
                f"(a second retsync, an editor or a reporting tool writing to the file) and close it")
    if "unable to open database file" in lowered:
        return (f"cannot open the database{where} ({message}): its folder must exist and be writable by the "
                f"user retsync runs as")
    if "malformed" in lowered or "not a database" in lowered:
        return (f"the database{where} is damaged ({message}): stop retsync, check it with "
                f"`sqlite3 FILE 'PRAGMA integrity_check'` and restore it from a backup")
    if "connection refused" in lowered or "could not connect" in lowered or "connection failed" in lowered:
        return f"cannot connect to the database server ({message}): is PostgreSQL running, and [database] url right?"
    return f"the database cannot be used: {type(orig).__name__}: {message}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    from retsync.config import checked_database_url

    try:
        parsed = make_url(checked_database_url(url))
    except ValueError as exc:
        raise DatabaseError(f"[database] url: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                private_dir(folder)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database's folder {folder}: {exc.strerror or exc}") from None
            try:
                create_private_file(Path(parsed.database))  # 0600 before SQLite creates it 0644, -wal/-shm follow
            except OSError:
                pass  # a folder we may not write to: SQLite's own error on connecting names the problem
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S,
                                                     "cached_statements": SQLITE_CACHED_STATEMENTS},
                               hide_parameters=True, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    problem = missing_driver(url)
    if problem:
        raise DatabaseError(problem)
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True, **kwargs)


def missing_driver(url: str) -> str | None:
    """What to install when the database's Python driver is not there (PostgreSQL's is an extra), else None:
    said before any connection, so neither `config check` nor the daemon ends in a ModuleNotFoundError."""
    from retsync.config import checked_database_url

    try:
        parsed = make_url(checked_database_url(url))
    except ValueError:
        return None  # make_engine names the bad URL itself
    if parsed.get_backend_name() != "postgresql":
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return ("[database] url is a PostgreSQL database, and its driver (psycopg) is not installed: "
                "pip install 'retsync[postgres]' into the environment retsync runs from")
    return None


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(retsync_migrations.__file__).parent))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations; return (before, after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), revision)
    return before, current_revision(engine)


def require_current_schema(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if current is None:
        raise SchemaError("the database has no retsync schema yet: run `retsync db upgrade` first")
    raise SchemaError(
        f"the database schema is at revision {current}, this retsync needs {head}: run `retsync db upgrade`"
    )
