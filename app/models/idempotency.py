"""Idempotency keys of API calls that create something without a key column of their own.

One row per (scope, key), written in the same transaction as what the call created: a retry with the
key finds the row and answers the first result again, and two simultaneous twins collide on the
unique constraint, so only one of them creates anything.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(80))  # e.g. "exemption-requests:user:7"
    key: Mapped[str] = mapped_column(sa.String(80))
    body_hash: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of the canonical request body
    resource_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
