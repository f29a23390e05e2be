"""Sales-tax exemption certificates: the request links, the certificates, their jurisdictions,
and the "send to many" runs.

A request link's token is never stored. It is derived: base64url(HMAC-SHA256(SECRET_KEY,
"exemption-link:<request id>:<link_nonce>")), so reminders can repeat it, while a database dump alone
gives no usable link; ``token_hash`` (its SHA-256) finds the request. ``version`` columns are
SQLAlchemy version counters, so two staff acting on the same row at once cannot both win.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import (
    AuditPackStatus,
    ExemptionCertificateStatus,
    ExemptionFormType,
    ExemptionReason,
    ExemptionRequestStatus,
    PurchaseType,
    SendRunStatus,
    enum_column,
)
from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class ExemptionRequest(TimestampMixin, db.Model):
    """One request for a certificate, sent to a customer as a link."""

    __tablename__ = "exemption_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Random per link; a resend draws a new one, so the old token's hash no longer matches.
    link_nonce: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[ExemptionRequestStatus] = mapped_column(
        enum_column(ExemptionRequestStatus), default=ExemptionRequestStatus.SENT, index=True)
    # "staff", "api", "bulk", "renewal" or "resubmission": how the request came to be.
    source: Mapped[str] = mapped_column(sa.String(20), default="staff")
    # Bumped by every resend; part of the reminder dedupe keys, so a fresh link gets fresh reminders.
    link_version: Mapped[int] = mapped_column(default=1)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # the metrics' date range
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Reminder bookkeeping: the "days before expiry" values already reminded for this link version.
    reminders_sent: Mapped[list] = mapped_column(sa.JSON, default=list)
    last_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A resubmission after a rejection carries what the customer sent, to pre-fill the form.
    prefill: Mapped[dict | None] = mapped_column(sa.JSON)
    # Plain ids (no foreign key: certificates already point at requests, and a cycle of foreign keys
    # cannot be created or dropped in order).
    previous_certificate_id: Mapped[int | None]
    renewal_of_id: Mapped[int | None]
    send_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("exemption_send_runs.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(default=1)

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    created_by: Mapped["User | None"] = relationship()  # noqa: F821
    certificate: Mapped["ExemptionCertificate | None"] = relationship(
        back_populates="request", foreign_keys="ExemptionCertificate.request_id", uselist=False)

    # The "Pending requests" tab: newest first, a seek page (app/exemptions/queries.py).
    __table_args__ = (
        sa.Index("ix_exemption_requests_pending_sent", "sent_at", "id",
                 sqlite_where=sa.text("status IN ('expired', 'opened', 'sent')"),
                 postgresql_where=sa.text("status IN ('expired', 'opened', 'sent')")),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def sent_by_staff(self) -> bool:
        """Sent by a person from the staff pages (the other sources are named on the request page)."""
        return self.source == "staff"


class ExemptionCertificate(TimestampMixin, db.Model):
    """What the customer submitted through a link, and the reviewer's decision on it."""

    __tablename__ = "exemption_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("exemption_requests.id"), index=True)
    status: Mapped[ExemptionCertificateStatus] = mapped_column(
        enum_column(ExemptionCertificateStatus), default=ExemptionCertificateStatus.PENDING_REVIEW, index=True)

    reason: Mapped[ExemptionReason] = mapped_column(enum_column(ExemptionReason))
    reason_other: Mapped[str] = mapped_column(sa.String(200), default="")
    purchase_type: Mapped[PurchaseType] = mapped_column(enum_column(PurchaseType), default=PurchaseType.BLANKET)
    po_number: Mapped[str] = mapped_column(sa.String(60), default="")
    form_type: Mapped[ExemptionFormType] = mapped_column(enum_column(ExemptionFormType))
    tax_id_number: Mapped[str] = mapped_column(sa.String(60))
    effective_date: Mapped[date]
    expiration_date: Mapped[date | None]
    purchaser_name: Mapped[str] = mapped_column(sa.String(200))
    purchaser_address: Mapped[str] = mapped_column(sa.String(400))
    signer_name: Mapped[str] = mapped_column(sa.String(120))
    signer_title: Mapped[str] = mapped_column(sa.String(120), default="")
    signed_on: Mapped[date]

    document_key: Mapped[str] = mapped_column(sa.String(80))
    document_filename: Mapped[str] = mapped_column(sa.String(120))
    document_content_type: Mapped[str] = mapped_column(sa.String(40))
    document_size: Mapped[int] = mapped_column(default=0)
    document_pages: Mapped[int] = mapped_column(default=1)

    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    review_notes: Mapped[str] = mapped_column(sa.Text, default="")
    edited_on_review: Mapped[bool] = mapped_column(default=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    renewal_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the certificate entered its "expiring soon" window (the event for it is emitted once).
    expiring_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The state rules' verdicts (app/exemptions/rules.py), refreshed on submission and on review:
    # [{"rule", "state", "result": pass|fail|review, "evidence", "source": {"title", "url"}}].
    checks: Mapped[list] = mapped_column(sa.JSON, default=list)
    version: Mapped[int] = mapped_column(default=1)

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    request: Mapped[ExemptionRequest | None] = relationship(back_populates="certificate", foreign_keys=[request_id])
    reviewed_by: Mapped["User | None"] = relationship()  # noqa: F821
    jurisdictions: Mapped[list["CertificateJurisdiction"]] = relationship(
        back_populates="certificate", cascade="all, delete-orphan", order_by="CertificateJurisdiction.state")

    # The review tabs, newest first: one status ("Action required", "Active"), or the closed ones.
    __table_args__ = (
        sa.Index("ix_exemption_certificates_status_submitted", "status", "submitted_at", "id"),
        sa.Index("ix_exemption_certificates_closed_submitted", "submitted_at", "id",
                 sqlite_where=sa.text("status IN ('expired', 'rejected')"),
                 postgresql_where=sa.text("status IN ('expired', 'rejected')")),
    )
    __mapper_args__ = {"version_id_col": version}

    def jurisdiction_expires(self, jurisdiction: "CertificateJurisdiction") -> date | None:
        return jurisdiction.expires_on

    @property
    def failed_checks(self) -> list[dict]:
        return [c for c in (self.checks or []) if c.get("result") == "fail"]

    def covers_purchase(self, po: str | None) -> bool:
        """A blanket certificate covers every purchase; a single-purchase one only its own PO / invoice."""
        if self.purchase_type is PurchaseType.BLANKET:
            return True
        return po is not None and po.strip().casefold() == (self.po_number or "").strip().casefold()

    @property
    def earliest_expiration(self) -> date | None:
        dates = [d for d in (self.jurisdiction_expires(j) for j in self.jurisdictions) if d is not None]
        if not self.jurisdictions and self.expiration_date:
            dates.append(self.expiration_date)
        return min(dates) if dates else None

    @property
    def states(self) -> list[str]:
        return [j.state for j in self.jurisdictions]


class CertificateJurisdiction(db.Model):
    """One US state (or DC) a certificate covers, with its own ID number and expiration date."""

    __tablename__ = "exemption_certificate_jurisdictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(sa.ForeignKey("exemption_certificates.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(2), index=True)
    state_id_number: Mapped[str] = mapped_column(sa.String(60), default="")
    expiration_date: Mapped[date | None]
    # Computed from the state's validity rule when neither the jurisdiction nor the certificate prints one.
    rule_expiration: Mapped[date | None]

    certificate: Mapped[ExemptionCertificate] = relationship(back_populates="jurisdictions")

    @property
    def expires_on(self) -> date | None:
        """The one definition of when this state's exemption ends: its own printed date, else the
        certificate's, else the one the state's rule gives."""
        return self.expiration_date or self.certificate.expiration_date or self.rule_expiration

    @classmethod
    def expires_on_sql(cls):
        """The same rule as :attr:`expires_on`, as SQL (no expiry = the far future)."""
        return sa.func.coalesce(cls.expiration_date, ExemptionCertificate.expiration_date, cls.rule_expiration,
                                date.max)

    __table_args__ = (sa.UniqueConstraint("certificate_id", "state", name="certificate_state"),)


