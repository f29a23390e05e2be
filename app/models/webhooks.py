"""Events out: every lifecycle change as an event row, the webhook endpoints that subscribe to them, and
one delivery row per (endpoint, event) carrying its attempts."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import WebhookDeliveryStatus, enum_column
from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class Event(db.Model):
    """One lifecycle change, written in the same transaction as the change itself. ``uid`` is the
    stable id receivers deduplicate on (the ``webhook-id`` header)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(40), unique=True)
    type: Mapped[str] = mapped_column(sa.String(60), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int]
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # The whole message body: {"type", "id", "occurred_at", "data": <resource as the API shows it>, "url"}.
    payload: Mapped[dict] = mapped_column(sa.JSON)


class WebhookEndpoint(TimestampMixin, db.Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    # Event types wanted; an empty list means every type.
    event_types: Mapped[list] = mapped_column(sa.JSON, default=list)
    # The signing secret ("whsec_" + base64) is needed in clear to sign; it is shown to the admin once.
    secret: Mapped[str] = mapped_column(sa.String(100))
    # After a rotation the old secret also signs until this time, so receivers can switch over.
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"), index=True)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(enum_column(WebhookDeliveryStatus),
                                                          default=WebhookDeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")
    response_excerpt: Mapped[str] = mapped_column(sa.String(1000), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    endpoint: Mapped[WebhookEndpoint] = relationship()
    event: Mapped[Event] = relationship()

    __mapper_args__ = {"version_id_col": version}

    __table_args__ = (sa.UniqueConstraint("endpoint_id", "event_id", name="webhook_delivery_once"),)
