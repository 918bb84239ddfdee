"""The console in a real browser (headless Chromium driven by Playwright) against the bundled sandboxes.

A decider logs in, finds the returns of one customer who bought through BaseLinker (an Allegro order) and in the
Shoper shop, opens one, accepts it, and sees it `pushed` once the daemon's push pass has run, without reloading;
a viewer sees the same return without a way to decide. With RETSYNC_SCREENSHOTS=<folder> the test also saves
the README's screenshots there (`docs/screenshots`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.app.demo import write_config
from retsync.config import load_config
from retsync.store.db import make_engine, upgrade
from retsync.web import auth
from retsync.web.app import create_app
from tests.reporting import chromium
from tests.web.conftest import PASSWORD

SANDBOXES = ("allegro", "shoper")  # the seeds' case: shoes bought on Allegro and in the shop
SHOTS = os.environ.get("RETSYNC_SCREENSHOTS")
"""Read when the module is collected: the suite's clean environment drops RETSYNC_* variables for each test."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two sandboxes pulled into a fresh database, and the console serving it on a free loopback port."""
    folder = tmp_path_factory.mktemp("console")
    with contextlib.ExitStack() as stack:
        channels = {}
        for name in SANDBOXES:
            cls = registry.get(name)
            assert cls is not None, f"the bundled {name} connector is installed"
            base_url = stack.enter_context(cls.sandbox(seed=1).serve())
            channels[f"{name}_sandbox"] = {**cls.sandbox_channel(base_url), "poll_interval": "5m"}
        write_config(folder / "config.toml", folder, channels)
        config = load_config(folder / "config.toml", registry.settings_model_for, registry.names,
                             registry.holds_returns)
        db = make_engine(config.settings.database_url())
        upgrade(db)
        runner = Runner(config, db=db)
        runner.open()
        stack.callback(runner.close)
        outcomes, _ = runner.sync_once()
        assert all(o.ok for o in outcomes), outcomes
        auth.add_user(db, "dana", "decider", PASSWORD)
        auth.add_user(db, "victor", "viewer", PASSWORD)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(db, config), log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(setattr, server, "should_exit", True)
        while not server.started:
            threading.Event().wait(0.01)
        yield {"url": f"http://127.0.0.1:{sock.getsockname()[1]}", "db": db, "runner": runner}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium.binary())  # a skip outside CI, a failure in it
        yield launched
        launched.close()


def _shots() -> Path | None:
    """RETSYNC_SCREENSHOTS, a relative folder taken from the repository's root (the tests run elsewhere)."""
    return Path(__file__).resolve().parents[2] / SHOTS if SHOTS else None


def _shot(page: Any, name: str) -> None:
    folder = _shots()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"))


def _login(browser: Any, url: str, name: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{url}/returns")
    assert page.url.startswith(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/returns")
    page.console_errors = errors  # type: ignore[attr-defined]
    return page


def _customer(db: Engine) -> tuple[str, str, str]:
    """A customer with returns on Allegro and in the shop: their surname as the shop has it, one of their shop
    returns, and their first open Allegro return (Allegro names buyers by login, the shop by name)."""
    with db.connect() as conn:
        allegro = conn.execute(text(
            "SELECT r.external_id, r.customer_group_id FROM returns r JOIN channels c ON c.id = r.channel_id "
            "WHERE c.name = 'allegro_sandbox' AND r.status IN ('requested', 'in_transit', 'received') "
            "AND r.customer_group_id IN (SELECT customer_group_id FROM returns WHERE customer_group_id IS NOT NULL "
            "GROUP BY customer_group_id HAVING COUNT(DISTINCT channel_id) > 1) ORDER BY r.id LIMIT 1")).one()
        shop = conn.execute(text(
            "SELECT r.external_id, r.customer_name FROM returns r JOIN channels c ON c.id = r.channel_id "
            "WHERE c.name = 'shoper_sandbox' AND r.customer_group_id = :g ORDER BY r.id LIMIT 1"),
            {"g": allegro.customer_group_id}).one()
    return shop.customer_name.split()[-1], shop.external_id, allegro.external_id


def test_a_decider_finds_a_customers_returns_on_both_channels_accepts_one_and_sees_it_pushed(
        world: dict[str, Any], browser: Any) -> None:
    """The seeds' case: shoes bought on Allegro and in the shop. The decider finds the customer in the shop by
    name, sees their Allegro returns beside it, and accepts one of those."""
    url, db = world["url"], world["db"]
    surname, shop_return, target = _customer(db)
    page = _login(browser, url, "dana")
    _shot(page, "returns")
    page.fill("input[name=q]", surname)
    page.click("form#filters button[type=submit]")
    page.wait_for_url("**q=*")
    table = page.locator("#returns")
    assert table.locator("text=shoper_sandbox").count() > 0
    page.select_option("select[name=channel]", "allegro_sandbox")
    page.click("form#filters button[type=submit]")
    page.wait_for_url("**channel=allegro_sandbox*")
    assert table.locator("text=shoper_sandbox").count() == 0, "the channel filter holds"
    page.select_option("select[name=channel]", "shoper_sandbox")
    page.click("form#filters button[type=submit]")
    page.wait_for_url("**channel=shoper_sandbox*")
    page.click(f"#returns a:text-is('{shop_return}')")
    page.wait_for_url("**/returns/*")
    group = page.locator("#customer-group")
    assert group.locator("text=allegro_sandbox").count() > 0, "the Allegro returns of the same customer, on one screen"
    group.locator(f"a:text-is('allegro_sandbox/{target}')").click()
    page.wait_for_url("**/returns/*")
    group = page.locator("#customer-group")
    assert group.locator("text=shoper_sandbox").count() > 0, "and from there, the shop returns of the customer"
    _shot(page, "return")
    page.check("input[name=kind][value=accept]")
    page.fill("textarea[name=note]", "parcel complete")
    page.click("form#decide button[type=submit]")
    page.wait_for_selector("#message")
    state = page.locator("[data-decision]").first
    assert state.inner_text() == "pending"
    summary = world["runner"].push()
    assert summary.pushed >= 1, summary
    state.filter(has_text="pushed").wait_for(timeout=10_000)  # console.js polls; no reload
    assert page.locator("#history").locator("text=web:dana").count() > 0
    _shot(page, "decided")
    page.goto(f"{url}/flags")
    _shot(page, "flags")
    page.goto(f"{url}/channels")
    _shot(page, "channels")
    page.goto(f"{url}/language/pl?next=/report")
    page.wait_for_selector("#report svg")
    _shot(page, "report-pl")
    assert page.console_errors == [], "no CSP violation or script error in the browser"  # type: ignore[attr-defined]


def test_a_viewer_cannot_decide_in_the_browser(world: dict[str, Any], browser: Any) -> None:
    url = world["url"]
    page = _login(browser, url, "victor")
    page.click("#returns tbody tr:first-child a")
    page.wait_for_url("**/returns/*")
    assert page.locator("form#decide").count() == 0
    assert page.locator("#viewer-note").is_visible()
