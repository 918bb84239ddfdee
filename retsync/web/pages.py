"""The console's pages: Returns, Return (with Decide), Flags, Channels and Report.

Each reads through the helpers the CLI uses (`retsync.app.queries`, `retsync.outbox.decisions`, the report's
figures), so the console and `retsync returns show` / `decide` / `report` can never disagree.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from retsync.kit.model import DecisionKind, DecisionState, ReturnStatus
from retsync.outbox.decisions import DecisionRefused, record_decision, retry_failed
from retsync.reconcile.flags import FlagCode
from retsync.store.models import Channel, Decision, Order, Return, ReturnEvent, ReturnFlag
from retsync.web.auth import User
from retsync.web.console import Console
from retsync.web.listing import SORTS, Filters, filter_choices, list_page

DECISION_STATES = [s.value for s in DecisionState]


def _date(value: str | None, field: str, problems: list[str], t: Any, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        problems.append(t("filter.bad_date", field=t(f"filter.{field}"), value=value))
        return None
    return day + timedelta(days=1) if end else day


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 9 else 1


def returns_page(console: Console, request: Request, user: User) -> Response:
    q = request.query_params
    t = console.translator(request)
    problems: list[str] = []
    sort = q.get("sort") if q.get("sort") in SORTS else "created"
    filters = Filters(
        channel=q.get("channel") or None, marketplace=q.get("marketplace") or None,
        status=q.get("status") if q.get("status") in {s.value for s in ReturnStatus} else None,
        decision_state=q.get("decision") if q.get("decision") in {*DECISION_STATES, "none"} else None,
        flag=q.get("flag") if q.get("flag") in {c.value for c in FlagCode} else None,
        since=_date(q.get("since"), "since", problems, t), until=_date(q.get("until"), "until", problems, t, end=True),
        q=(q.get("q") or "").strip()[:200] or None, sort=sort, descending=q.get("dir") != "asc",
        page=_page_number(q.get("page")),
        customer_group=int(q["group"]) if (q.get("group") or "").isdigit() and len(q["group"]) < 18 else None)
    listing = list_page(console.db, filters)
    params = {k: v for k, v in q.items() if k != "page" and v}
    return console.render(request, "returns.html", user, listing=listing, choices=filter_choices(console.db),
                          params=params, problems=problems, statuses=[s.value for s in ReturnStatus],
                          decision_states=DECISION_STATES, flag_codes=[c.value for c in FlagCode], sorts=list(SORTS))


def _story(console: Console, return_id: int) -> dict[str, Any] | None:
    """The return as `retsync returns show` reads it, plus what only the console shows: the customer's other
    orders and returns on every channel, the channel's answer to each decision and who took it."""
    from retsync.app.queries import return_story

    try:
        story = return_story(console.db, str(return_id))
    except DecisionRefused:
        return None
    with console.db.connect() as conn:
        story["decision_rows"] = [dict(r._mapping) for r in conn.execute(
            select(Decision.id, Decision.return_line_id, Decision.kind, Decision.quantity, Decision.origin,
                   Decision.state, Decision.attempts, Decision.last_error, Decision.reference, Decision.result,
                   Decision.note, Decision.created_at, Decision.pushed_at)
            .where(Decision.return_id == return_id).order_by(Decision.id))]
        authors = {(r.return_line_id, r.at): r.source for r in conn.execute(
            select(ReturnEvent.return_line_id, ReturnEvent.at, ReturnEvent.source)
            .where(ReturnEvent.return_id == return_id, ReturnEvent.kind == "decision"))}
        for row in story["decision_rows"]:
            row["by"] = authors.get((row["return_line_id"], row["created_at"]), row["origin"])
        group = story["details"]["customer_group_id"]
        story["group_returns"], story["group_orders"] = [], []
        if group is not None:
            story["group_returns"] = [dict(r._mapping) for r in conn.execute(
                select(Return.id, Channel.name.label("channel"), Return.external_id, Return.status,
                       Return.created_at, Return.marketplace)
                .join(Channel, Channel.id == Return.channel_id)
                .where(Return.customer_group_id == group, Return.id != return_id)
                .order_by(Return.created_at.desc()).limit(50))]
            story["group_orders"] = [dict(r._mapping) for r in conn.execute(
                select(Channel.name.label("channel"), Order.external_id, Order.placed_at, Order.total_amount,
                       Order.currency)
                .join(Channel, Channel.id == Order.channel_id)
                .where(Order.customer_group_id == group).order_by(Order.placed_at.desc()).limit(50))]
    photos = story["details"]["extra"].get("photos") if isinstance(story["details"]["extra"], dict) else None
    story["photos"] = [p for p in photos if isinstance(p, str) and re.match(r"^https://", p)] if isinstance(
        photos, list) else []
    return story


