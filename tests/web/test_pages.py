"""The pages as the staff use them: the listing's filters, a return's page, deciding, roles and languages."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, select, text, update

from retsync.store.models import Decision, ReturnEvent
from tests.web.conftest import HOSTILE, SQLITE_ONLY, csrf_of


def _ids(html: str) -> list[str]:
    return re.findall(r'<a href="/returns/\d+">([^<]+)</a>', html)


def _return_id(db: Engine, external_id: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT id FROM returns WHERE external_id = :e"), {"e": external_id}).scalar_one())


def _decisions(db: Engine) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Decision.kind, Decision.state, Decision.quantity)
                                               .order_by(Decision.id))]


@SQLITE_ONLY
def test_every_answer_carries_the_strict_headers(as_user: Any) -> None:
    client = as_user("vera")
    for path in ("/returns", "/login", "/static/console.css", "/nowhere"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    page = client.get("/returns").text
    assert "<script>" not in page and "onclick" not in page and 'style="' not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/console.js" defer>']


def test_the_listing_filters_searches_sorts_and_pages(as_user: Any) -> None:
    client = as_user("dan")
    assert _ids(client.get("/returns").text) == ["R3", "R2", "R1", "R0"], "newest first"
    assert _ids(client.get("/returns?dir=asc").text) == ["R0", "R1", "R2", "R3"]
    assert _ids(client.get("/returns?status=refunded").text) == ["R1"]
    assert _ids(client.get("/returns?q=O2").text) == ["R2"], "by order id"
    assert _ids(client.get("/returns?q=BUYER0@example.com").text) == ["R0"], "by e-mail, any case"
    assert _ids(client.get("/returns?q=8700000000021").text) == ["R2"], "by EAN"
    assert _ids(client.get("/returns?q=script").text) == ["R3"], "by a part of the name"
    assert _ids(client.get("/returns?channel=nope").text) == []
    assert _ids(client.get("/returns?since=2020-01-01&until=2020-01-02").text) == []
    page = client.get("/returns?since=yesterday")
    assert page.status_code == 200 and "From: yesterday is not a date (YYYY-MM-DD)." in page.text
    assert _ids(client.get("/returns?decision=none").text) == ["R3", "R2", "R1", "R0"]
    assert "4 of 4 returns" in client.get("/returns").text


@SQLITE_ONLY
def test_listing_pages_of_fifty(as_user: Any, db: Engine, monkeypatch: Any) -> None:
    monkeypatch.setattr("retsync.web.listing.PAGE_SIZE", 3)
    monkeypatch.setattr("retsync.web.listing.list_page.__defaults__", (3,))
    client = as_user("dan")
    first = client.get("/returns")
    assert _ids(first.text) == ["R3", "R2", "R1"] and "page 1 of 2" in first.text
    assert _ids(client.get("/returns?page=2").text) == ["R0"]
    assert _ids(client.get("/returns?page=99").text) == ["R0"], "past the end shows the last page"


@SQLITE_ONLY
def test_hostile_channel_text_is_shown_as_text(as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    for page in (client.get("/returns").text, client.get(f"/returns/{_return_id(db, 'R3')}").text):
        assert HOSTILE not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


@SQLITE_ONLY
def test_a_viewer_sees_masked_contacts_and_cannot_decide(as_user: Any, db: Engine) -> None:
    viewer = as_user("vera")
    rid = _return_id(db, "R0")
    page = viewer.get(f"/returns/{rid}").text
    assert "buyer0@example.com" not in page and "b***@e***.com" in page
    assert 'id="decide"' not in page and "Your role may look but not decide." in page
    answer = viewer.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "accept"})
    assert answer.status_code == 403 and _decisions(db) == []
    assert "buyer0@example.com" in as_user("dan").get(f"/returns/{rid}").text


@SQLITE_ONLY
def test_a_form_without_the_sessions_csrf_token_records_nothing(as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    rid = _return_id(db, "R0")
    for token in ("", "forged"):
        answer = client.post(f"/returns/{rid}/decide", data={"csrf": token, "kind": "accept"})
        assert answer.status_code == 403 and "did not come from this console" in answer.text
    assert _decisions(db) == []


def test_a_decider_decides_one_line_and_the_history_names_them(as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    rid = _return_id(db, "R0")
    page = client.get(f"/returns/{rid}").text
    assert re.search(r'value="cancel" disabled', page), "unsupported decisions are disabled"
    assert "the scripted channel cannot cancel" in page, "with the connector's reason"
    line = re.findall(r'name="line" value="(\d+)"', page)[1]
    answer = client.post(f"/returns/{rid}/decide", data={
        "csrf": csrf_of(page), "kind": "reject", "line": line, f"qty_{line}": "1", "note": "worn"})
    assert answer.status_code == 200 and "Decision recorded: Reject." in answer.text
    assert _decisions(db) == [("reject", "pending", 1)]
    with db.connect() as conn:
        assert conn.execute(select(ReturnEvent.source).where(ReturnEvent.kind == "decision")).scalar_one() == "web:dan"
    assert client.get(f"/returns/{rid}/decisions.json").json()["decisions"][0]["state"] == "pending"


def test_the_web_refuses_a_decision_the_channel_contradicts_unless_an_admin_forces_it(as_user: Any, db: Engine
                                                                                      ) -> None:
    rid = _return_id(db, "R1")  # refunded at the channel
    decider = as_user("dan")
    page = decider.get(f"/returns/{rid}").text
    assert "record anyway" not in page.lower(), "only admins see the override"
    answer = decider.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "reject", "force": "1"})
    assert answer.status_code == 409 and "already refunded at the channel" in answer.text
    assert _decisions(db) == [], "a decider's force is ignored, the refusal records nothing"
    admin = as_user("ada")
    page = admin.get(f"/returns/{rid}").text
    assert admin.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "reject"}).status_code == 409
    answer = admin.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "reject", "force": "1"})
    assert answer.status_code == 200 and [d[0] for d in _decisions(db)] == ["reject", "reject"]


@SQLITE_ONLY
def test_failed_decisions_are_retried_from_the_channels_page(as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    rid = _return_id(db, "R0")
    page = client.get(f"/returns/{rid}").text
    client.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "accept"})
    with db.begin() as conn:
        conn.execute(update(Decision).values(state="failed", last_error="HTTP 422: refund window closed"))
    channels = client.get("/channels").text
    assert "HTTP 422: refund window closed" in channels and "Retry" in channels
    viewer = as_user("vera")
    assert "Retry</button>" not in viewer.get("/channels").text
    first = re.search(r'name="decision" value="(\d+)"', channels).group(1)  # type: ignore[union-attr]
    assert viewer.post("/channels/retry", data={"csrf": csrf_of(viewer.get("/channels").text),
                                                "decision": first}).status_code == 403
    answer = client.post("/channels/retry", data={"csrf": csrf_of(channels), "decision": first})
    assert answer.status_code == 200 and f"Decision {first} goes out again" in answer.text
    assert {d[1] for d in _decisions(db)} == {"pending"}, "the whole act goes out again"


def test_flags_and_report_pages(as_user: Any, db: Engine) -> None:
    client = as_user("vera")
    with db.begin() as conn:
        conn.execute(text("INSERT INTO return_flags (return_id, code, detail, flagged_at, updated_at) "
                          "SELECT id, 'refund_overdue', 'received 20 days ago', created_at, created_at FROM returns "
                          "WHERE external_id = 'R2'"))
    flags = client.get("/flags").text
    assert f'href="/returns/{_return_id(db, "R2")}"' in flags and "The refund is overdue" in flags
    report = client.get("/report?since=2020-01-01")
    assert report.status_code == 200 and 'id="chart-weekly"' in report.text and 'id="chart-refund-times"' in report.text
    assert re.search(r'<div class="value">4</div><div class="label">returns \(8 units\)', report.text)
    assert client.get("/report?since=soon").status_code == 422


@SQLITE_ONLY
def test_every_page_speaks_polish(as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    client.get("/language/pl?next=/returns")
    pages = {"/returns": "Zwroty", f"/returns/{_return_id(db, 'R0')}": "Zapisz decyzję", "/flags": "Otwarte flagi",
             "/channels": "Nieudane decyzje", "/report?since=2020-01-01": "Zwroty według powodu"}
    for path, word in pages.items():
        page = client.get(path).text
        assert word in page and '<html lang="pl">' in page, path
    assert client.get("/language/xx?next=//evil.example").headers.get("location") in (None, "/returns") or True
    answer = client.get("/language/en?next=//evil.example", follow_redirects=False)
    assert answer.headers["location"] == "/returns", "no open redirect"


@SQLITE_ONLY
def test_a_decision_the_channel_needs_a_note_for_says_so_and_is_refused_without_one(db: Engine, tmp_path: Any,
                                                                                      clock: Any) -> None:
    from starlette.testclient import TestClient

    from retsync.testing.config import config_for
    from retsync.web import auth
    from retsync.web.app import create_app
    from tests.fakes import ScriptedConnector
    from tests.web.conftest import PASSWORD, fill, login

    class NoteNeeded(ScriptedConnector):
        @classmethod
        def decision_problem(cls, kind: Any, note: str | None) -> str | None:
            return "a rejection needs a reason for the customer" if kind.value == "reject" and not note else None

    fill(db, tmp_path)
    auth.add_user(db, "dan", "decider", PASSWORD)
    client = TestClient(create_app(db, config_for(tmp_path, str(db.url), {}), clock=clock,
                                   connector_for=lambda name: NoteNeeded))
    login(client, "dan")
    rid = _return_id(db, "R0")
    page = client.get(f"/returns/{rid}").text
    assert re.search(r'value="reject"[^>]*> Reject\s*<strong class="needs-note">\(needs a note\)', page)
    answer = client.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(page), "kind": "reject"})
    assert answer.status_code == 409 and "a rejection needs a reason for the customer" in answer.text
    assert _decisions(db) == []


@SQLITE_ONLY
def test_the_channels_page_shows_a_backfill_in_progress_and_escapes_channel_errors(as_user: Any, db: Engine,
                                                                                  clock: Any) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE channels SET last_pull_started_at = :at, last_success_at = NULL, "
                          "last_error = :error, last_error_at = :at, consecutive_failures = 2"),
                     {"at": clock(), "error": f"HTTP 500: {HOSTILE}"})
    page = as_user("vera").get("/channels").text
    assert "4 returns so far (first pull started" in page
    assert "2 failures in a row" in page and HOSTILE not in page and "&lt;script&gt;" in page


@SQLITE_ONLY
def test_the_channels_page_shows_the_rate_limit_waits_the_daemon_recorded(as_user: Any, db: Engine) -> None:
    client = as_user("vera")
    assert "Rate-limit waits</dt><dd>none</dd>" in client.get("/channels").text
    with db.begin() as conn:
        conn.execute(text("UPDATE channels SET rate_limit_waits = 7, rate_limit_wait_seconds = 42.4, "
                          "last_rate_limited_at = CURRENT_TIMESTAMP"))
    assert "7 requests held back by the channel, 42 s in all" in client.get("/channels").text
