"""Fixtures shared by the whole suite: databases (SQLite and PostgreSQL), a clean environment, fakes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from retsync import registry
from retsync.store.db import make_engine, upgrade
from tests.pgcluster import PgCluster

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A merchant's shell variables must not leak into a test's config."""
    for key in list(os.environ):
        if key.startswith("RETSYNC_") and key != "RETSYNC_SPECS" and key != "RETSYNC_STRESS":
            monkeypatch.delenv(key)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


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
