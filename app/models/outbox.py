from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.enums import Channel, MessageStatus, enum_column
from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class OutboxMessage(TimestampMixin, db.Model):
    """An e-mail or SMS. Written in the same transaction as the change it reports, then delivered
    by a job. ``dedupe_key`` makes "send this once" a database constraint."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel), default=Channel.EMAIL)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    body_text: Mapped[str] = mapped_column(sa.Text, default="")
    body_html: Mapped[str] = mapped_column(sa.Text, default="")
    # [{"key": storage key, "filename": ..., "content_type": ...}]
    attachments: Mapped[list] = mapped_column(sa.JSON, default=list)
    status: Mapped[MessageStatus] = mapped_column(
        enum_column(MessageStatus), default=MessageStatus.PENDING, index=True
    )
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    # After a temporary failure: not before this time (the retry schedule in app/notify.py).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # What the message is about, for pages that show its delivery (e.g. "exemption-request:12").
    ref: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Settings -> Outbox with a channel tab: newest first, a seek page by id.
    __table_args__ = (sa.Index("ix_outbox_messages_channel_id", "channel", "id"),)

    @property
    def is_failed(self) -> bool:
        return self.status is MessageStatus.FAILED

    @property
    def is_held(self) -> bool:
        """Kept in the outbox because no mail server (or SMS gateway) is configured; never sent."""
        return self.status is MessageStatus.HELD

    @property
    def is_retrying(self) -> bool:
        """Waiting for another attempt after a temporary failure."""
        return self.status is MessageStatus.PENDING and bool(self.last_error)

    @property
    def message_id(self) -> str:
        """Stable Message-ID, so a receiving server can drop a duplicate if one ever escapes."""
        return message_id_for(self.id)


def message_id_for(message_id: int) -> str:
    """The ``Message-ID`` header of outbox message ``message_id`` (the same for every copy of it)."""
    return f"<certdesk-outbox-{message_id}@certdesk>"
