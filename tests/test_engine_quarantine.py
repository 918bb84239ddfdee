"""The engine's side of the quarantine, with a scripted channel on SQLite and PostgreSQL: what the store cannot
take is set aside with why, the rest of the page and its cursor are committed, and a record stored normally
later resolves its quarantine row. This is also how a connector that maps a whole page at once is protected."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from retsync.app.cli import main
from retsync.app.daemon import describe_failure
from retsync.kit.contract import Runtime
from retsync.kit.model import Customer, ReturnLine
from retsync.kit.records import Quarantined
from retsync.kit.settings import ChannelSettings
from retsync.store import pages
from retsync.store.channels import ensure_channel
from retsync.store.models import SyncCursor
from retsync.store.quarantine import PAYLOAD_LIMIT
from retsync.sync.engine import SyncEngine
from tests.fakes import BASE, ScriptedConnector, make_return


@pytest.fixture(autouse=True)
def scripted() -> None:
    ScriptedConnector.reset(4)


def _engine(db: Engine, tmp_path: Path) -> SyncEngine:
    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    connector = ScriptedConnector("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    return SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings, connector=connector)


def _rows(db: Engine, sql: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(text(sql)).all())


def _cursor(db: Engine) -> Any:
    with db.connect() as conn:
        return conn.execute(select(SyncCursor.cursor)).scalar()


def _stored(db: Engine) -> set[str]:
    return {row[0] for row in _rows(db, "SELECT external_id FROM returns")}


def _quarantine(db: Engine) -> dict[str, Any]:
    return {row.external_id: row for row in _rows(
        db, "SELECT external_id, kind, stream, reason, payload, payload_size, times_seen, resolved_at, is_open "
            "FROM v_quarantine")}


def _poisoned(n: int, **changes: Any) -> Any:
    return make_return(n).model_copy(update=changes)


def test_a_quantity_no_column_holds_is_quarantined_and_the_page_with_its_cursor_is_stored(
        db: Engine, tmp_path: Path) -> None:
    line = ReturnLine(external_id="R1-L0", quantity=10**30)
    ScriptedConnector.returns[1] = _poisoned(1, lines=(line,))

    [result] = _engine(db, tmp_path).sync()

    assert _stored(db) == {"R0", "R2", "R3"}
    held = _quarantine(db)["R1"]
    assert held.is_open and held.kind == "return" and held.stream == "returns"
    assert "quantity" in held.reason and "out of range" in held.reason
    assert result.quarantined == 1
    assert _cursor(db) == {"offset": 4}


def test_text_longer_than_its_column_is_clipped_and_free_text_kept_whole(db: Engine, tmp_path: Path) -> None:
    reason = "it pinched " * 500
    ScriptedConnector.returns[0] = _poisoned(0, channel_reason=reason, channel_status="s" * 300,
                                             customer=Customer(postcode="1" * 36, phone="6" * 64, name="n" * 400))
    _engine(db, tmp_path).sync()
    [row] = _rows(db, "SELECT customer_postcode, customer_phone, customer_name, channel_reason, channel_status "
                      "FROM returns WHERE external_id = 'R0'")
    assert row == ("1" * 20, "6" * 50, "n" * 300, reason, "s" * 200)
    assert _quarantine(db) == {}


@pytest.mark.parametrize("change, reason", [
    ({"external_id": "R" * 201}, "external id of 201 characters"),
    ({"created_at": datetime(1900, 1, 1, tzinfo=timezone.utc)}, "before any channel existed"),
    ({"refund_amount": 2**70}, "amount"),
    ({"lines": tuple(ReturnLine(external_id=f"L{i}", quantity=1) for i in range(pages.LINE_LIMIT + 1))},
     f"retsync stores at most {pages.LINE_LIMIT} lines"),
])
def test_records_the_store_cannot_take_as_they_are_are_quarantined_with_why(
        db: Engine, tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    ScriptedConnector.returns[2] = _poisoned(2, **change)
    _engine(db, tmp_path).sync()
    assert _stored(db) == {"R0", "R1", "R3"}
    [held] = _quarantine(db).values()
    assert reason in held.reason and held.is_open


def test_a_page_the_database_refuses_is_retried_record_by_record(
        db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever slips past the checks before the write (here: the check switched off) is found by writing each
    record alone in a transaction that is rolled back; only the refused one is quarantined."""
    monkeypatch.setattr("retsync.sync.engine.refusal", lambda record: None)
    ScriptedConnector.returns[3] = _poisoned(3, lines=(ReturnLine(external_id="R3-L0", quantity=10**30),))

    _engine(db, tmp_path).sync()

    assert _stored(db) == {"R0", "R1", "R2"}
    held = _quarantine(db)["R3"]
    assert held.reason.startswith("the database refused it: ") and "INSERT" not in held.reason
    assert _cursor(db) == {"offset": 4}


