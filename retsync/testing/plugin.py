"""The pytest plugin `retsync.testing` installs (entry point `pytest11`): the database fixtures the suites use.

Loaded in any pytest run where retsync is installed, so it only adds fixtures and a marker, and changes nothing
by itself. `db_url` runs a test on SQLite and on PostgreSQL: a throwaway cluster when `initdb` is found (in a
temp dir, on a free loopback port, stopped at the end), the server `RETSYNC_TEST_POSTGRES_URL` names, or a
skip saying which is missing (a failure under CI=true).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from retsync import registry
from retsync.store.db import make_engine, upgrade
from retsync.testing.pgcluster import PgCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the throwaway PostgreSQL cluster")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file the migrations ran on; a test that wants a migrated database gets a copy of it."""
    path = tmp_path_factory.mktemp("migrated") / "retsync.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database; one already migrated where the test also asks for `db` (copying is cheaper)."""
    migrated = "db" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "retsync.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("pg_cluster").new_database(migrated=migrated))


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """A migrated database (SQLite, then PostgreSQL), disposed of after the test."""
    engine = make_engine(db_url)
    upgrade(engine)  # at head already: this only checks
    yield engine
    engine.dispose()


@pytest.fixture
def extra_connectors(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Register test connectors beside the installed ones for one test."""
    installed = dict(registry.connectors())
    extra: dict[str, type] = {}
    monkeypatch.setattr(registry, "connectors", lambda: {**installed, **extra})
    return extra
