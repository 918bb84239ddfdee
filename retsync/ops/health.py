"""How the running daemon is, in the three forms it is asked for: systemd's STATUS= line, /readyz, and the figures
/metrics exposes. Everything here is read from the database the daemon already writes, so what the admin sees in
`retsync channels`, in `systemctl status` and in Grafana can never disagree."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from retsync.kit.model import utcnow
from retsync.store.db import current_revision, database_problem, describe_database
from retsync.store.models import Channel, Decision, Notification, QuarantinedRecord, Return


@dataclass(frozen=True)
class ChannelState:
    name: str
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    returns: int = 0
    quarantined: int = 0


@dataclass
class StoreFigures:
    """One reading of the database: per channel, decisions and notifications by state, the oldest waiting decision."""

    channels: list[ChannelState] = field(default_factory=list)
    decisions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(channel, state) -> decision lines."""
    oldest_pending_at: datetime | None = None
    notifications: dict[str, int] = field(default_factory=dict)


WAITING = ("pending", "sending")


def read_figures(db: Engine, channels: Collection[str] | None = None) -> StoreFigures:
    """The figures of the channels named (all stored ones when None); one short read transaction."""
    figures = StoreFigures()
    with db.connect() as conn:
        returns = dict(conn.execute(select(Return.channel_id, func.count()).group_by(Return.channel_id)).all())
        quarantined = dict(conn.execute(select(QuarantinedRecord.channel_id, func.count())
                                        .where(QuarantinedRecord.resolved_at.is_(None))
                                        .group_by(QuarantinedRecord.channel_id)).all())
        names: dict[int, str] = {}
        for row in conn.execute(select(Channel.id, Channel.name, Channel.last_success_at, Channel.consecutive_failures,
                                       Channel.last_error).order_by(Channel.name)):
            if channels is not None and row.name not in channels:
                continue
            names[row.id] = row.name
            figures.channels.append(ChannelState(row.name, row.last_success_at, int(row.consecutive_failures or 0),
                                                 row.last_error, int(returns.get(row.id, 0)),
                                                 int(quarantined.get(row.id, 0))))
        for channel_id, state, count in conn.execute(
                select(Return.channel_id, Decision.state, func.count()).join(Return, Return.id == Decision.return_id)
                .group_by(Return.channel_id, Decision.state)):
            if channel_id in names:
                figures.decisions[(names[channel_id], state)] = int(count)
        figures.oldest_pending_at = conn.execute(
            select(func.min(Decision.created_at)).where(Decision.state.in_(WAITING))).scalar()
        figures.notifications = {state: int(n) for state, n in conn.execute(
            select(Notification.state, func.count()).group_by(Notification.state))}
    return figures


def status_line(figures: StoreFigures, threshold: int = 1) -> str:
    """What `systemctl status retsync` shows under the unit: the channels' state in one line."""
    failing = [c for c in figures.channels if c.consecutive_failures >= threshold]
    total = len(figures.channels)
    parts = [f"{total} channel{'s' if total != 1 else ''}: {total - len(failing)} ok"]
    if failing:
        parts[0] += f", {len(failing)} failing (" + ", ".join(
            f"{c.name} x{c.consecutive_failures}" for c in failing) + ")"
    waiting = sum(n for (_, state), n in figures.decisions.items() if state in WAITING)
    if waiting:
        parts.append(f"{waiting} decision line{'s' if waiting != 1 else ''} waiting to be pushed")
    return "; ".join(parts)


def readiness_problems(db: Engine, *, head: str | None, scheduler_running: Callable[[], bool],
                       channels: Collection[str], threshold: int) -> list[str]:
    """Why the daemon is not ready, one line each; empty when it is.

    Ready means: the schema is the one this retsync writes, the scheduler runs, and no channel has failed
    `threshold` polls in a row (one failed poll is a channel's hiccup; several are the admin's business).
    """
    problems = []
    if not scheduler_running():
        problems.append("the scheduler is not running")
    try:
        current = current_revision(db)
        if current != head:
            problems.append(f"the database schema is at {current or 'nothing'}, this retsync needs {head}: "
                            f"run `retsync db upgrade`")
        else:
            for channel in read_figures(db, channels).channels:
                if channel.consecutive_failures >= threshold:
                    problems.append(f"channel {channel.name} has failed {channel.consecutive_failures} polls in a "
                                    f"row: {channel.last_error or 'no error recorded'}")
    except Exception as exc:  # noqa: BLE001 - an unusable database is the answer, not a crash of the endpoint
        problems.append(database_problem(exc, describe_database(str(db.url.render_as_string(hide_password=True)))))
    return problems


def age_seconds(since: datetime | None, now: Callable[[], datetime] = utcnow) -> float:
    return max(0.0, (now() - since).total_seconds()) if since is not None else 0.0
