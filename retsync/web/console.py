"""What every request of the console needs: the database, settings, templates, clock, login limiter, and who
is asking (a session, or the trusted proxy's header)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from retsync.config import Config
from retsync.logs import redact_personal
from retsync.report.money import format_money
from retsync.web import auth
from retsync.web.i18n import Translator, languages
from retsync.web.settings import WebSettings

HERE = Path(__file__).parent
SESSION_COOKIE = "retsync_session"
LOGIN_CSRF_COOKIE = "retsync_login"
LANGUAGE_COOKIE = "retsync_lang"


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if value else "–"


def _money(amount: int | None, currency: str | None) -> str:
    return format_money(amount, currency) if amount is not None and currency else "–"


class Console:
    """What every request needs: the database, the settings, the templates, the clock and the login limiter."""

    def __init__(self, db: Engine, config: Config, settings: WebSettings, clock: Callable[[], datetime],
                 connector_for: Callable[[str], Any]) -> None:
        self.db, self.config, self.settings, self.clock, self.connector_for = db, config, settings, clock, connector_for
        self.limiter = auth.LoginLimiter(settings.login_attempts, settings.login_window, clock)
        self.proxy_secret = secrets.token_bytes(32)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(when=_when, redact=redact_personal)
        self.env.globals.update(money=_money, languages=languages)

    # --- who is asking ------------------------------------------------------------------------------

    def client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def from_proxy(self, request: Request) -> bool:
        return bool(self.settings.trusted_proxies) and self.client(request) in self.settings.trusted_proxies

    def user(self, request: Request) -> auth.User | None:
        """The logged-in user: named by the trusted proxy's header (only from its address), else by the session."""
        if self.from_proxy(request):
            name = request.headers.get(self.settings.user_header)
            if name:
                found = auth.user_named(self.db, name)
                if found is None:
                    return None
                token = hmac.new(self.proxy_secret, f"{found.id}:{found.name}".encode(), hashlib.sha256).hexdigest()
                return auth.User(found.id, found.name, found.role, token)
        return auth.session_user(self.db, request.cookies.get(SESSION_COOKIE), self.clock())

    def translator(self, request: Request) -> Translator:
        return Translator(request.cookies.get(LANGUAGE_COOKIE) or self.settings.language)

    def render(self, request: Request, template: str, user: auth.User | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        t = self.translator(request)
        html = self.env.get_template(template).render(
            t=t, lang=t.language, user=user, csrf=user.csrf if user else "", path=request.url.path,
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""), **context)
        return HTMLResponse(html, status_code=status)

    def cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        """HttpOnly and SameSite=Strict always; Secure when the browser reaches the console over HTTPS (its own
        TLS, or the HTTPS of the trusted reverse proxy in front of it)."""
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                            secure=self.settings.tls or bool(self.settings.trusted_proxies), path="/")