def test_a_refusal_no_single_record_explains_fails_the_page_with_a_message_about_data(
        db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(db, tmp_path)
    monkeypatch.setattr("retsync.sync.engine.refusal", lambda record: None)
    calls = {"n": 0}
    real_store = engine.writer.store

    def store_refusing_pages(conn: Any, orders: Any, returns: Any, now: Any) -> Any:
        calls["n"] += 1
        if len(returns) > 1:  # only whole pages are refused: every record alone is fine
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real_store(conn, orders, returns, now)

    monkeypatch.setattr(engine.writer, "store", store_refusing_pages)
    with pytest.raises(OverflowError) as caught:
        engine.sync()
    assert _stored(db) == set() and _cursor(db) is None
    message = describe_failure(caught.value, "retsync.db")
    assert message.startswith("a record could not be stored") and "cannot be used" not in message


def test_a_record_stored_normally_later_resolves_its_quarantine(db: Engine, tmp_path: Path) -> None:
    good = make_return(1)
    ScriptedConnector.returns[1] = _poisoned(1, lines=(ReturnLine(external_id="R1-L0", quantity=10**30),))
    _engine(db, tmp_path).sync()
    assert _quarantine(db)["R1"].is_open

    ScriptedConnector.returns[1] = good  # the channel fixed it; a scripted re-read from the start
    with db.begin() as conn:
        conn.execute(text("DELETE FROM sync_cursors"))
    _engine(db, tmp_path).sync()

    assert "R1" in _stored(db)
    held = _quarantine(db)["R1"]
    assert not held.is_open and held.resolved_at is not None


def test_quarantined_returns_are_asked_for_again_with_the_open_returns(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.returns[1] = _poisoned(1, lines=(ReturnLine(external_id="R1-L0", quantity=10**30),))
    engine = _engine(db, tmp_path)
    engine.sync()
    assert "R1" in engine._open_returns()


def test_a_set_aside_payload_is_capped_and_holds_no_secret_looking_key(db: Engine, tmp_path: Path) -> None:
    raw = {"id": "X1", "access_token": "tok-123", "nested": {"Authorization": "Bearer abc"}, "blob": "b" * 50_000}

    class Sieved(ScriptedConnector):
        def pull(self, stream: Any, context: Any) -> Any:
            for page in super().pull(stream, context):
                yield type(page)(returns=page.returns, orders=page.orders, cursor=page.cursor,
                                 quarantined=[Quarantined("return", "X1", "missing field 'returnId'", raw)])

    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    connector = Sieved("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings, connector=connector).sync()

    held = _quarantine(db)["X1"]
    assert "tok-123" not in held.payload and "Bearer abc" not in held.payload
    assert len(held.payload) <= PAYLOAD_LIMIT + 10 and held.payload_size > 50_000
    assert held.times_seen == 1


def test_retsync_channels_shows_what_is_in_quarantine(db: Engine, db_url: str, tmp_path: Path,
                                                      extra_connectors: dict, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    extra_connectors.update(scripted=ScriptedConnector)
    ScriptedConnector.returns[1] = _poisoned(1, lines=(ReturnLine(external_id="R1-L0", quantity=10**30),))
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[daemon]\nstate_dir = "{tmp_path}"\n'
                      '[channels.shop]\nconnector = "scripted"\n')
    assert main(["--config", str(config), "sync"]) == 0
    capsys.readouterr()

    assert main(["--config", str(config), "channels"]) == 0
    out = capsys.readouterr().out
    assert "quarantine         1 records set aside" in out
    assert "return R1: line R1-L0: quantity" in out and "out of range" in out

    assert main(["--config", str(config), "channels", "--format", "json"]) == 0
    [shop] = json.loads(capsys.readouterr().out)
    assert shop["quarantine"]["open"] == 1 and shop["quarantine"]["newest"][0]["external_id"] == "R1"


def test_an_order_fetched_alone_that_cannot_be_read_counts_as_not_found_and_is_logged() -> None:
    from structlog.testing import capture_logs

    from retsync.kit.payload import count
    from retsync.kit.records import map_fetched

    with capture_logs() as logs:
        assert map_fetched("order", {"qty": "1e30"}, lambda body: count(body["qty"]), {"qty": "1e30"},
                           external_id="O9") is None
    [line] = [entry for entry in logs if entry["event"] == "fetched_record_unreadable"]
    assert line["external_id"] == "O9" and "not a quantity" in line["reason"]


def test_a_nul_character_postgresql_refuses_is_dropped_on_both_databases(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.returns[0] = _poisoned(0, channel_reason="too\x00 small", carrier="Post\x00NL")
    _engine(db, tmp_path).sync()
    assert _rows(db, "SELECT channel_reason, carrier FROM returns WHERE external_id = 'R0'") == [("too small", "PostNL")]
    assert _quarantine(db) == {}


def test_a_page_repeating_a_record_stores_its_last_copy_and_sets_aside_a_poison_copy(
        db: Engine, tmp_path: Path) -> None:
    poison = _poisoned(1, lines=(ReturnLine(external_id="R1-L0", quantity=10**30),))
    ScriptedConnector.returns[:] = [make_return(0), poison, make_return(1), make_return(2)]
    _engine(db, tmp_path).sync()
    assert _stored(db) == {"R0", "R1", "R2"}
    assert not _quarantine(db)["R1"].is_open, "the readable copy of R1 was stored"
