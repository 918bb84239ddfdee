"""The template channel as the back office of Bol.com and Allegro (`decisions_from`): a marketplace return is
held here once, the merchant decides it in the panel, and the decision reaches the marketplace exactly once."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract

from retsync_connector_template.connector import TemplateConnector


class TestTemplateBackOffice(BackOfficeContract):
    shop = TemplateConnector
