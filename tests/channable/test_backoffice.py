"""Channable as the marketplace side of the back-office flow: with `decisions_from` a shop (WooCommerce), each open
Channable return is held in the shop once, and a decision taken in the shop's panel reaches Channable exactly once
as a return status. The shop's half is WooCommerce's own; the suite is the one every shop passes."""

from __future__ import annotations

import pytest

from retsync import registry
from retsync.kit.contract import Connector
from retsync.testing.backoffice import BackOfficeContract


class TestChannableDecidedInAShop(BackOfficeContract):
    shop = registry.get("woocommerce")  # type: ignore[assignment]

    @pytest.fixture(params=["channable"])
    def marketplace(self, request: pytest.FixtureRequest) -> type[Connector]:
        cls = registry.get(request.param)
        assert cls is not None
        return cls
