"""The reporting views give the hand-worked figures of the planned history, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Date, Engine, inspect, text

from retsync.store.db import make_engine, upgrade
from retsync.store.models import UTCDateTime
from tests.reporting.conftest import History, utc

NEW_VIEWS = {"v_return_flags", "v_handling_times", "v_returns_daily", "v_return_reasons", "v_sku_returns",
             "v_customers"}
TIMES = ("created_at", "received_at", "decided_at", "refunded_at", "flagged_at", "resolved_at", "first_order_at",
         "last_order_at", "first_return_at")


def rows(db: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Read a view as a reporting tool would, with times as aware UTC and days as dates on both databases."""
    types: dict[str, Any] = {name: UTCDateTime() for name in TIMES}
    if "v_returns_daily" in sql:
        types["day"] = Date()
    query = text(sql).columns(**types)
    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            conn.execute(text("SET TIME ZONE 'Asia/Tokyo'"))  # the views must not depend on the session's zone
        return [dict(r._mapping) for r in conn.execute(query, params)]


def test_migration_creates_and_drops_the_views(db: Engine) -> None:
    assert NEW_VIEWS <= set(inspect(db).get_view_names())
    from alembic import command

    from retsync.store.db import alembic_config

    command.downgrade(alembic_config(db), "0005")
    inspect_after = inspect(db)
    assert not NEW_VIEWS & set(inspect_after.get_view_names())
    assert {"v_returns", "v_return_lines"} <= set(inspect_after.get_view_names())
    upgrade(db)
    assert NEW_VIEWS <= set(inspect(db).get_view_names())


def test_handling_times_in_hours(history: History) -> None:
    got = {r["return_id"]: r for r in rows(history.db, "SELECT * FROM v_handling_times")}
    expected = {  # created→received, received→decided, decided→refunded, created→refunded
        "B0": (24, 12, 6, 42), "B1": (72, 24, 6, 102), "B2": (None, None, None, None),
        "A0": (48, 12, 12, 72), "A1": (None, None, None, None), "A2": (None, None, None, 48),
    }
    assert set(got) == set(history.returns.values())
    for name, hours in expected.items():
        row = got[history.returns[name]]
        assert (row["created_to_received_hours"], row["received_to_decided_hours"],
                row["decided_to_refunded_hours"], row["created_to_refunded_hours"]) == hours, name
        assert row["channel"] == ("bol" if name[0] == "B" else "allegro")
    b0 = got[history.returns["B0"]]
    assert b0["created_at"] == utc("2026-10-05 10:00") and b0["refunded_at"] == utc("2026-10-07 04:00")
    assert b0["status"] == "refunded" and isinstance(b0["created_to_refunded_hours"], float)


def test_returns_daily_per_channel_and_currency_on_the_utc_day(history: History) -> None:
    got = [(r["day"], r["channel"], r["currency"], r["returns"], r["units"], r["refunded_returns"],
            r["refunded_amount"]) for r in rows(history.db, "SELECT * FROM v_returns_daily ORDER BY day, channel")]
    assert got == [
        (date(2026, 10, 5), "allegro", "PLN", 1, 1, 1, 38990),
        (date(2026, 10, 5), "bol", "EUR", 2, 3, 2, 3500),
        (date(2026, 10, 12), "bol", "EUR", 1, 1, 0, 0),
        (date(2026, 10, 13), "allegro", "PLN", 1, 1, 0, 0),
        (date(2026, 10, 14), "allegro", "PLN", 1, 1, 1, 12900),  # 23:30 UTC is the 15th in Tokyo: still the 14th
    ]


def test_return_reasons(history: History) -> None:
    got = [(r["channel"], r["reason"], r["channel_reason"], r["returns"], r["units"])
           for r in rows(history.db, "SELECT * FROM v_return_reasons ORDER BY channel, reason")]
    assert got == [
        ("allegro", "damaged", "DAMAGED", 1, 1),
        ("allegro", "wrong_item", "INCOMPLETE", 2, 2),
        ("bol", "defective", "Artikel werkt niet", 2, 3),
        ("bol", "wrong_size", "Verkeerde maat", 1, 1),
    ]


def test_sku_returns_per_channel_and_overall(history: History) -> None:
    got = {(r["channel"], r["sku"]): (r["ean"], r["title"], r["units_sold"], r["units_returned"], r["return_rate"])
           for r in rows(history.db, "SELECT * FROM v_sku_returns")}
    assert got == {
        ("bol", "SKU-P1"): ("1111111111111", "Desk lamp", 3, 2, pytest.approx(2 / 3)),
        ("bol", "SKU-P2"): ("2222222222222", "Coffee mug", 4, 2, 0.5),
        ("allegro", "SKU-P1"): (None, "Desk lamp", 2, 1, 0.5),
        ("allegro", "SKU-P3"): (None, "Winter jacket", 2, 2, 1.0),
        # channel NULL: all channels together; P1 joins bol's EAN-carrying lines and Allegro's SKU-only ones
        (None, "SKU-P1"): ("1111111111111", "Desk lamp", 5, 3, 0.6),
        (None, "SKU-P2"): ("2222222222222", "Coffee mug", 4, 2, 0.5),
        (None, "SKU-P3"): (None, "Winter jacket", 2, 2, 1.0),
    }


