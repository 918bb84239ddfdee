"""Who gets in: passwords, sessions, CSRF, the login rate limit, the proxy header and where the console listens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from starlette.testclient import TestClient

from retsync.app.cli import main
from retsync.testing.config import config_for
from retsync.web import auth
from retsync.web.app import create_app
from retsync.web.settings import WebSettings
from retsync.web.tables import WebSession, WebUser
from tests.fakes import ScriptedConnector
from tests.web.conftest import PASSWORD, SQLITE_ONLY, csrf_of, login


def _sessions(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(WebSession)).scalar_one())


@SQLITE_ONLY
def test_a_wrong_password_is_refused_and_opens_no_session(console: Any, db: Engine) -> None:
    client = TestClient(console)
    answer = login(client, "dan", "not the password")
    assert answer.status_code == 401 and "Wrong user name or password." in answer.text
    answer = login(client, "nobody", PASSWORD)
    assert answer.status_code == 401
    assert _sessions(db) == 0
    assert client.get("/returns", follow_redirects=False).headers["location"].startswith("/login")


@SQLITE_ONLY
def test_the_session_cookie_is_httponly_and_samesite_strict_and_only_a_hash_is_stored(console: Any, db: Engine
                                                                                      ) -> None:
    client = TestClient(console)
    answer = login(client, "dan")
    assert answer.status_code == 303 and answer.headers["location"] == "/returns"
    cookie = answer.headers["set-cookie"]
    assert "retsync_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie, "plain http on loopback: a Secure cookie would never come back"
    token = client.cookies["retsync_session"]
    with db.connect() as conn:
        stored = conn.execute(select(WebSession.token_hash)).scalar_one()
    assert stored != token and len(stored) == 64
    assert client.get("/returns").status_code == 200


@SQLITE_ONLY
def test_over_tls_the_cookies_are_secure(db: Engine, tmp_path: Path) -> None:
    config = config_for(tmp_path, str(db.url), {})
    config.settings.web.tls_cert, config.settings.web.tls_key = "cert.pem", "key.pem"
    client = TestClient(create_app(db, config), base_url="https://127.0.0.1")
    assert "Secure" in client.get("/login").headers["set-cookie"]


@SQLITE_ONLY
def test_a_login_without_the_forms_csrf_token_is_refused(console: Any, db: Engine) -> None:
    client = TestClient(console)
    client.get("/login")
    answer = client.post("/login", data={"name": "dan", "password": PASSWORD, "csrf": "forged"})
    assert answer.status_code == 403 and _sessions(db) == 0


@SQLITE_ONLY
def test_logins_are_rate_limited_per_address_and_name(console: Any, clock: Any) -> None:
    client = TestClient(console)
    for _ in range(5):
        assert login(client, "dan", "guess").status_code == 401
    answer = login(client, "dan")
    assert answer.status_code == 429 and "Too many failed logins: try again in 15 minutes." in answer.text
    assert login(client, "ada").status_code == 303, "another name from the same address is not locked out"
    clock.now += timedelta(minutes=15, seconds=1)
    assert login(TestClient(console), "dan").status_code == 303


@SQLITE_ONLY
def test_logout_everywhere_ends_every_session_of_the_user(console: Any, as_user: Any, db: Engine) -> None:
    laptop, phone, other = as_user("dan"), as_user("dan"), as_user("ada")
    page = laptop.get("/returns")
    answer = laptop.post("/logout/everywhere", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    assert phone.get("/returns", follow_redirects=False).status_code == 303, "the phone is logged out too"
    assert other.get("/returns").status_code == 200, "other users stay logged in"
    assert _sessions(db) == 1


@SQLITE_ONLY
def test_logout_needs_the_csrf_token(console: Any, as_user: Any, db: Engine) -> None:
    client = as_user("dan")
    assert client.post("/logout", data={"csrf": "x"}).status_code == 403
    assert _sessions(db) == 1


@SQLITE_ONLY
def test_the_proxy_header_is_believed_only_from_the_configured_proxy(db: Engine, tmp_path: Path, console: Any) -> None:
    config = config_for(tmp_path, str(db.url), {})
    config.settings.web.trusted_proxies = ["10.0.0.5"]
    app = create_app(db, config, connector_for=lambda name: ScriptedConnector)
    via_proxy = TestClient(app, client=("10.0.0.5", 4000), headers={"X-Remote-User": "dan"})
    page = via_proxy.get("/returns")
    assert page.status_code == 200 and "dan (decider)" in page.text
    direct = TestClient(app, client=("10.0.0.9", 4000), headers={"X-Remote-User": "dan"})
    assert direct.get("/returns", follow_redirects=False).status_code == 303, "anyone else must log in"
    unknown = TestClient(app, client=("10.0.0.5", 4000), headers={"X-Remote-User": "mallory"})
    assert unknown.get("/returns", follow_redirects=False).status_code == 303, "only users in the database"
    with db.connect() as conn:
        rid = conn.execute(text("SELECT id FROM returns WHERE external_id = 'R0'")).scalar_one()
    form = via_proxy.get(f"/returns/{rid}").text
    assert via_proxy.post(f"/returns/{rid}/decide", data={"csrf": "forged", "kind": "accept"}).status_code == 403
    answer = via_proxy.post(f"/returns/{rid}/decide", data={"csrf": csrf_of(form), "kind": "accept"})
    assert answer.status_code == 200 and "Decision recorded" in answer.text, "proxy users' forms carry a token too"
    with db.connect() as conn:
        assert conn.execute(text("SELECT source FROM return_events WHERE kind = 'decision'")).scalar() == "web:dan"


@SQLITE_ONLY
def test_a_session_ends_after_its_lifetime(console: Any, as_user: Any, clock: Any) -> None:
    client = as_user("dan")
    clock.now += timedelta(hours=11, minutes=59)
    assert client.get("/returns", follow_redirects=False).status_code == 200
    clock.now += timedelta(minutes=2)
    assert client.get("/returns", follow_redirects=False).headers["location"] == "/login?next=/returns"


def test_listening_beyond_loopback_needs_tls_or_a_proxy() -> None:
    assert WebSettings().exposure_problem() is None
    assert "without TLS" in (WebSettings(listen="0.0.0.0:8080").exposure_problem() or "")
    assert WebSettings(listen="0.0.0.0:8080", trusted_proxies=["127.0.0.1"]).exposure_problem() is None
    assert WebSettings(listen="[::]:8443", tls_cert="c.pem", tls_key="k.pem").exposure_problem() is None
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        WebSettings(tls_cert="c.pem")
    with pytest.raises(ValueError, match="not HOST:PORT"):
        WebSettings(listen="8080")


@pytest.fixture
def config_file(tmp_path: Path, db: Engine, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[daemon]\nstate_dir = "{tmp_path}"\n')
    return path


@SQLITE_ONLY
def test_the_cli_refuses_to_serve_beyond_loopback_without_tls(config_file: Path, capsys: Any) -> None:
    assert main(["--config", str(config_file), "web", "--listen", "0.0.0.0:8080"]) == 2
    assert "reachable beyond this machine without TLS" in capsys.readouterr().err


@SQLITE_ONLY
def test_users_are_managed_from_the_cli(config_file: Path, db: Engine, capsys: Any, monkeypatch: Any) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["--config", str(config_file), "web", "user", "add", "zofia", "--role", "decider"]) == 0
    assert auth.check_password(db, "zofia", "a long enough secret") is not None
    with db.connect() as conn:
        stored = conn.execute(select(WebUser.password_hash).where(WebUser.name == "zofia")).scalar_one()
    assert stored.startswith("$argon2id$") and "a long enough secret" not in stored
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(config_file), "web", "user", "add", "olek", "--role", "viewer"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert main(["--config", str(config_file), "web", "user", "role", "zofia", "admin"]) == 0
    assert main(["--config", str(config_file), "web", "user", "list"]) == 0
    assert "zofia" in capsys.readouterr().out and auth.user_named(db, "zofia").role == "admin"  # type: ignore[union-attr]
    assert main(["--config", str(config_file), "web", "user", "add", "zofia", "--role", "viewer",
                 "--proxy-only"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["--config", str(config_file), "web", "user", "remove", "zofia"]) == 0
    assert auth.user_named(db, "zofia") is None