def _decision_choices(console: Console, connector: str) -> list[dict[str, Any]]:
    """The six decisions, each with whether this channel can carry it out and, if not, the connector's reason."""
    cls = console.connector_for(connector)
    choices = []
    for kind in DecisionKind:
        if cls is None:
            choices.append({"kind": kind.value, "ok": False, "why": f"connector {connector!r} is not installed"})
        elif cls.capabilities.supports(kind):
            needs_note = cls.decision_problem(kind, None) is not None and cls.decision_problem(kind, "-") is None
            choices.append({"kind": kind.value, "ok": True, "why": cls.capabilities.decisions[kind],
                            "needs_note": needs_note})
        else:
            choices.append({"kind": kind.value, "ok": False, "why": cls.capabilities.why_unsupported(kind)})
    return choices


def _render_return(console: Console, request: Request, user: User, return_id: int, status: int = 200,
                   message: str | None = None, error: str | None = None, form: dict[str, Any] | None = None
                   ) -> Response:
    story = _story(console, return_id)
    t = console.translator(request)
    if story is None:
        return console.render(request, "error.html", user, status=404, message=t("error.not_found"))
    return console.render(request, "return.html", user, status=status, story=story, r=story["return"],
                          d=story["details"], choices=_decision_choices(console, story["return"]["connector"]),
                          message=message, error=error, form=form or {})


def return_page(console: Console, request: Request, user: User) -> Response:
    t = console.translator(request)
    recorded = request.query_params.get("recorded")
    message = t("decide.recorded", kind=t(f"kind.{recorded}")) if recorded in {k.value for k in DecisionKind} else None
    return _render_return(console, request, user, request.path_params["id"], message=message)


def decision_states(console: Console, request: Request, user: User) -> Response:
    """What `console.js` polls: each decision's outbox state, until none is pending or sending."""
    t = console.translator(request)
    with console.db.connect() as conn:
        rows = conn.execute(select(Decision.id, Decision.state, Decision.last_error)
                            .where(Decision.return_id == request.path_params["id"]).order_by(Decision.id)).all()
    return JSONResponse({"decisions": [{"id": r.id, "state": r.state, "label": t(f"state.{r.state}"),
                                        "open": r.state in ("pending", "sending")} for r in rows]},
                        headers={"cache-control": "no-store"})


def decide(console: Console, request: Request, user: User) -> Response:
    t = console.translator(request)
    return_id = request.path_params["id"]
    if not user.can_decide:
        return console.render(request, "error.html", user, status=403, message=t("forbidden.decide", role=user.role))
    form = request.state.form
    kind_value = str(form.get("kind") or "")
    if kind_value not in {k.value for k in DecisionKind}:
        return _render_return(console, request, user, return_id, status=422, error=t("decide.bad_kind"))
    lines: dict[str, int | None] = {}
    for key in form.getlist("line"):
        units = str(form.get(f"qty_{key}") or "").strip()
        if units and not units.isdigit():
            return _render_return(console, request, user, return_id, status=422,
                                  error=t("decide.bad_quantity", line=key))
        lines[str(key)] = int(units) if units else None
    note = str(form.get("note") or "").strip() or None
    force = bool(form.get("force")) and user.can_force
    try:
        recorded = record_decision(
            console.db, str(return_id), DecisionKind(kind_value), note=note, lines=lines or None,
            connector_for=console.connector_for, source=f"web:{user.name}", now=console.clock(),
            refuse_flagged=not force, refuse_contradicting=not force,
            override_hint="an admin can tick “record anyway”" if not user.can_force else "tick “record anyway”")
    except DecisionRefused as exc:
        return _render_return(console, request, user, return_id, status=409, error=t("decide.refused", why=str(exc)),
                              form={"kind": kind_value, "note": note or ""})
    if recorded.state is DecisionState.UNSUPPORTED:
        return _render_return(console, request, user, return_id, status=409,
                              error=t("decide.recorded_unsupported", why=recorded.detail or ""))
    return RedirectResponse(f"/returns/{return_id}?recorded={kind_value}", status_code=303)


