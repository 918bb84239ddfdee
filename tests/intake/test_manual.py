"""A paper return, entered by hand: `retsync returns add / edit / set-status` as a merchant types them."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, text

from retsync.app.queries import view_query
from tests.intake.conftest import Run, order_with_lines, sqlite_only, write_config


def v_return(db: Engine, external_id: str) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(view_query(
            "SELECT v.*, r.order_id, r.customer_group_id, r.tracking_number AS parcel FROM v_returns v "
            "JOIN returns r ON r.id = v.return_id WHERE v.channel = 'paper' AND v.external_id = :id"),
            {"id": external_id}).mappings().one())


def added_id(out: str) -> str:
    found = re.search(r"recorded return paper/(\S+)", out)
    assert found, out
    return found.group(1)


def test_a_paper_return_against_a_shop_order_is_linked_to_it_and_to_its_customer(shop_orders: Engine, run: Run) -> None:
    order = order_with_lines(shop_orders)
    code, out, err = run("returns", "add", "paper", "--order", order["external_id"], "--line",
                         f"{order['skus'][0]}:1", "--reason", "za mały rozmiar", "--note", "form in the parcel")
    assert code == 0, err
    external_id = added_id(out)
    assert re.fullmatch(r"M-\d{8}-[A-Z2-9]{5}", external_id)
    assert f"linked to order shop/{order['external_id']}" in out
    row = v_return(shop_orders, external_id)
    assert row["connector"] == "manual" and row["status"] == "requested"
    assert row["order_external_id"] == order["external_id"] and row["order_id"] == order["id"]
    assert row["customer_email"] == order["customer_email"]
    assert row["customer_group_id"] == order["customer_group_id"], "the same customer as the shop order"
    assert row["reason"] == "wrong_size" and row["quantity"] == 1
    with shop_orders.connect() as conn:
        line = conn.execute(text(
            "SELECT rl.sku, rl.link_method, ol.sku AS order_sku FROM return_lines rl JOIN returns r ON r.id = "
            "rl.return_id JOIN order_lines ol ON ol.id = rl.order_line_id WHERE r.external_id = :id"),
            {"id": external_id}).mappings().one()
        history = conn.execute(text("SELECT kind, new_value, source, detail FROM return_events e JOIN returns r ON "
                                    "r.id = e.return_id WHERE r.external_id = :id ORDER BY e.id"),
                               {"id": external_id}).all()
    assert line["sku"] == line["order_sku"] == order["skus"][0] and line["link_method"] == "channel_key"
    assert ("status", "requested", "cli", "entered by hand") in history
    assert ("note", None, "cli", "form in the parcel") in history


@sqlite_only
def test_a_return_on_its_own_and_an_id_given_stays_that_id(shop_orders: Engine, run: Run) -> None:
    code, out, err = run("returns", "add", "paper", "--id", "FORM-0042", "--line", "5901234123457:2", "--email",
                         "anna@example.com")
    assert code == 0, err
    row = v_return(shop_orders, "FORM-0042")
    assert row["order_id"] is None and row["order_external_id"] is None and row["quantity"] == 2
    with shop_orders.connect() as conn:
        assert conn.execute(text("SELECT ean, sku FROM return_lines rl JOIN returns r ON r.id = rl.return_id "
                                 "WHERE r.external_id = 'FORM-0042'")).one() == ("5901234123457", None)
    code, _, err = run("returns", "add", "paper", "--id", "FORM-0042", "--line", "X:1")
    assert code == 1 and "already recorded" in err and "returns edit paper/FORM-0042" in err


@sqlite_only
def test_mistakes_are_refused_with_what_to_do_and_nothing_is_stored(shop_orders: Engine, run: Run) -> None:
    order = order_with_lines(shop_orders)
    cases = [
        (("--order", "NO-SUCH-ORDER", "--line", "A:1"), "no order 'NO-SUCH-ORDER' is stored on any channel"),
        (("--order", order["external_id"], "--line", "NOT-IN-ORDER:1"), "has no item with SKU or EAN 'NOT-IN-ORDER'"),
        (("--line", "A:zero"), "'zero' is not a whole number"),
        (("--line", "A:0"), "at least 1"),
        (("--line", "A:1", "--line", "a:2"), "twice"),
        (("--line", "A:1", "--created", "yesterday"), "--created 'yesterday' is not a date"),
    ]
    for args, message in cases:
        code, _, err = run("returns", "add", "paper", *args)
        assert code == 1 and message in err, (args, err)
    with shop_orders.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM returns r JOIN channels c ON c.id = r.channel_id "
                                 "WHERE c.name = 'paper'")).scalar() == 0


@sqlite_only
def test_a_channel_that_is_not_manual_is_refused_as_a_config_error(shop_orders: Engine, run: Run, tmp_path: Path,
                                                                  db_url: str) -> None:
    code, _, err = run("returns", "add", "nowhere", "--line", "A:1")
    assert code == 2 and "no channel 'nowhere'" in err


def test_edit_and_set_status_record_what_a_person_learns_later(shop_orders: Engine, run: Run) -> None:
    order = order_with_lines(shop_orders)
    code, out, _ = run("returns", "add", "paper", "--order", order["external_id"], "--line", f"{order['skus'][0]}:1",
                       "--line", f"{order['skus'][1]}:1")
    external_id = added_id(out)
    code, out, err = run("returns", "edit", f"paper/{external_id}", "--tracking", "520000011234567890123456",
                         "--carrier", "inpost", "--line", f"{order['skus'][1]}:2", "--reason", "uszkodzony",
                         "--created", "2026-11-30")
    assert code == 0 and "changed" in out, err
    row = v_return(shop_orders, external_id)
    assert row["parcel"] == "520000011234567890123456" and row["carrier"] == "inpost"
    assert row["quantity"] == 3 and row["reason"] == "damaged"
    assert row["created_at"].isoformat() == "2026-11-30T00:00:00+00:00"
    code, out, err = run("returns", "set-status", f"paper/{external_id}", "received", "--at", "2026-12-01T10:30+01:00")
    assert code == 0 and "is received now" in out, err
    row = v_return(shop_orders, external_id)
    assert row["status"] == "received" and row["received_at"].isoformat() == "2026-12-01T09:30:00+00:00"
    code, out, _ = run("returns", "set-status", f"paper/{external_id}", "received")
    assert code == 0 and "was received already" in out
    with shop_orders.connect() as conn:
        steps = conn.execute(text("SELECT old_value, new_value, source FROM return_events e JOIN returns r ON "
                                  "r.id = e.return_id WHERE r.external_id = :id AND e.kind = 'status' ORDER BY e.id"),
                             {"id": external_id}).all()
    assert steps == [(None, "requested", "cli"), ("requested", "received", "cli")]


@sqlite_only
def test_returns_of_other_channels_are_not_edited_here(shop_orders: Engine, run: Run) -> None:
    with shop_orders.connect() as conn:
        shop_return = conn.execute(text("SELECT r.external_id FROM returns r JOIN channels c ON c.id = r.channel_id "
                                        "WHERE c.name = 'shop' ORDER BY r.id LIMIT 1")).scalar_one()
    code, _, err = run("returns", "set-status", f"shop/{shop_return}", "received")
    assert code == 1 and "comes from the woocommerce channel shop: change it there" in err


@sqlite_only
def test_an_order_number_on_two_channels_needs_orders_from_or_order_channel(shop_orders: Engine, tmp_path: Path,
                                                                             db_url: str, run: Run) -> None:
    order = order_with_lines(shop_orders)
    with shop_orders.begin() as conn:
        conn.execute(text("INSERT INTO channels (name, connector, created_at, consecutive_failures) "
                          "VALUES ('other', 'woocommerce', CURRENT_TIMESTAMP, 0)"))
        conn.execute(text("INSERT INTO orders (channel_id, external_id, content_hash, first_seen_at, updated_at) "
                          "SELECT id, :ext, 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM channels "
                          "WHERE name = 'other'"), {"ext": order["external_id"]})
    args = ("returns", "add", "paper", "--order", order["external_id"], "--line", f"{order['skus'][0]}:1")
    code, _, err = run(*args)
    assert code == 1 and "add --order-channel" in err
    code, out, err = run(*args, "--order-channel", "shop")
    assert code == 0 and f"linked to order shop/{order['external_id']}" in out, err
    narrowed = write_config(tmp_path, db_url, channels='orders_from = ["shop"]')
    code, out, err = run(*args, config=narrowed)
    assert code == 0 and f"linked to order shop/{order['external_id']}" in out, err
