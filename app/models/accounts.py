"""Customer-user invitations (set-password links) and kept WOS requests waiting for a new card."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class UserInvitation(TimestampMixin, db.Model):
    """One set-password link sent to a user. The token is never stored: it is derived from SECRET_KEY,
    the id and the random ``nonce``; only its SHA-256 is kept. A link is live until it is used, re-sent
    (``replaced_at``) or past ``expires_at``."""

    __tablename__ = "user_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    nonce: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])  # noqa: F821

    def is_live(self, now: datetime) -> bool:
        return self.used_at is None and self.replaced_at is None and now < self.expires_at


class RequestDraft(TimestampMixin, db.Model):
    """A WOS request whose card payment was declined, kept as the customer typed it so that after
    replacing the card it can be retried without typing again. ``retry_key`` is the idempotency key of
    the retry: submitting it twice creates one request and one charge."""

    __tablename__ = "request_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), unique=True)
    type: Mapped[str] = mapped_column(sa.String(20))
    fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    retry_key: Mapped[str] = mapped_column(sa.String(80))
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("certificate_requests.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