def flags_page(console: Console, request: Request, user: User) -> Response:
    q = request.query_params
    code = q.get("code") if q.get("code") in {c.value for c in FlagCode} else None
    channel = q.get("channel") or None
    where = [ReturnFlag.resolved_at.is_(None)]
    if code:
        where.append(ReturnFlag.code == code)
    if channel:
        where.append(Channel.name == channel)
    with console.db.connect() as conn:
        counts = [dict(r._mapping) for r in conn.execute(
            select(ReturnFlag.code, Channel.name.label("channel"), func.count().label("open"))
            .join(Return, Return.id == ReturnFlag.return_id).join(Channel, Channel.id == Return.channel_id)
            .where(ReturnFlag.resolved_at.is_(None)).group_by(ReturnFlag.code, Channel.name)
            .order_by(ReturnFlag.code, Channel.name))]
        rows = [dict(r._mapping) for r in conn.execute(
            select(ReturnFlag.code, ReturnFlag.detail, ReturnFlag.flagged_at, ReturnFlag.return_line_id,
                   Return.id.label("return_id"), Return.external_id, Channel.name.label("channel"))
            .join(Return, Return.id == ReturnFlag.return_id).join(Channel, Channel.id == Return.channel_id)
            .where(*where).order_by(ReturnFlag.flagged_at.desc(), ReturnFlag.id.desc()).limit(500))]
    return console.render(request, "flags.html", user, counts=counts, rows=rows, code=code, channel=channel)


def channels_page(console: Console, request: Request, user: User, message: str | None = None) -> Response:
    from retsync.app.queries import channel_health
    from retsync.notify.outbox import notification_problems
    from retsync.store.quarantine import open_by_channel

    rows = channel_health(console.db)
    notifying = notification_problems(console.db)
    with console.db.connect() as conn:
        quarantined = open_by_channel(conn)
        failed = [dict(r._mapping) for r in conn.execute(
            select(Decision.id, Decision.kind, Decision.quantity, Decision.last_error, Decision.updated_at,
                   Decision.act_key, Return.id.label("return_id"), Return.external_id, Channel.name.label("channel"))
            .join(Return, Return.id == Decision.return_id).join(Channel, Channel.id == Return.channel_id)
            .where(Decision.state == DecisionState.FAILED.value, Decision.origin.in_(("merchant", "shop")))
            .order_by(Decision.updated_at.desc(), Decision.id.desc()).limit(200))]
    for row in rows:
        row["quarantine"] = quarantined.get(row["name"], {"open": 0, "newest": []})
        configured = console.config.channels.get(row["name"])
        row["enabled"] = configured is not None and configured.enabled
        row["backfilling"] = row["last_success_at"] is None and row["last_pull_started_at"] is not None
        row["notifications"] = notifying.get(row["name"])
    return console.render(request, "channels.html", user, rows=rows, failed=failed, message=message)


def retry(console: Console, request: Request, user: User) -> Response:
    t = console.translator(request)
    if not user.can_decide:
        return console.render(request, "error.html", user, status=403, message=t("forbidden.retry", role=user.role))
    decision = str(request.state.form.get("decision") or "")
    if not decision.isdigit() or len(decision) > 18:
        return console.render(request, "error.html", user, status=404, message=t("error.not_found"))
    try:
        retry_failed(console.db, int(decision), source=f"web:{user.name}", now=console.clock())
    except DecisionRefused as exc:
        return console.render(request, "error.html", user, status=409, message=str(exc))
    return channels_page(console, request, user, message=t("channels.retried", id=decision))


def report_page(console: Console, request: Request, user: User) -> Response:
    """The report's figures (`build_report`, as `retsync report --format json` has them) and its SVG charts, in
    the console's words and language."""
    from retsync.report import ReportUsageError, fmt, parse_period, svg
    from retsync.report.kpis import build_report
    from retsync.report.money import format_totals

    t = console.translator(request)
    since = request.query_params.get("since") or None
    until = request.query_params.get("until") or None
    if since is None and until is None:
        since = (console.clock() - timedelta(days=90)).date().isoformat()
    try:
        period = parse_period(since, until)
    except ReportUsageError as exc:
        return console.render(request, "report.html", user, status=422, report=None, since=since or "",
                              until=until or "", error=t("report.bad_period", why=str(exc)))
    report = build_report(console.db, console.config, period, now=console.clock())
    names = [ch["channel"] for ch in report["channels"]]
    weeks = report["weekly_returns"]
    charts = {
        "weekly": svg.stacked_columns("chart-weekly", t("report.weekly"), [w["week"] for w in weeks],
                                      {name: [w["channels"].get(name, 0) for w in weeks] for name in names})
        if weeks else None,
        "reasons": svg.horizontal_bars("chart-reasons", t("report.reasons"),
                                       [(r["reason"], r["returns"]) for r in report["reasons"]])
        if report["reasons"] else None,
        "refund_times": svg.columns("chart-refund-times", t("report.refund_times"),
                                    [(b["label"], b["returns"]) for b in report["time_to_refund"]["buckets"]]),
    }
    return console.render(request, "report.html", user, report=report, charts=charts, since=since or "",
                          until=until or "", error=None, percent=fmt.percent, hours=fmt.hours,
                          totals=format_totals, marketplaces=fmt.marketplace_rows(report))
