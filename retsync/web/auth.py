"""Who is at the console: users with argon2-hashed passwords, sessions, CSRF tokens and the login rate limit.

A session cookie carries a random token; the database keeps only its SHA-256, so a copy of the database (or a
backup) logs nobody in. Each session has its own CSRF token, which every form carries back.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, func, insert, select, update

from retsync.kit.model import utcnow
from retsync.web.settings import ROLES
from retsync.web.tables import WebSession, WebUser

MIN_PASSWORD = 10
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name's password is checked against, so a login takes as long whether or not the name
    exists; made on first use (hashing takes about half a second, which every CLI command paid at import)."""
    return _hasher.hash("not a password anyone has")


class UserError(Exception):
    """A user command that cannot be done; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    csrf: str = ""

    @property
    def can_decide(self) -> bool:
        return self.role in ("decider", "admin")

    @property
    def can_force(self) -> bool:
        return self.role == "admin"

    @property
    def sees_contacts(self) -> bool:
        return self.role in ("decider", "admin")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def add_user(db: Engine, name: str, role: str, password: str | None, now: datetime | None = None) -> None:
    """A new user; `password` None makes one who logs in only through the trusted reverse proxy."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise UserError(f"user name {name!r}: 1 to 100 printable characters without spaces")
    hashed = _hasher.hash(_check_password(password)) if password is not None else None
    with db.begin() as conn:
        if conn.execute(select(WebUser.id).where(WebUser.name == name)).first() is not None:
            raise UserError(f"user {name!r} exists already (`retsync web user password` or `role` changes it)")
        conn.execute(insert(WebUser).values(name=name, role=_check_role(role), password_hash=hashed,
                                            created_at=now, updated_at=now))


def _user_id(conn: object, name: str) -> int:
    found = conn.execute(select(WebUser.id).where(WebUser.name == name)).scalar()  # type: ignore[attr-defined]
    if found is None:
        raise UserError(f"no user {name!r} (see `retsync web user list`)")
    return int(found)


def set_password(db: Engine, name: str, password: str) -> None:
    """A new password also ends the user's sessions: whoever knew the old one is logged out."""
    hashed = _hasher.hash(_check_password(password))
    with db.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(update(WebUser).where(WebUser.id == user_id).values(password_hash=hashed, updated_at=utcnow()))
        conn.execute(delete(WebSession).where(WebSession.user_id == user_id))


def set_role(db: Engine, name: str, role: str) -> None:
    with db.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(update(WebUser).where(WebUser.id == user_id).values(role=_check_role(role), updated_at=utcnow()))


def remove_user(db: Engine, name: str) -> None:
    with db.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(delete(WebSession).where(WebSession.user_id == user_id))
        conn.execute(delete(WebUser).where(WebUser.id == user_id))


def list_users(db: Engine, now: datetime | None = None) -> list[dict[str, object]]:
    now = now or utcnow()
    with db.connect() as conn:
        sessions = dict(conn.execute(select(WebSession.user_id, func.count()).where(WebSession.expires_at > now)
                                     .group_by(WebSession.user_id)).all())
        return [{"name": row.name, "role": row.role, "password": row.password_hash is not None,
                 "sessions": int(sessions.get(row.id, 0))}
                for row in conn.execute(select(WebUser.id, WebUser.name, WebUser.role, WebUser.password_hash)
                                        .order_by(WebUser.name))]


def check_password(db: Engine, name: str, password: str) -> User | None:
    """The user, if the password is theirs. An unknown name costs the same hashing time as a wrong password."""
    with db.connect() as conn:
        row = conn.execute(select(WebUser.id, WebUser.name, WebUser.role, WebUser.password_hash)
                           .where(WebUser.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row is not None and row.password_hash else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row.password_hash:
        return None
    return User(int(row.id), row.name, row.role)


def user_named(db: Engine, name: str) -> User | None:
    with db.connect() as conn:
        row = conn.execute(select(WebUser.id, WebUser.name, WebUser.role).where(WebUser.name == name)).first()
    return User(int(row.id), row.name, row.role) if row is not None else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Engine, user: User, lifetime: timedelta, now: datetime) -> str:
    """A new session for `user`; answers the cookie's token (shown once, stored only hashed)."""
    token = secrets.token_urlsafe(32)
    with db.begin() as conn:
        conn.execute(delete(WebSession).where(WebSession.expires_at <= now))
        conn.execute(insert(WebSession).values(token_hash=_digest(token), user_id=user.id,
                                               csrf=secrets.token_urlsafe(32), created_at=now,
                                               expires_at=now + lifetime))
    return token


def session_user(db: Engine, token: str | None, now: datetime) -> User | None:
    if not token:
        return None
    with db.connect() as conn:
        row = conn.execute(
            select(WebUser.id, WebUser.name, WebUser.role, WebSession.csrf)
            .join(WebSession, WebSession.user_id == WebUser.id)
            .where(WebSession.token_hash == _digest(token), WebSession.expires_at > now)).first()
    return User(int(row.id), row.name, row.role, row.csrf) if row is not None else None


def close_session(db: Engine, token: str | None) -> None:
    if token:
        with db.begin() as conn:
            conn.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))


def close_all_sessions(db: Engine, user_id: int) -> int:
    """Logout everywhere: every browser of this user has to log in again."""
    with db.begin() as conn:
        return int(conn.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0)


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


class LoginLimiter:
    """At most `attempts` failed logins per (address, user name) within `window`; then refused until the oldest
    failure leaves the window. Kept in memory: a restart forgets it, which only gives an attacker one more batch."""

    def __init__(self, attempts: int, window: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[datetime]:
        failures, cutoff = self._failures[key], self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def wait(self, address: str, name: str) -> timedelta | None:
        """How long until this address may try this name again; None: it may now."""
        failures = self._recent((address, name.lower()))
        if len(failures) < self.attempts:
            return None
        return failures[0] + self.window - self.clock()

    def failed(self, address: str, name: str) -> None:
        self._recent((address, name.lower())).append(self.clock())

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop((address, name.lower()), None)
