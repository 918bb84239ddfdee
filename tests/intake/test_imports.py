"""Importing a return service's export: the same file twice, an overlapping later export, a bad row, Polish
encodings, dates and amounts, a spreadsheet, and a dry run."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, text

from retsync.intake.imports import ImportProblem, load_mapping, read_amount, read_moment
from tests.intake.conftest import Run, order_with_lines, sqlite_only, write_config

HEADER = "Numer zwrotu;Numer zamówienia;SKU;Ilość;Powód zwrotu;E-mail;Data zgłoszenia;Kwota zwrotu;Status\n"


def rows(db: Engine) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT r.external_id, r.status, r.refund_amount, r.customer_email, rl.external_id, rl.quantity "
            "FROM returns r JOIN channels c ON c.id = r.channel_id JOIN return_lines rl ON rl.return_id = r.id "
            "WHERE c.name = 'paper' ORDER BY r.external_id, rl.external_id"))]


def test_the_same_export_twice_and_an_overlapping_later_one_never_duplicate(db: Engine, run: Run,
                                                                             tmp_path: Path) -> None:
    first = tmp_path / "zwroty-1.csv"
    first.write_text(HEADER + "WZ-1;1001;BUT-42;1;za mały;anna@example.com;01.12.2026 14:30;129,99 zł;Zarejestrowany\n"
                     "WZ-1;1001;SKARP-1;2;za mały;anna@example.com;01.12.2026 14:30;;Zarejestrowany\n"
                     "WZ-2;1002;KURTKA;1;uszkodzony;jan@example.com;02.12.2026;1 234,50;Nadany\n", encoding="utf-8")
    code, out, err = run("import", "returns", str(first), "--channel", "paper")
    assert code == 0, err
    assert "3 rows, 2 returns: 2 new, 0 updated, 0 unchanged; 0 bad rows" in out
    stored = rows(db)
    assert stored == [("WZ-1", "requested", 12999, "anna@example.com", "BUT-42", 1),
                      ("WZ-1", "requested", 12999, "anna@example.com", "SKARP-1", 2),
                      ("WZ-2", "in_transit", 123450, "jan@example.com", "KURTKA", 1)]
    code, out, _ = run("import", "returns", str(first), "--channel", "paper")
    assert code == 0 and "2 returns: 0 new, 0 updated, 2 unchanged" in out
    assert rows(db) == stored
    later = tmp_path / "zwroty-2.csv"  # WZ-2 arrived (and an older status word for WZ-1 must not move it back)
    later.write_text(HEADER + "WZ-2;1002;KURTKA;1;uszkodzony;jan@example.com;02.12.2026;1 234,50;Dostarczony\n"
                     "WZ-3;1003;CZAPKA;1;nie pasuje;ola@example.com;03.12.2026;49,00;Zarejestrowany\n",
                     encoding="utf-8")
    code, out, _ = run("import", "returns", str(later), "--channel", "paper")
    assert code == 0 and "2 returns: 1 new, 1 updated, 0 unchanged" in out
    assert [row[:2] for row in rows(db)] == [("WZ-1", "requested"), ("WZ-1", "requested"), ("WZ-2", "received"),
                                             ("WZ-3", "requested")]
    with db.connect() as conn:
        created = conn.execute(text("SELECT created_at FROM returns WHERE external_id = 'WZ-1'")).scalar_one()
        sources = {row[0] for row in conn.execute(text("SELECT DISTINCT source FROM return_events"))}
    assert str(created).startswith("2026-12-01 13:30"), "14:30 in Warsaw is 13:30 UTC"
    assert sources == {"import:zwroty-1.csv", "import:zwroty-2.csv"}


def test_a_bad_row_is_reported_by_line_and_only_its_return_is_left_out(db: Engine, run: Run, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "R-1;1;A;1;;a@example.com;01.12.2026;10,00;Nowy\n"
                      "R-2;2;B;dwa;;b@example.com;01.12.2026;10,00;Nowy\n"
                      "R-2;2;C;1;;b@example.com;01.12.2026;10,00;Nowy\n"
                      "R-3;3;D;1;;c@example.com;31.02.2026;10,00;Nowy\n"
                      ";4;E;1;;d@example.com;01.12.2026;10,00;Nowy\n"
                      "R-5;5;F;1;;e@example.com;01.12.2026;10,00;Nowy\n", encoding="utf-8")
    code, out, err = run("import", "returns", str(export), "--channel", "paper")
    assert code == 1
    assert "line 3: quantity 'dwa' is not a whole number" in err
    assert "line 5: '31.02.2026' is not a date" in err
    assert "line 6: no return_id (the natural key) in this row" in err
    assert "line 3, 4: return R-2 were not imported" in err
    assert "2 returns: 2 new" in out
    assert sorted({row[0] for row in rows(db)}) == ["R-1", "R-5"], "nothing of R-2 half-written"


@sqlite_only
def test_dry_run_shows_what_would_change_and_writes_nothing(db: Engine, run: Run, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "R-1;1;A;1;;a@example.com;01.12.2026;10,00;Nowy\n", encoding="utf-8")
    code, out, _ = run("import", "returns", str(export), "--channel", "paper", "--dry-run")
    assert code == 0 and "dry run: nothing written" in out and "new        R-1" in out
    assert rows(db) == []
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM channels WHERE name = 'paper'")).scalar() == 0


@sqlite_only
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1250"])
def test_polish_exports_in_each_encoding_read_alike(db: Engine, run: Run, tmp_path: Path, encoding: str) -> None:
    export = tmp_path / "export.csv"
    export.write_text("Numer zwrotu,Ilość,Powód zwrotu,Imię i nazwisko,SKU\r\n"
                      "Z-1,\"1,0\",\"Zły rozmiar, za ciasne\",Łucja Żółć,ŻÓŁW-1\r\n", encoding=encoding)
    code, _, err = run("import", "returns", str(export), "--channel", "paper")
    assert code == 0, err
    with db.connect() as conn:
        row = conn.execute(text("SELECT r.customer_name, r.channel_reason, rl.sku, rl.quantity FROM returns r "
                                "JOIN return_lines rl ON rl.return_id = r.id")).one()
    assert tuple(row) == ("Łucja Żółć", "Zły rozmiar, za ciasne", "ŻÓŁW-1", 1)


def test_a_spreadsheet_linked_to_a_shop_order_with_a_natural_key_of_the_channels(
        shop_orders: Engine, tmp_path: Path, db_url: str, run: Run) -> None:
    order = order_with_lines(shop_orders)
    book = Workbook()
    sheet = book.active
    sheet.append(["Nr zamówienia", "SKU", "Ilość", "Data zgłoszenia", "Kwota"])
    sheet.append([order["external_id"], order["skus"][0], 1, datetime(2026, 12, 3, 9, 0), 59.9])
    sheet.append([order["external_id"], order["skus"][1], 2, datetime(2026, 12, 3, 9, 0), 20])
    path = tmp_path / "reet.xlsx"
    book.save(path)
    config = write_config(tmp_path, db_url, channels='natural_key = ["order", "sku"]')
    for _ in range(2):
        code, out, err = run("import", "returns", str(path), "--channel", "paper", config=config)
        assert code == 0, err
    with shop_orders.connect() as conn:
        found = conn.execute(text(
            "SELECT r.external_id, r.order_id, r.customer_group_id, r.customer_email, rl.order_line_id IS NOT NULL "
            "FROM returns r JOIN channels c ON c.id = r.channel_id JOIN return_lines rl ON rl.return_id = r.id "
            "WHERE c.name = 'paper' ORDER BY r.external_id")).all()
    assert [row[0] for row in found] == sorted(f"{order['external_id']}/{sku}" for sku in order["skus"][:2])
    assert all(row[1] == order["id"] and row[2] == order["customer_group_id"] and row[4] for row in found)
    assert all(row[3] == order["customer_email"] for row in found)


@sqlite_only
def test_a_file_that_cannot_be_imported_says_why_and_writes_nothing(db: Engine, run: Run, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("Zamówienie;SKU\n1;A\n", encoding="utf-8")
    code, _, err = run("import", "returns", str(export), "--channel", "paper")
    assert code == 1 and "no column for the natural key field return_id" in err
    bad_mapping = tmp_path / "mine.toml"
    bad_mapping.write_text('[columns]\nreturn_idd = ["Nr"]\n')
    code, _, err = run("import", "returns", str(export), "--channel", "paper", "--mapping", str(bad_mapping))
    assert code == 1 and "no field return_idd" in err
    export.write_text(HEADER + 'R-1;1;"' + "x" * 200_000 + '";1;;;;;\n', encoding="utf-8")
    code, _, err = run("import", "returns", str(export), "--channel", "paper")
    assert code == 1 and "line 2: the file cannot be read from here on" in err
    code, _, err = run("import", "returns", str(tmp_path / "missing.txt"), "--channel", "paper")
    assert code == 1 and "give --format csv or xlsx" in err
    assert rows(db) == []


def test_polish_amounts_and_dates() -> None:
    from zoneinfo import ZoneInfo

    assert [read_amount(v) for v in ("1 234,56 zł", "1.234,56", "1234.56", "12,5", 59.9, "-3,00")] == [
        123456, 123456, 123456, 1250, 5990, -300]
    warsaw = ZoneInfo("Europe/Warsaw")
    assert read_moment("06.12.2026 14:30", warsaw) == datetime(2026, 12, 6, 13, 30, tzinfo=timezone.utc)
    assert read_moment("2026-07-01", warsaw) == datetime(2026, 6, 30, 22, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="not an amount"):
        read_amount("abc")


def test_the_selesto_mapping_reads_its_published_statuses_and_decisions() -> None:
    mapping = load_mapping("selesto")
    assert mapping.statuses["oczekuję na realizację"] == "received" and mapping.decisions["odrzucony"] == "reject"
    assert mapping.columns["return_id"] == load_mapping("generic").columns["return_id"]
    with pytest.raises(ImportProblem, match="neither a shipped one"):
        load_mapping("no-such-mapping")


def test_a_return_imported_before_its_order_is_linked_when_the_order_arrives(db: Engine, db_url: str,
                                                                             tmp_path: Path, run: Run) -> None:
    from retsync.intake.jobs import IntakeJobs
    from retsync.kit.model import Customer, Order, OrderLine
    from retsync.store.channels import ensure_channel
    from retsync.store.pages import PageWriter
    from retsync.testing.config import config_for

    export = tmp_path / "early.csv"
    export.write_text(HEADER + "E-1;5005;MUG-1;1;;;01.12.2026;;Nowy\n", encoding="utf-8")
    code, out, _ = run("import", "returns", str(export), "--channel", "paper")
    assert code == 0 and "not linked E-1: order 5005 is not stored yet" in out
    now = datetime(2026, 12, 6, tzinfo=timezone.utc)
    shop = ensure_channel(db, "shop", "woocommerce", now)
    with db.begin() as conn:
        PageWriter(shop, "channel:shop").store(conn, [Order(
            external_id="5005", customer=Customer(email="kim@example.com"),
            lines=(OrderLine(external_id="9", sku="MUG-1", quantity=1),))], [], now)
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual"}})
    IntakeJobs(db, config, clock=lambda: now).link_orders("paper")
    with db.connect() as conn:
        row = conn.execute(text("SELECT r.order_id IS NOT NULL, r.customer_email, rl.link_method FROM returns r "
                                "JOIN return_lines rl ON rl.return_id = r.id WHERE r.external_id = 'E-1'")).one()
    assert tuple(row) == (True, "kim@example.com", "sku")


@sqlite_only
def test_a_bad_spreadsheet_row_is_reported_by_its_row_number(db: Engine, run: Run, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Numer zwrotu", "EAN", "Ilość"])
    sheet.append(["S-1", 5901234123457, 1])
    sheet.append(["S-2", 5901234123464, -1])
    path = tmp_path / "export.xlsx"
    book.save(path)
    code, out, err = run("import", "returns", str(path), "--channel", "paper")
    assert code == 1 and "row 3: quantity '-1' is not a whole number of at least 1" in err and "1 new" in out
    with db.connect() as conn:
        assert conn.execute(text("SELECT rl.ean FROM return_lines rl")).scalars().all() == ["5901234123457"]
