"""The sandbox payment gateway's own ledger of charges (stands in for the gateway's database).

Kept in the database, not in process memory, so every web process and worker sees the same
charges: a retry with the same idempotency key finds the original charge wherever it runs.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class SandboxCharge(db.Model):
    __tablename__ = "sandbox_charges"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    charge_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    card_token: Mapped[str] = mapped_column(sa.String(64))
    amount_cents: Mapped[int] = mapped_column(default=0)
    # "approved" or "declined" (what the gateway decided, even when its answer was lost)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    # How many times the charge endpoint was called with this key.
    calls: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class SandboxRefund(db.Model):
    """A refund of (part of) a sandbox charge; ``idempotency_key`` makes a retried refund return the first one."""

    __tablename__ = "sandbox_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    refund_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    charge_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    amount_cents: Mapped[int] = mapped_column(default=0)
    calls: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
