"""The sync engine: pages and cursors move together, whatever breaks when."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from retsync.kit.contract import Page, PullContext, Runtime, Stream
from retsync.kit.model import DecisionKind, ReturnLine, ReturnStatus
from retsync.kit.settings import ChannelSettings
from retsync.reconcile.linking import link_returns
from retsync.store import channels as channel_store
from retsync.store.channels import ensure_channel
from retsync.store.models import Decision, Order, OrderLine, Return, ReturnEvent, SyncCursor
from retsync.store.models import ReturnLine as ReturnLineRow
from retsync.sync.engine import SyncEngine
from tests.fakes import BASE, Boom, ScriptedConnector, make_return


def _engine(db: Engine, tmp_path: Path, **kwargs: object) -> SyncEngine:
    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    connector = ScriptedConnector("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    return SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings, connector=connector,
                      **kwargs)  # type: ignore[arg-type]


def _count(db: Engine, model: type) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def _cursor(db: Engine) -> dict | None:
    with db.connect() as conn:
        return conn.execute(select(SyncCursor.cursor)).scalar()


def _stored_ids(db: Engine) -> list[str]:
    with db.connect() as conn:
        return sorted(conn.execute(select(Return.external_id)).scalars())


def test_backfill_stores_every_return_line_and_order_once(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(35)
    result = _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    assert result.pages == 4 and result.stats.returns_new == 35
    assert _count(db, Return) == 35 and _count(db, ReturnLineRow) == 70
    assert _count(db, Order) == 35 and _count(db, OrderLine) == 70
    assert _cursor(db) == {"offset": 35}


def test_re_pull_updates_and_never_duplicates(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(12)
    engine = _engine(db, tmp_path)
    engine.sync_stream(Stream.RETURNS)
    events_before = _count(db, ReturnEvent)
    with db.begin() as conn:  # start over: the whole history is re-read
        conn.execute(text("DELETE FROM sync_cursors"))
    ScriptedConnector.returns[3] = make_return(3, ReturnStatus.RECEIVED)
    result = engine.sync_stream(Stream.RETURNS)
    assert (result.stats.returns_new, result.stats.returns_updated, result.stats.returns_unchanged) == (0, 1, 11)
    assert _count(db, Return) == 12 and _count(db, ReturnLineRow) == 24
    with db.connect() as conn:
        status = conn.execute(select(Return.status).where(Return.external_id == "R3")).scalar_one()
        events = conn.execute(select(ReturnEvent.old_value, ReturnEvent.new_value, ReturnEvent.source)
                              .order_by(ReturnEvent.id.desc()).limit(1)).one()
    assert status == "received"
    assert _count(db, ReturnEvent) == events_before + 1
    assert tuple(events) == ("requested", "received", "channel:shop")


@pytest.mark.parametrize("broken_page", [0, 1, 2, 3])
def test_interrupted_between_pages_resumes_without_loss_or_duplicate(db: Engine, tmp_path: Path,
                                                                     broken_page: int) -> None:
    ScriptedConnector.reset(35)
    ScriptedConnector.fail_at_page = broken_page
    with pytest.raises(Boom):
        _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    stored = _count(db, Return)
    assert stored == broken_page * 10, "exactly the pages before the break are stored"
    assert _cursor(db) == ({"offset": stored} if stored else None), "the cursor never passes unstored data"
    ScriptedConnector.fail_at_page = None
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    assert _stored_ids(db) == sorted(f"R{i}" for i in range(35))
    assert _count(db, ReturnLineRow) == 70


def test_crash_inside_the_page_transaction_rolls_back_page_and_cursor(db: Engine, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ScriptedConnector.reset(30)
    calls = {"n": 0}
    real_save = channel_store.save_cursor

    def dying_save(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second page's rows are written, the process dies before the cursor
            raise KeyboardInterrupt("killed mid-transaction")
        real_save(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("retsync.sync.engine.save_cursor", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    assert _count(db, Return) == 10 and _cursor(db) == {"offset": 10}
    monkeypatch.setattr("retsync.sync.engine.save_cursor", real_save)
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    assert _stored_ids(db) == sorted(f"R{i}" for i in range(30))


def test_interrupted_right_after_a_commit_keeps_that_page(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(30)

    def die_after_second(stream: Stream, pages: int) -> None:
        if pages == 2:
            raise KeyboardInterrupt("killed after commit")

    with pytest.raises(KeyboardInterrupt):
        _engine(db, tmp_path, after_page=die_after_second).sync_stream(Stream.RETURNS)
    assert _count(db, Return) == 20 and _cursor(db) == {"offset": 20}
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    assert _count(db, Return) == 30


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_pages_are_stored_as_they_come_not_collected(db: Engine, tmp_path: Path, prefetch: int) -> None:
    """Page n is in the database before page n + prefetch + 2 is asked for (one page being stored, `prefetch`
    waiting, one being fetched): memory cannot grow with history. Without prefetch, before n+1 is asked for."""
    seen_stored: list[int] = []

    class Watching(ScriptedConnector):
        def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
            for n in range(12):
                seen_stored.append(_count(db, Return))
                yield Page(returns=[make_return(n)], cursor={"offset": n + 1})

    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    connector = Watching("shop", ChannelSettings(connector="scripted", prefetch_pages=prefetch),
                         Runtime(state_dir=tmp_path))
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
               connector=connector).sync_stream(Stream.RETURNS)
    assert _count(db, Return) == 12
    if prefetch == 0:
        assert seen_stored == list(range(12))
    assert all(stored >= n - prefetch - 1 for n, stored in enumerate(seen_stored)), seen_stored


def test_times_are_utc_aware_and_unknown_channel_values_are_kept(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(1)
    weird = make_return(0).model_copy(update={"channel_status": "WAREHOUSE_SOMETHING_NEW", "refund_amount": 1999})
    ScriptedConnector.returns = [weird]
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    with db.connect() as conn:
        row = conn.execute(select(Return.created_at, Return.channel_status, Return.refund_amount)).one()
    assert row.created_at == BASE and row.created_at.tzinfo == timezone.utc
    assert row.channel_status == "WAREHOUSE_SOMETHING_NEW" and row.refund_amount == 1999


def test_decisions_reported_by_the_channel_are_history_not_outbox_work(db: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(1)
    record = make_return(0)
    decided_line = ReturnLine(**{**record.lines[0].model_dump(), "channel_decision": DecisionKind.ACCEPT})
    ScriptedConnector.returns = [record.model_copy(update={"lines": (decided_line, record.lines[1]),
                                                           "revision": "decided"})]
    engine = _engine(db, tmp_path)
    engine.sync_stream(Stream.RETURNS)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM sync_cursors"))
    engine.sync_stream(Stream.RETURNS)  # seen again: still one decision
    with db.connect() as conn:
        rows = conn.execute(select(Decision.kind, Decision.origin, Decision.state)).all()
    assert [tuple(r) for r in rows] == [("accept", "channel", "synced")]


@pytest.mark.parametrize("link_by, method", [("key", "channel_key"), ("ean", "ean"), ("sku", "sku")])
def test_return_lines_link_to_order_lines(db: Engine, tmp_path: Path, link_by: str, method: str) -> None:
    ScriptedConnector.reset(3)
    ScriptedConnector.returns = [make_return(i, link_by=link_by) for i in range(3)]
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    result = link_returns(db)
    assert result.orders_linked == 3 and result.lines_linked == 6
    with db.connect() as conn:
        rows = conn.execute(text("""
            SELECT rl.external_id, rl.link_method, ol.external_id AS order_line
            FROM return_lines rl JOIN order_lines ol ON ol.id = rl.order_line_id ORDER BY rl.external_id""")).all()
    assert [(r.external_id, r.link_method, r.order_line) for r in rows][:2] == [
        ("R0-L0", method, "O0-L0"), ("R0-L1", method, "O0-L1")]
    assert link_returns(db).lines_linked == 0, "linking is idempotent"


def test_the_marketplace_behind_a_feed_platform_return_is_in_both_views(db: Engine, tmp_path: Path) -> None:
    """A return Channable passes on from Amazon says so in v_returns and v_return_lines; one the channel itself
    sells leaves the column empty."""
    ScriptedConnector.reset(2)
    ScriptedConnector.returns[0] = make_return(0).model_copy(update={"marketplace": "amazon"})
    _engine(db, tmp_path).sync_stream(Stream.RETURNS)
    with db.connect() as conn:
        returns = dict(conn.execute(text("SELECT external_id, marketplace FROM v_returns")).all())
        lines = set(conn.execute(text("SELECT external_line_id, marketplace FROM v_return_lines")).all())
    assert returns == {"R0": "amazon", "R1": None}
    assert lines == {("R0-L0", "amazon"), ("R0-L1", "amazon"), ("R1-L0", None), ("R1-L1", None)}
