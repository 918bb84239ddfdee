"""Each anomaly flag appears exactly when its rule holds, and is resolved when it stops holding.

Histories come from the sandbox emulators through the daemon's real path (pull, link, group, flag); the
emulators are then changed the way a customer, the shop's staff or the marketplace would change them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.cli import main
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import DecisionRefused, record_decision
from tests.reconcile.conftest import Fleet


def _wc_return(fleet: Fleet, quantity: int | None = None) -> tuple[int, int]:
    """A customer of the shop asks to return the first item of a fresh order: (order id, bought quantity)."""
    shop = fleet.emulators["shop"]
    order_id = shop.request_return()  # type: ignore[attr-defined]
    bought = int(shop.order(order_id)["line_items"][0]["quantity"])  # type: ignore[attr-defined]
    if quantity is not None:
        shop.request_return(order_id, quantity=quantity)  # type: ignore[attr-defined]
    return order_id, bought


def test_order_not_found_until_the_channel_returns_the_order(fleet: Fleet) -> None:
    bol = fleet.add("bol", "bol")
    fleet.sync()
    assert fleet.flagged("order_not_found") == set(), "every seeded return's order is served by the sandbox"

    added = bol.add_return()  # type: ignore[attr-defined]
    order_id = added["returnItems"][0]["orderId"]
    bol.inject("status", status=404, path=f"/retailer/orders/{order_id}", times=None)
    fleet.sync()
    assert fleet.flagged("order_not_found") == {f"bol/{added['returnId']}"}
    asked = [r for r in bol.requests if r.path == f"/retailer/orders/{order_id}"]

    fleet.sync()
    assert [r for r in bol.requests if r.path == f"/retailer/orders/{order_id}"] == asked, \
        "an order the channel said it does not have is not asked for on every pull"

    bol.clear_faults()
    fleet.clock.advance(days=1, hours=1)
    fleet.sync()
    assert fleet.flagged("order_not_found") == set(), "the order fetched a day later resolves the flag"
    with fleet.db.connect() as conn:
        linked = conn.execute(text("SELECT order_id IS NOT NULL FROM returns WHERE external_id = :e"),
                              {"e": added["returnId"]}).scalar_one()
        resolved = conn.execute(text("SELECT COUNT(*) FROM v_return_flags WHERE code = 'order_not_found' "
                                     "AND resolved_at IS NOT NULL")).scalar_one()
    assert linked and resolved == 1


def test_quantity_exceeds_ordered_and_decide_refuses_without_force(fleet: Fleet, tmp_path: Path, db_url: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet.add("shop", "woocommerce")
    order_id, bought = _wc_return(fleet)
    fleet.emulators["shop"].request_return(order_id, quantity=bought + 1)  # type: ignore[attr-defined]
    fleet.sync()
    flags = fleet.open_flags("quantity_exceeds_ordered")
    assert {(ref, line != "") for ref, _, line in flags} == {(f"shop/{order_id}", True)}, \
        "flagged on the returned line, only for the over-returned order"

    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[daemon]\nstate_dir = "{tmp_path}"\n')
    code = main(["--config", str(config), "decide", f"shop/{order_id}", "accept"])
    err = capsys.readouterr().err
    assert code == 1
    assert "quantity_exceeds_ordered" in err and "--force" in err and f"add up to {bought + 1} units" in err
    with fleet.db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM decisions WHERE origin = 'merchant'")).scalar_one() == 0
    assert main(["--config", str(config), "decide", f"shop/{order_id}", "reject", "--note", "counted twice"]) == 0, \
        "a decision that pays nothing out is not held up"
    code = main(["--config", str(config), "returns", "list", "--flag", "quantity_exceeds_ordered", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0 and f'"external_id": "{order_id}"' in out and out.count('"return_id"') == 1

    fleet.emulators["shop"].request_return(order_id, quantity=bought)  # type: ignore[attr-defined]
    fleet.sync()
    assert fleet.flagged("quantity_exceeds_ordered") == set(), "the customer corrected the request"


def test_decide_force_records_accept_on_a_flagged_return(fleet: Fleet) -> None:
    fleet.add("shop", "woocommerce")
    order_id, bought = _wc_return(fleet, quantity=None)
    fleet.emulators["shop"].request_return(order_id, quantity=bought + 2)  # type: ignore[attr-defined]
    fleet.sync()
    with pytest.raises(DecisionRefused, match="quantity_exceeds_ordered"):
        record_decision(fleet.db, f"shop/{order_id}", DecisionKind.ACCEPT, connector_for=registry.get,
                        refuse_flagged=True)
    recorded = record_decision(fleet.db, f"shop/{order_id}", DecisionKind.ACCEPT, connector_for=registry.get,
                               refuse_flagged=False)
    assert recorded.decision_ids


def test_double_refund_when_the_shop_refunds_what_retsync_already_refunded(fleet: Fleet) -> None:
    shop = fleet.add("shop", "woocommerce")
    while True:  # an order worth more than two of its first item, so WooCommerce lets a second refund through
        order_id, _ = _wc_return(fleet)
        order = shop.order(order_id)  # type: ignore[attr-defined]
        item = order["line_items"][0]
        unit = (Decimal(item["total"]) + Decimal(item["total_tax"])) / item["quantity"]
        if Decimal(order["total"]) >= 2 * unit + 1 and item["quantity"] == 1:
            break
    fleet.sync()
    record_decision(fleet.db, f"shop/{order_id}", DecisionKind.ACCEPT, connector_for=registry.get)
    fleet.runner().push()
    fleet.sync()
    assert f"shop/{order_id}" not in fleet.flagged("double_refund"), "one refund of the returned item"

    second = shop.refund_in_admin(order_id, amount=f"{unit:.2f}")  # type: ignore[attr-defined]
    fleet.sync()
    assert fleet.flagged("double_refund") == {f"shop/{order_id}"}
    with fleet.db.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM v_return_flags WHERE code = 'double_refund'")).scalar_one()
    assert detail.startswith(f"refunded {2 * unit:.2f} EUR")

    with shop.lock:  # the manager deletes the duplicate refund in wp-admin
        shop.refunds[order_id] = [r for r in shop.refunds[order_id] if int(r["id"]) != second]  # type: ignore[attr-defined]
        shop._stamp(order)  # type: ignore[attr-defined]
    fleet.sync()
    assert fleet.flagged("double_refund") == set()


def test_refund_amount_mismatch_allows_for_the_configured_deduction(fleet: Fleet) -> None:
    shop = fleet.add("shop", "woocommerce")
    order_id, _ = _wc_return(fleet)
    fleet.sync()
    with fleet.db.connect() as conn:  # what the customer paid for the returned unit, tax included
        paid = conn.execute(text("SELECT unit_price FROM v_return_lines WHERE return_id = :id"),
                            {"id": fleet.return_id("shop", str(order_id))}).scalar_one()
    before = fleet.flagged("refund_amount_mismatch")
    refund = f"{(paid - 495) / 100:.2f}"  # the manager keeps 4.95 for the return label
    shop.refund_in_admin(order_id, amount=refund)  # type: ignore[attr-defined]
    fleet.sync()
    assert fleet.flagged("refund_amount_mismatch") - before == {f"shop/{order_id}"}
    with fleet.db.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM v_return_flags v JOIN returns r ON r.id = v.return_id "
                                   "WHERE v.code = 'refund_amount_mismatch' AND r.external_id = :e"),
                              {"e": str(order_id)}).scalar_one()
    assert detail.startswith(f"refunded {refund} EUR")

    fleet.configure("shop", return_shipping_deduction="4.95")
    fleet.sync()
    assert f"shop/{order_id}" not in fleet.flagged("refund_amount_mismatch"), \
        "the channel's return-shipping deduction explains the difference"


def _aware(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _placed_and_created(db: Engine, channel: str) -> dict[str, float]:
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.external_id, r.created_at, o.placed_at FROM returns r JOIN orders o ON o.id = r.order_id "
            "JOIN channels c ON c.id = r.channel_id WHERE c.name = :c AND r.status <> 'cancelled'"),
            {"c": channel}).all()
    return {row.external_id: (_aware(row.created_at) - _aware(row.placed_at)).total_seconds() / 86400
            for row in rows}


def test_past_return_window_counts_from_the_order(fleet: Fleet) -> None:
    fleet.add("bol", "bol", return_window_days=10)
    fleet.sync()
    ages = _placed_and_created(fleet.db, "bol")
    expected = {f"bol/{ret}" for ret, days in ages.items() if days > 10}
    assert expected and expected != {f"bol/{ret}" for ret in ages}, "the sandbox has returns on both sides"
    assert fleet.flagged("past_return_window") == expected

    fleet.configure("bol", return_window_days=30)
    fleet.sync()
    assert fleet.flagged("past_return_window") == {f"bol/{ret}" for ret, days in ages.items() if days > 30}


def _due_for_refund(db: Engine, now: datetime, days: int) -> set[str]:
    """Hand-computed: received (as the channel says, else as first stored) more than `days` ago, no refund,
    nothing decided that pays nothing out."""
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.id, c.name, r.external_id, r.received_at, r.status, r.refunded_at, r.refund_amount, "
            "r.handled_by_channel FROM returns r JOIN channels c ON c.id = r.channel_id")).all()
        seen_received = {row.return_id: _aware(row.at) for row in conn.execute(text(
            "SELECT return_id, at FROM return_events WHERE kind = 'status' AND new_value = 'received' "
            "ORDER BY at DESC"))}
        refusals = set(conn.execute(text(
            "SELECT return_id FROM decisions WHERE kind IN ('reject', 'repair', 'exchange', 'cancel') "
            "AND state IN ('pending', 'sending', 'pushed', 'synced')")).scalars())
    due = set()
    for row in rows:
        received = _aware(row.received_at) if row.received_at is not None else seen_received.get(row.id)
        if received is None or row.handled_by_channel or row.refunded_at or row.refund_amount is not None:
            continue
        if (now - received).total_seconds() > days * 86400 and row.status not in ("refunded", "closed", "cancelled") \
                and row.id not in refusals:
            due.add(f"{row.name}/{row.external_id}")
    return due


def test_refund_overdue_after_refund_due_days_and_resolved_by_a_rejection(fleet: Fleet) -> None:
    fleet.add("bol", "bol")
    fleet.add("allegro", "allegro")
    fleet.sync()
    expected = _due_for_refund(fleet.db, fleet.clock.now, 14)
    assert fleet.flagged("refund_overdue") == expected

    fleet.clock.advance(days=20)
    fleet.sync()
    later = _due_for_refund(fleet.db, fleet.clock.now, 14)
    assert later > expected, "returns received in the last weeks are now past the 14 days"
    assert fleet.flagged("refund_overdue") == later

    one = sorted(later)[0]
    record_decision(fleet.db, one, DecisionKind.REJECT, note="damaged by the customer", connector_for=registry.get)
    fleet.sync()
    assert one not in fleet.flagged("refund_overdue"), "a rejected return owes no refund"
    assert fleet.flagged("refund_overdue") == _due_for_refund(fleet.db, fleet.clock.now, 14)


def test_not_shipped_by_customer_after_the_reminder_days(fleet: Fleet) -> None:
    bol = fleet.add("bol", "bol", ship_reminder_days=7)
    added = bol.add_return()  # type: ignore[attr-defined]
    ref = f"bol/{added['returnId']}"
    fleet.sync()
    assert ref not in fleet.flagged("not_shipped_by_customer")
    fleet.clock.advance(days=6)
    fleet.sync()
    assert ref not in fleet.flagged("not_shipped_by_customer")
    fleet.clock.advance(days=2)
    fleet.sync()
    assert ref in fleet.flagged("not_shipped_by_customer")
    record_decision(fleet.db, ref, DecisionKind.KEEP, connector_for=registry.get)
    fleet.sync()
    assert ref not in fleet.flagged("not_shipped_by_customer"), "decided without the parcel: no reminder"


def test_decision_push_failed_until_a_decision_goes_through(fleet: Fleet) -> None:
    bol = fleet.add("bol", "bol")
    fleet.sync()
    with fleet.db.connect() as conn:
        ref, _ = conn.execute(text(
            "SELECT channel || '/' || external_id, line_count FROM v_returns WHERE channel = 'bol' "
            "AND decision IS NULL AND status IN ('requested', 'in_transit', 'received') "
            "AND handled_by_channel = :no AND line_count = 1 ORDER BY return_id LIMIT 1"),
            {"no": False}).one()
    bol.inject("status", status=400, method="PUT", times=1)
    record_decision(fleet.db, ref, DecisionKind.ACCEPT, connector_for=registry.get)
    fleet.runner().push()
    assert fleet.flagged("decision_push_failed") == {ref}

    record_decision(fleet.db, ref, DecisionKind.ACCEPT, connector_for=registry.get)
    fleet.runner().push()
    assert fleet.flagged("decision_push_failed") == set()
    with fleet.db.connect() as conn:
        states = conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant' ORDER BY id")).scalars().all()
    assert states[0] == "failed" and states[-1] in ("pushed", "pending")


def test_recomputing_twice_changes_nothing(fleet: Fleet) -> None:
    fleet.add("bol", "bol", return_window_days=10)
    fleet.add("shop", "woocommerce")
    fleet.sync()
    with fleet.db.connect() as conn:
        before = conn.execute(text("SELECT * FROM return_flags ORDER BY id")).all()
    assert before
    fleet.sync()
    with fleet.db.connect() as conn:
        after = conn.execute(text("SELECT * FROM return_flags ORDER BY id")).all()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_a_pull_with_nothing_new_does_not_run_the_rules_over_the_whole_history(fleet: Fleet,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Most polls bring nothing; the rules run again once something changed, or an hour later (days-counting
    rules), so a poll on a long history stays cheap and no flag is late by more than that hour."""
    from retsync.reconcile import linking as reconcile

    runs: list[int] = []
    real = reconcile.recompute
    monkeypatch.setattr(reconcile, "recompute",  # every rule; a push pass re-checks its own code only
                        lambda *a, **k: (runs.append(1) if "codes" not in k else None) or real(*a, **k))
    shop = fleet.add("shop", "woocommerce")
    fleet.sync()
    assert len(runs) == 1
    fleet.sync()
    assert len(runs) == 1, "nothing new at the channel, nothing decided: the flags stand as they are"

    order_id, _ = _wc_return(fleet)
    fleet.sync()
    assert len(runs) == 2, "a new return"
    record_decision(fleet.db, f"shop/{order_id}", DecisionKind.REJECT, note="worn", connector_for=registry.get)
    fleet.sync()
    assert len(runs) == 3, "a decision recorded in retsync"
    fleet.clock.advance(minutes=61)
    fleet.sync()
    assert len(runs) == 4, "an hour on, the days-counting rules are looked at again"
    assert shop is not None
