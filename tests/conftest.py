"""The suite's own fixture: a clean environment. The database fixtures (`db`, `db_url`, `pg_cluster`,
`extra_connectors`) come from the installed `retsync.testing` plugin, as they do for a connector outside this repo."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from retsync import logs


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A merchant's shell variables must not leak into a test's config."""
    for key in list(os.environ):
        if key.startswith("RETSYNC_") and key not in ("RETSYNC_SPECS", "RETSYNC_STRESS", "RETSYNC_TEST_POSTGRES_URL"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """A test that configures logging (the CLI does, at the config's level) must not change what the next test
    of its worker can capture: structlog's defaults again after each one."""
    yield
    structlog.reset_defaults()
    logs.unroute_stdlib()
