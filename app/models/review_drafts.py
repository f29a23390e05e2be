"""What a processor has typed into a certificate's review form, kept as it is typed."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class ReviewDraft(db.Model):
    """The review form of one certificate request as last typed (one per request).

    Saved while staff type, so a reload, a dropped connection or a colleague opening the request shows the
    same values instead of a fresh prefill. Removed when the certificate is submitted; ignored once the
    request is no longer open.
    """

    __tablename__ = "certificate_review_drafts"

    request_id: Mapped[int] = mapped_column(sa.ForeignKey("certificate_requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    saved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    saved_by = relationship("User")
