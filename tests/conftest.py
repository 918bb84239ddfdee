"""The suite's own fixture: a clean environment. The database fixtures (`db`, `db_url`, `pg_cluster`,
`extra_connectors`) come from the installed `retsync.testing` plugin, as they do for a connector outside this repo."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A merchant's shell variables must not leak into a test's config."""
    for key in list(os.environ):
        if key.startswith("RETSYNC_") and key not in ("RETSYNC_SPECS", "RETSYNC_STRESS", "RETSYNC_TEST_POSTGRES_URL"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
