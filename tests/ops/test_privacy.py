"""Personal data on a schedule and on request: retention, export and forget, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text, update
from structlog.testing import capture_logs

from retsync.app.cli import main
from retsync.config import Settings
from retsync.kit.model import Customer, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.ops.privacy import apply_retention, export_person, forget_person
from retsync.reconcile.customers import group_customers
from retsync.store.channels import ensure_channel
from retsync.store.models import CustomerKey, Notification, QuarantinedRecord
from retsync.store.models import Order as OrderRow
from retsync.store.models import Return as ReturnRow
from retsync.store.models import ReturnLine as ReturnLineRow
from retsync.store.pages import PageWriter
from tests.ops.conftest import config_file

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=3 * 365)
TWO_YEARS = timedelta(days=730)
ANNA = Customer(email="Anna.Kowalska@example.pl", name="Anna Kowalska", phone="+48 600 100 200", postcode="00-950")
BOB = Customer(email="bob@example.com", name="Bob Builder", phone="+31 6 1234 5678", postcode="1011 AB")


def _stored(db: Engine) -> dict[str, int]:
    """Anna: an old closed return on an old order, and a new open return (her shop alias) on a new order; Bob: an
    old closed return. What retsync stores of it, customer groups and a customer e-mail included."""
    channel = ensure_channel(db, "shop", "woocommerce", OLD)
    old_order = Order(external_id="O1", placed_at=OLD, currency="EUR", customer=ANNA,
                      lines=(OrderLine(external_id="1", sku="SHOE", quantity=1, unit_price=6995, currency="EUR"),))
    new_order = Order(external_id="O2", placed_at=NOW - timedelta(days=5), customer=ANNA.model_copy(
        update={"email": "anna.kowalska+shop@EXAMPLE.pl"}))
    bob_order = Order(external_id="O3", placed_at=OLD, customer=BOB)
    returns = [
        Return(external_id="R1", order_external_id="O1", status=ReturnStatus.REFUNDED, reason=ReturnReason.WRONG_SIZE,
               channel_reason="za male, Anna K. tel 600100200", created_at=OLD, refunded_at=OLD, refund_amount=6995,
               currency="EUR", customer=ANNA, lines=(ReturnLine(external_id="L1", quantity=1,
                                                                channel_reason="too small",
                                                                customer_comment="call me on 600 100 200"),)),
        Return(external_id="R2", order_external_id="O2", status=ReturnStatus.REQUESTED, created_at=NOW,
               channel_reason="broken", customer=new_order.customer,
               lines=(ReturnLine(external_id="L2", quantity=1),)),
        Return(external_id="R3", order_external_id="O3", status=ReturnStatus.CLOSED, created_at=OLD,
               channel_reason="did not like it", customer=BOB),
    ]
    writer = PageWriter(channel, "test")
    with db.begin() as conn:
        writer.store(conn, [old_order, bob_order], [r for r in returns if r.created_at == OLD], OLD)
        writer.store(conn, [new_order], [r for r in returns if r.created_at == NOW], NOW)
    group_customers(db, NOW)
    with db.begin() as conn:
        ids = {row.external_id: int(row.id) for row in conn.execute(select(ReturnRow.external_id, ReturnRow.id))}
        ids |= {row.external_id: int(row.id) for row in conn.execute(select(OrderRow.external_id, OrderRow.id))}
        conn.execute(update(ReturnRow).where(ReturnRow.external_id.in_(["R1", "R3"])).values(updated_at=OLD))
        conn.execute(update(OrderRow).where(OrderRow.external_id.in_(["O1", "O3"])).values(updated_at=OLD))
        conn.execute(insert(Notification).values(
            event_key="customer_refunded:R1", transport="email", audience="customer", kind="customer_refunded",
            channel_id=channel, return_id=ids["R1"], recipient="Anna Kowalska <anna.kowalska@example.pl>",
            language="pl", payload={"customer_name": "Anna Kowalska"}, state="sent", attempts=1, created_at=OLD,
            updated_at=OLD, sent_at=OLD))
        conn.execute(insert(QuarantinedRecord).values(
            channel_id=channel, stream="returns", kind="return", record_key="R9", external_id="R9", reason="bad",
            payload='{"email": "anna.kowalska@example.pl"}', payload_size=40, times_seen=1, first_seen_at=OLD,
            last_seen_at=OLD, resolved_at=OLD))
    return ids


def _personal(db: Engine, external_id: str) -> tuple:
    with db.connect() as conn:
        row = conn.execute(select(ReturnRow.customer_email, ReturnRow.customer_name, ReturnRow.customer_phone,
                                  ReturnRow.customer_postcode, ReturnRow.channel_reason)
                           .where(ReturnRow.external_id == external_id)).one()
    return tuple(row)


def test_retention_erases_what_closed_long_ago_and_keeps_the_figures(db: Engine, tmp_path: Path) -> None:
    ids = _stored(db)
    with db.connect() as conn:
        groups_before = dict(conn.execute(select(ReturnRow.external_id, ReturnRow.customer_group_id)).all())
        customers_before = conn.execute(text("SELECT COUNT(*) FROM v_customers")).scalar_one()
    erased = apply_retention(db, TWO_YEARS, tmp_path, NOW)
    assert (erased.returns, erased.orders, erased.notifications, erased.quarantined) == (2, 2, 1, 1)
    assert _personal(db, "R1") == (None,) * 5 and _personal(db, "R3") == (None,) * 5
    assert _personal(db, "R2")[0] == "anna.kowalska+shop@EXAMPLE.pl", "an open return keeps its customer"
    with db.connect() as conn:
        line = conn.execute(select(ReturnLineRow.channel_reason, ReturnLineRow.customer_comment)
                            .where(ReturnLineRow.return_id == ids["R1"])).one()
        orders = dict(conn.execute(select(OrderRow.external_id, OrderRow.customer_email)).all())
        notification = conn.execute(select(Notification.recipient, Notification.payload)).one()
        payload = conn.execute(select(QuarantinedRecord.payload)).scalar_one()
        keys = conn.execute(select(CustomerKey.key, CustomerKey.purchase)).all()
        summary = conn.execute(text("SELECT reason, status, refund_amount, customer_email FROM v_returns "
                                    "WHERE external_id = 'R1'")).one()
        groups_after = dict(conn.execute(select(ReturnRow.external_id, ReturnRow.customer_group_id)).all())
        customers_after = conn.execute(text("SELECT COUNT(*) FROM v_customers")).scalar_one()
    assert tuple(line) == (None, None)
    assert orders == {"O1": None, "O2": "anna.kowalska+shop@EXAMPLE.pl", "O3": None}
    assert tuple(notification) == (None, {}) and payload is None
    assert tuple(summary) == ("wrong_size", "refunded", 6995, None), "the figures stay"
    assert groups_after == groups_before and customers_after == customers_before, "customer groups keep their link"
    erased_keys = [key for key, purchase in keys if purchase in (f"o:{ids['O1']}", f"o:{ids['O3']}")]
    assert erased_keys and all(":#" in key for key in erased_keys), erased_keys
    assert not any("anna.kowalska@example.pl" in key or "bob@" in key for key, _ in keys)
    assert stat.S_IMODE((tmp_path / "privacy.key").stat().st_mode) == 0o600

    again = apply_retention(db, TWO_YEARS, tmp_path, NOW)
    assert (again.returns, again.orders, again.quarantined) == (0, 0, 0), "nothing is erased twice"
    with db.begin() as conn:  # a later pull of a changed record brings the data back
        conn.execute(update(ReturnRow).where(ReturnRow.id == ids["R1"]).values(
            customer_email="anna.kowalska@example.pl", updated_at=NOW))
    assert apply_retention(db, TWO_YEARS, tmp_path, NOW).returns == 1
    assert _personal(db, "R1")[0] is None


def test_export_and_forget_one_person(db: Engine, tmp_path: Path) -> None:
    ids = _stored(db)
    found = export_person(db, "ANNA.KOWALSKA@example.pl")
    json.dumps(found)
    assert sorted(r["external_id"] for r in found["returns"]) == ["R1", "R2"]
    assert sorted(o["external_id"] for o in found["orders"]) == ["O1", "O2"]
    r1 = next(r for r in found["returns"] if r["external_id"] == "R1")
    assert r1["channel"] == "shop" and r1["lines"][0]["customer_comment"] == "call me on 600 100 200"
    assert [n["recipient"] for n in found["notifications"]] == ["Anna Kowalska <anna.kowalska@example.pl>"]
    assert len(found["quarantined_records"]) == 1 and found["erased"] == []

    with capture_logs() as logs:
        erased = forget_person(db, "anna.kowalska@example.pl", tmp_path, NOW)
    assert (erased.returns, erased.orders) == (2, 2)
    assert _personal(db, "R1") == (None,) * 5 and _personal(db, "R2") == (None,) * 5
    assert _personal(db, "R3")[0] == "bob@example.com", "nobody else's data goes"
    line = next(entry for entry in logs if entry["event"] == "personal_data_erased")
    assert line["reason"] == "forget" and "anna" not in json.dumps(logs).lower()
    after = export_person(db, "anna.kowalska@example.pl")
    assert after["returns"] == [] and after["orders"] == [], "nothing left to find by the address"
    with db.connect() as conn:
        kinds = sorted(conn.execute(text("SELECT record_kind || ':' || reason FROM personal_data_erasures")).scalars())
    assert kinds == ["order:forget", "order:forget", "return:forget", "return:forget"]
    assert ids


def test_privacy_commands(db: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _stored(db)
    path = config_file(tmp_path, db_url, {})
    assert main(["--config", str(path), "privacy", "export", "--email", "bob@example.com"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [r["external_id"] for r in exported["returns"]] == ["R3"]
    assert main(["--config", str(path), "privacy", "export", "--email", "bob@example.com", "--output",
                 str(tmp_path / "bob.json")]) == 0
    assert stat.S_IMODE((tmp_path / "bob.json").stat().st_mode) == 0o600
    assert main(["--config", str(path), "privacy", "forget", "--email", "bob@example.com"]) == 0
    out = capsys.readouterr().out
    assert "erased the personal data of 1 return, 1 order" in out
    assert _personal(db, "R3") == (None,) * 5
    assert main(["--config", str(path), "privacy", "forget", "--email", "not an address"]) == 2
    assert "is not an e-mail address" in capsys.readouterr().err


def test_retain_personal_data_reads_years(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert Settings(privacy={"retain_personal_data": "2y"}).privacy.retain_personal_data == timedelta(days=730)
    assert Settings(privacy={"retain_personal_data": "18mo"}).privacy.retain_personal_data == timedelta(days=540)
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {},
                       extra='[privacy]\nretain_personal_data = "soon"\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "[privacy] key `retain_personal_data`: 'soon' is not a retention period; write \"2y\"" in err


def test_the_daemon_runs_the_retention_job(db: Engine, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from apscheduler.schedulers.background import BackgroundScheduler

    from retsync.ops.sdnotify import SystemdNotifier
    from retsync.ops.service import ServiceHooks

    _stored(db)
    settings = Settings(privacy={"retain_personal_data": "2y"}, daemon={"state_dir": str(tmp_path)})
    runner = SimpleNamespace(config=SimpleNamespace(settings=settings), connectors={}, db=db, clock=lambda: NOW)
    scheduler = BackgroundScheduler(timezone="UTC")
    ServiceHooks(runner, SystemdNotifier({})).prepare(scheduler)
    job = scheduler.get_job("privacy:retention")
    assert job is not None and job.trigger.interval == timedelta(hours=24)
    job.func()
    assert _personal(db, "R1") == (None,) * 5 and _personal(db, "R2")[0] is not None


def test_forget_matches_the_address_not_a_pattern(db: Engine, tmp_path: Path) -> None:
    _stored(db)
    forget_person(db, "anna_kowalska@example.pl", tmp_path, NOW)  # `_` is a LIKE wildcard; it must not match `.`
    assert _personal(db, "R1")[0] == "Anna.Kowalska@example.pl"
    with db.connect() as conn:
        assert conn.execute(select(QuarantinedRecord.payload)).scalar_one() is not None
