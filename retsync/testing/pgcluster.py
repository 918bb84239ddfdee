"""A throwaway PostgreSQL cluster for the tests: temp dir, free port, loopback only, stopped at the end.

PostgreSQL refuses to run as root (CI runs as root), so the server runs as
the `postgres` (or `nobody`) user through runuser in that case. Where
`RETSYNC_TEST_POSTGRES_URL` names a server (a role that may create databases),
the tests create their databases there instead and start nothing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    def __init__(self) -> None:
        self._counter = 0
        self._template: str | None = None
        given = os.environ.get("RETSYNC_TEST_POSTGRES_URL")
        if given:
            from sqlalchemy.engine import make_url

            self.given = make_url(given).set(drivername="postgresql+psycopg")
            return
        self.given = None
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            message = ("PostgreSQL 15 binaries (initdb, pg_ctl) are not installed, and RETSYNC_TEST_POSTGRES_URL "
                       "names no server")
            if os.environ.get("CI"):
                pytest.fail(message + " — CI must have them")
            pytest.skip(message)
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="retsync-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(user)
            os.chmod(self.root, 0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.prefix = ["runuser", "-u", user, "--"]
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                   "--locale=C"])
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"])

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self.prefix + command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def url(self, database: str = "postgres") -> str:
        if self.given is not None:
            return self.given.set(database=database).render_as_string(hide_password=False)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg

        if self.given is not None:
            dsn = self.given.set(drivername="postgresql", database=self.given.database or "postgres")
            target = dsn.render_as_string(hide_password=False)
        else:
            target = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(target, autocommit=True) as c:
            c.execute(statement)

    def new_database(self, migrated: bool = False) -> str:
        """An empty database, or (`migrated`) a copy of one the migrations already ran on.

        FILE_COPY: PostgreSQL 15's default strategy writes the whole template into the WAL, for every test.
        """
        self._counter += 1
        name = f"test_{os.getpid()}_{self._counter}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        self._admin(f'CREATE DATABASE "{name}"{template} STRATEGY FILE_COPY')
        return self.url(name)

    def _migrated_template(self) -> str:
        if self._template is None:
            from retsync.store.db import make_engine, upgrade

            name = f"template_{os.getpid()}"
            self._admin(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
            engine = make_engine(self.url(name))
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # a template must have no connections when it is copied
            self._template = name
        return self._template

    def stop(self) -> None:
        if self.given is not None:
            return
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            # a database per test adds up to gigabytes: removed by a process of its own, so the test run does not
            # wait the tens of seconds that takes (it goes on after pytest has exited)
            subprocess.Popen(["rm", "-rf", "--", str(self.root)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