def test_sku_without_sku_is_keyed_by_ean_and_unsold_products_have_no_rate(history: History) -> None:
    with history.db.begin() as conn:
        conn.execute(text("UPDATE return_lines SET sku = NULL, ean = '9999999999999', title = 'Unknown' "
                          "WHERE return_id = :id"), {"id": history.returns["B2"]})
        conn.execute(text("UPDATE order_lines SET sku = NULL, ean = NULL WHERE id = "
                          "(SELECT order_line_id FROM return_lines WHERE return_id = :id)"), {"id": history.returns["B2"]})
    got = {(r["channel"], r["sku"], r["ean"]): (r["units_sold"], r["units_returned"], r["return_rate"])
           for r in rows(history.db, "SELECT * FROM v_sku_returns WHERE channel = 'bol'")}
    assert got == {("bol", "SKU-P1", "1111111111111"): (2, 1, 0.5),
                   ("bol", "SKU-P2", "2222222222222"): (4, 2, 0.5),
                   ("bol", None, "9999999999999"): (0, 1, None)}


def test_return_flags_open_and_resolved(history: History) -> None:
    got = {r["flag_id"]: r for r in rows(history.db, "SELECT * FROM v_return_flags")}
    overdue, shipped = got[history.flags["overdue"]], got[history.flags["not_shipped"]]
    assert (overdue["return_id"], overdue["channel"], overdue["code"], overdue["line_id"], bool(overdue["is_open"]),
            overdue["resolved_at"], overdue["flagged_at"]) == (
        history.returns["B1"], "bol", "refund_overdue", None, True, None, utc("2026-10-22 06:00"))
    assert overdue["detail"].startswith("received 2026-10-08")
    assert (shipped["return_id"], shipped["channel"], shipped["code"], bool(shipped["is_open"]),
            shipped["resolved_at"]) == (history.returns["A1"], "allegro", "not_shipped_by_customer", False,
                                        utc("2026-10-22 08:00"))
    assert shipped["line_id"] is not None and shipped["external_line_id"]
    with history.db.connect() as conn:
        external = conn.execute(text("SELECT external_id FROM returns WHERE id = :id"),
                                {"id": history.returns["A1"]}).scalar_one()
    assert shipped["external_id"] == external


def test_customers_and_who_bought_again(history: History) -> None:
    got = {r["customer_group_id"]: r for r in rows(history.db, "SELECT * FROM v_customers")}
    assert set(got) == set(history.groups.values())

    def fig(group: str) -> tuple[Any, ...]:
        r = got[history.groups[group]]
        return (r["channels"], r["orders"], r["returns"], r["orders_after_first_return"],
                bool(r["repurchased_after_return"]))

    assert fig("G1") == (2, 2, 2, 1, True)   # bol return 10-05, Allegro order 10-10
    assert fig("G2") == (1, 1, 1, 0, False)
    assert fig("G3") == (1, 2, 2, 1, True)   # Allegro return 10-05, order 10-06
    assert fig("G4") == (1, 1, 0, 0, False)  # an order, never a return
    g1 = got[history.groups["G1"]]
    assert (g1["first_return_at"], g1["first_order_at"], g1["last_order_at"]) == (
        utc("2026-10-05 10:00"), utc("2026-10-01 12:00"), utc("2026-10-10 12:00"))


def test_views_agree_with_each_other(history: History) -> None:
    """Totals seen through different views are the same figures."""
    daily = rows(history.db, "SELECT * FROM v_returns_daily")
    reasons = rows(history.db, "SELECT * FROM v_return_reasons")
    overall = rows(history.db, "SELECT * FROM v_sku_returns WHERE channel IS NULL")
    assert sum(r["returns"] for r in daily) == 6 == sum(r["returns"] for r in reasons)
    assert sum(r["units"] for r in daily) == 7 == sum(r["units"] for r in reasons) == sum(
        r["units_returned"] for r in overall)


def test_a_fresh_database_reads_every_view_empty(db: Engine) -> None:
    for view in sorted(NEW_VIEWS):
        assert rows(db, f"SELECT * FROM {view}") == [], view


def test_views_on_a_database_migrated_step_by_step(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    upgrade(engine, "0005")
    upgrade(engine)
    assert NEW_VIEWS <= set(inspect(engine).get_view_names())
    engine.dispose()

