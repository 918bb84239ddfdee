"""The operations tables, declared on the store's `Base` (the migration 0016 creates them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from retsync.store.models import Base, Id


class PersonalDataErasure(Base):
    """A return or an order whose customer's personal data retsync erased, when and why (`retention`, `forget`).

    The record itself stays (figures, views and customer groups keep working); this row is how the retention job
    knows to erase again what a later pull of a changed record brought back, and how an export says what is gone.
    """

    __tablename__ = "personal_data_erasures"
    __table_args__ = (UniqueConstraint("record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    record_kind: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[int] = mapped_column(Id)
    reason: Mapped[str] = mapped_column(String(20))
    erased_at: Mapped[datetime]
