"""A database holding a WooCommerce shop's orders (pulled from its sandbox through the daemon's own path) and a
config with manual channels beside it, as a merchant has them when the first paper form arrives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync.app.cli import main
from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings
from retsync_connectors.woocommerce.emulator import WooCommerceEmulator

Run = Callable[..., tuple[int, str, str]]

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""For what does not depend on the database's dialect: the suite's PostgreSQL time goes to the store-facing
tests (linking, merging, the delivery id's uniqueness, the tracker's updates)."""


@pytest.fixture
def shop_orders(db: Engine, db_url: str, tmp_path: Path) -> Engine:
    """The sandbox shop pulled once: its orders (with buyers and lines) and its own returns are stored."""
    shop = WooCommerceEmulator(seed=21)
    table = {**WooCommerceConnector.sandbox_channel("http://sandbox.invalid"), "max_backoff": "0.05s"}
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"shop": table})
    config = Config(path=tmp_path / "shop.toml", settings=settings, channels={"shop": WooCommerceSettings(**table)})
    runner = Runner(config, transports={"shop": shop.transport()}, db=db)
    runner.open()
    try:
        assert runner.pull("shop").ok
    finally:
        runner.close()  # the engine reconnects on its next use
    return db


def order_with_lines(db: Engine, lines: int = 2) -> dict[str, Any]:
    """A stored shop order with an e-mail and at least `lines` lines that have a SKU, and its customer group."""
    with db.connect() as conn:
        row = conn.execute(text(
            "SELECT o.id, o.external_id, o.customer_email, o.customer_group_id FROM orders o "
            "WHERE o.customer_email IS NOT NULL AND o.customer_group_id IS NOT NULL AND "
            "(SELECT COUNT(*) FROM order_lines ol WHERE ol.order_id = o.id AND ol.sku IS NOT NULL) >= :n "
            "ORDER BY o.id LIMIT 1"), {"n": lines}).mappings().one()
        skus = [r[0] for r in conn.execute(text(
            "SELECT sku FROM order_lines WHERE order_id = :id AND sku IS NOT NULL ORDER BY id"), {"id": row["id"]})]
    return {**row, "skus": skus}


def write_config(tmp_path: Path, db_url: str, channels: str = "", extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[daemon]
state_dir = "{tmp_path}"
{extra}
[channels.paper]
connector = "manual"
{channels}
""")
    return path


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path, db_url)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], config_file: Path) -> Run:
    def run(*args: str, config: Path | None = None) -> tuple[int, str, str]:
        code = main(["--config", str(config or config_file), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