class ExemptionSendRun(TimestampMixin, db.Model):
    """"Send to many": one job sending one request per selected customer, with progress."""

    __tablename__ = "exemption_send_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[SendRunStatus] = mapped_column(enum_column(SendRunStatus), default=SendRunStatus.QUEUED)
    customer_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    total: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    # Per-customer problems, e.g. [{"customer_id": 3, "message": "no contact e-mail"}].
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    created_by: Mapped["User | None"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def done_count(self) -> int:
        return self.sent_count + self.skipped_count

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done_count / self.total)


class ExemptionRuleOverride(db.Model):
    """An admin's change to one state's entry of the rules table, with the why. Rows are never
    updated: the newest row for a state is in force, the older ones are its history."""

    __tablename__ = "exemption_rule_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(2), index=True)
    # Only the fields that differ from the repository's table, e.g. {"accepts_mtc": false}.
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    note: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    created_by: Mapped["User | None"] = relationship()  # noqa: F821


class AuditPack(TimestampMixin, db.Model):
    """What an auditor asks for, built by a job: for a date range and a set of states, every certificate
    document active in the range, a CSV of them, and each one's review history, as one ZIP."""

    __tablename__ = "exemption_audit_packs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[AuditPackStatus] = mapped_column(enum_column(AuditPackStatus), default=AuditPackStatus.QUEUED,
                                                    index=True)
    date_from: Mapped[date]
    date_to: Mapped[date]
    jurisdictions: Mapped[list] = mapped_column(sa.JSON, default=list)
    total: Mapped[int] = mapped_column(default=0)
    done_count: Mapped[int] = mapped_column(default=0)
    # Counted in its own commit before each try, so a rollback cannot reset it (bounded retries).
    attempts: Mapped[int] = mapped_column(default=0)
    file_key: Mapped[str | None] = mapped_column(sa.String(80))
    file_size: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    created_by: Mapped["User | None"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def percent(self) -> int:
        return 100 if self.status is AuditPackStatus.DONE or not self.total else int(100 * self.done_count / self.total)

    @property
    def is_finished(self) -> bool:
        return self.status in (AuditPackStatus.DONE, AuditPackStatus.FAILED)

    @property
    def is_ready(self) -> bool:
        return self.status is AuditPackStatus.DONE and bool(self.file_key)

    @property
    def filename(self) -> str:
        return f"exemption-audit-{self.date_from.isoformat()}-{self.date_to.isoformat()}-{self.id}.zip"
