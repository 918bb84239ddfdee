"""Database state written directly, for the events the sandboxes cannot be made to produce on cue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from retsync.config import Config, Settings
from retsync.kit.settings import ChannelSettings
from retsync.notify.outbox import Notifier
from retsync.store.channels import ensure_channel
from retsync.store.models import Decision, Notification, Return, ReturnFlag, ReturnLine

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Shop:
    db: Engine
    clock: Clock
    channel_id: int = 0
    returns: int = field(default=0)

    def add_return(self, *, created: datetime | None = None, email: str | None = "anna.nowak@example.pl",
                   status: str = "requested", **values: Any) -> tuple[int, int]:
        self.returns += 1
        now = self.clock()
        with self.db.begin() as conn:
            return_id = conn.execute(insert(Return).values(
                channel_id=self.channel_id, external_id=f"R{self.returns}", order_external_id=f"O{self.returns}",
                status=status, created_at=created or now, customer_email=email, customer_name="Anna Nowak",
                handled_by_channel=False, extra={}, content_hash="x", first_seen_at=now, updated_at=now,
                reason="wrong_size", **values)).inserted_primary_key[0]
            line_id = conn.execute(insert(ReturnLine).values(
                return_id=return_id, external_id="L1", quantity=2, title="Blue shirt", sku="SH-1")
            ).inserted_primary_key[0]
        return int(return_id), int(line_id)

    def add_line(self, return_id: int, external_id: str = "L2") -> int:
        with self.db.begin() as conn:
            return int(conn.execute(insert(ReturnLine).values(
                return_id=return_id, external_id=external_id, quantity=1, title="Red shirt", sku="SH-2")
            ).inserted_primary_key[0])

    def change(self, return_id: int, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(update(Return).where(Return.id == return_id).values(updated_at=self.clock(), **values))

    def flag(self, return_id: int, code: str, detail: str = "look at it") -> int:
        with self.db.begin() as conn:
            return int(conn.execute(insert(ReturnFlag).values(
                return_id=return_id, code=code, detail=detail, flagged_at=self.clock(), updated_at=self.clock())
            ).inserted_primary_key[0])

    def decision(self, return_id: int, line_id: int, kind: str, state: str, **values: Any) -> int:
        now = self.clock()
        key = f"k{return_id}-{line_id}-{kind}-{state}"
        with self.db.begin() as conn:
            return int(conn.execute(insert(Decision).values(
                return_id=return_id, return_line_id=line_id, kind=kind, quantity=1, origin="merchant", state=state,
                idempotency_key=key, act_key=values.pop("act_key", key), attempts=values.pop("attempts", 1),
                created_at=now, updated_at=now, **values)).inserted_primary_key[0])


def make_config(tmp_path: Path, db_url: str, notify: dict[str, Any], **channel: Any) -> Config:
    table = {"connector": "woocommerce", "notify_customers": True, **channel}
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, notify=notify,
                        channels={"shop": table})
    return Config(path=tmp_path / "config.toml", settings=settings, channels={"shop": ChannelSettings(**table)})


def shop(db: Engine, clock: Clock) -> Shop:
    return Shop(db, clock, ensure_channel(db, "shop", "woocommerce", clock()))


def notifier(db: Engine, config: Config, clock: Clock) -> Notifier:
    return Notifier(db, config, clock=clock)


def outbox(db: Engine) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(Notification).order_by(Notification.id)))


def cli_config(tmp_path: Path, db_url: str, notify: str = "") -> Path:
    """A config file for the command line with the `shop` channel of `make_config`; `notify` is a `[notify]` table."""
    (tmp_path / "woo_key").write_text("ck_" + "k" * 20)
    (tmp_path / "woo_secret").write_text("cs_" + "s" * 20)
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[daemon]
state_dir = "{tmp_path}"
{notify}
[channels.shop]
connector = "woocommerce"
base_url = "https://shop.invalid"
consumer_key = "file:{tmp_path / 'woo_key'}"
consumer_secret = "file:{tmp_path / 'woo_secret'}"
notify_customers = true
""")
    return path
