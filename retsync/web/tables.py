"""The web console's own tables: its users and their sessions.

Declared on the store's `Base` so the migrations test compares them too; created by migration 0015.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from retsync.store.models import Base, Id, Return, ReturnLine


class WebUser(Base):
    """A person who may open the console, and what they may do there (viewer, decider, admin).

    `password_hash` is an argon2 hash; None for a user who only comes in through a trusted reverse proxy.
    """

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebSession(Base):
    """A logged-in browser. Only a hash of the cookie's token is stored, so a copy of the database opens nothing;
    `csrf` is the token every form of the session carries back."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


SEARCH_INDEXES = (
    Index("ix_returns_external_id", Return.external_id),
    Index("ix_returns_customer_email", Return.customer_email),
    Index("ix_returns_marketplace", Return.marketplace),
    Index("ix_return_lines_sku", ReturnLine.sku),
    Index("ix_return_lines_ean", ReturnLine.ean),
)
"""What the Returns page's search box and marketplace filter look up, so they need no pass over every return
on 100,000 of them. Declared here, beside the console that needs them, on the store's tables."""
