"""The contract every connector passes (retsync.testing), run through the daemon's real path against the sandbox:
pulling, the fault matrix, exactly-once decisions, a whole return as one act, a lost answer, no secret stored."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract

from retsync_connector_template.connector import TemplateConnector


class TestTemplateContract(ConnectorContract):
    connector = TemplateConnector
