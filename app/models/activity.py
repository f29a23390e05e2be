from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class Activity(db.Model):
    """One entry of the notes & activities timeline: who did what to which subject, and when.

    ``subject_type``/``subject_id`` name the item (``exemption_request``, ``certificate_request``,
    ...); ``customer_id`` lets the customer's page show the timeline of all its items.
    """

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int]
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(sa.String(120), default="system")
    action: Mapped[str] = mapped_column(sa.String(60))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    is_note: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    actor: Mapped["User | None"] = relationship()  # noqa: F821

    __table_args__ = (sa.Index("ix_activities_subject", "subject_type", "subject_id"),)
