"""The console's Starlette application: security headers, who is logged in, and the routes.

Every page is rendered on the server with Jinja2 (autoescape on: channel text is customer-typed); the only script
is `static/console.js`, served from here, which follows a decision's outbox state. Database work runs in
Starlette's thread pool, so a slow query never stalls the other requests.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retsync import registry
from retsync.config import Config
from retsync.kit.model import utcnow
from retsync.web import auth, pages
from retsync.web.console import HERE, LANGUAGE_COOKIE, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Console
from retsync.web.i18n import languages

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """The same strict headers on every answer, pages, assets and errors alike."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if self.tls:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


Handler = Callable[[Console, Request, auth.User], Response]


def _login_required(console: Console, handler: Handler, form: bool = False
                    ) -> Callable[[Request], Awaitable[Response]]:
    """Run `handler` in the thread pool for a logged-in user; a form must carry the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        user = await run_in_threadpool(console.user, request)
        if user is None:
            if request.method == "GET" and not request.url.path.endswith(".json"):
                return RedirectResponse("/login?next=" + _local(request.url.path), status_code=303)
            return Response("not logged in", status_code=401, media_type="text/plain")
        if form:
            data = await request.form()
            if not auth.same_token(str(data.get("csrf") or ""), user.csrf):
                t = console.translator(request)
                return console.render(request, "error.html", user, status=403, message=t("csrf.refused"))
            request.state.form = data
        return await run_in_threadpool(handler, console, request, user)

    return endpoint


def _local(path: str | None) -> str:
    """Only a path on this site is a place to go back to (no `//host`, no scheme)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/returns"
    return path


def create_app(db: Engine, config: Config, *, clock: Callable[[], datetime] = utcnow,
               connector_for: Callable[[str], Any] = registry.get) -> ASGIApp:
    settings = config.settings.web
    console = Console(db, config, settings, clock, connector_for)

    async def login_form(request: Request) -> Response:
        user = await run_in_threadpool(console.user, request)
        if user is not None:
            return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
        return _login_page(request, None, 200)

    def _login_page(request: Request, message: str | None, status: int) -> Response:
        token = secrets.token_urlsafe(32)
        response = console.render(request, "login.html", None, status=status, message=message, login_csrf=token,
                                   next=_local(request.query_params.get("next")),
                                   out=request.query_params.get("out") == "everywhere")
        console.cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    async def login(request: Request) -> Response:
        data = await request.form()
        t = console.translator(request)
        if not auth.same_token(str(data.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE)):
            return _login_page(request, t("csrf.refused"), 403)
        name, password = str(data.get("name") or "").strip(), str(data.get("password") or "")
        address = console.client(request)
        wait = console.limiter.wait(address, name)
        if wait is not None:
            return _login_page(request, t("login.limited", minutes=max(1, -(-int(wait.total_seconds()) // 60))), 429)
        user = await run_in_threadpool(auth.check_password, db, name, password)
        if user is None:
            console.limiter.failed(address, name)
            return _login_page(request, t("login.wrong"), 401)
        console.limiter.succeeded(address, name)
        token = await run_in_threadpool(auth.open_session, db, user, settings.session_lifetime, clock())
        response = RedirectResponse(_local(str(data.get("next") or "")), status_code=303)
        console.cookie(response, SESSION_COOKIE, token, max_age=int(settings.session_lifetime.total_seconds()))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    def logout(console: Console, request: Request, user: auth.User) -> Response:
        auth.close_session(db, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def logout_everywhere(console: Console, request: Request, user: auth.User) -> Response:
        auth.close_all_sessions(db, user.id)
        response = RedirectResponse("/login?out=everywhere", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def language(request: Request) -> Response:
        code = request.path_params["code"]
        response = RedirectResponse(_local(request.query_params.get("next")), status_code=303)
        if code in languages():
            console.cookie(response, LANGUAGE_COOKIE, code, max_age=365 * 24 * 3600)
        return response

    async def root(request: Request) -> Response:
        return RedirectResponse("/returns", status_code=303)

    async def not_found(request: Request, exc: Exception) -> Response:
        user = await run_in_threadpool(console.user, request)
        t = console.translator(request)
        return console.render(request, "error.html", user, status=404, message=t("error.not_found"))

    need = _login_required
    routes = [
        Route("/", root),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", need(console, logout, form=True), methods=["POST"]),
        Route("/logout/everywhere", need(console, logout_everywhere, form=True), methods=["POST"]),
        Route("/language/{code}", language),
        Route("/returns", need(console, pages.returns_page)),
        Route("/returns/{id:int}", need(console, pages.return_page)),
        Route("/returns/{id:int}/decisions.json", need(console, pages.decision_states)),
        Route("/returns/{id:int}/decide", need(console, pages.decide, form=True), methods=["POST"]),
        Route("/flags", need(console, pages.flags_page)),
        Route("/channels", need(console, pages.channels_page)),
        Route("/channels/retry", need(console, pages.retry, form=True), methods=["POST"]),
        Route("/report", need(console, pages.report_page)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.console = console
    return SecurityHeaders(app, settings.tls)
