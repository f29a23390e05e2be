"""Certificates of insurance: requests, payments, issued certificates, rejection reasons."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import (
    AutomationDecision,
    CertificateSource,
    IssueState,
    PaymentStatus,
    ReissueStatus,
    RequestSource,
    RequestStatus,
    RequestType,
    enum_column,
)
from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow


class CertificateRequest(TimestampMixin, db.Model):
    """A request for a COI, COI with waiver of subrogation, or proof of insurance.

    The holder fields are a snapshot of what was asked for. ``version`` is SQLAlchemy's version
    counter: two staff saving the same request at once -> the second gets StaleDataError (a 409).
    """

    __tablename__ = "certificate_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    type: Mapped[RequestType] = mapped_column(enum_column(RequestType), index=True)
    source: Mapped[RequestSource] = mapped_column(enum_column(RequestSource))
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus), default=RequestStatus.NEW, index=True)

    holder_name: Mapped[str] = mapped_column(sa.String(200))
    holder_email: Mapped[str] = mapped_column(sa.String(254), default="")
    holder_phone: Mapped[str] = mapped_column(sa.String(32), default="")
    holder_address: Mapped[str] = mapped_column(sa.String(200), default="")
    holder_city: Mapped[str] = mapped_column(sa.String(100), default="")
    holder_state: Mapped[str] = mapped_column(sa.String(2), default="")
    holder_zip: Mapped[str] = mapped_column(sa.String(10), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    project_name: Mapped[str] = mapped_column(sa.String(200), default="")
    project_location: Mapped[str] = mapped_column(sa.String(300), default="")
    project_duration: Mapped[str] = mapped_column(sa.String(120), default="")
    contract_details: Mapped[str] = mapped_column(sa.Text, default="")
    instructions: Mapped[str] = mapped_column(sa.Text, default="")

    # The automation decision, a sub-state with its own table (app.lifecycle); ``manual_reason`` is the
    # detail of ``manual`` (why staff must do it).
    decision: Mapped[AutomationDecision] = mapped_column(
        enum_column(AutomationDecision), default=AutomationDecision.UNDECIDED, server_default="undecided")
    manual_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    rejection_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    fee_cents: Mapped[int] = mapped_column(default=0)

    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1)
    # "<customer id>:<key>" from the submitting form or the API's Idempotency-Key header: a retried
    # submission returns the first request instead of creating a second one.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    # Issuing, a sub-state with its own table (app.lifecycle). Staff "Submit": the approved values
    # (certificate data or the uploaded document's storage key, the recipients, who submitted) wait in
    # ``pending_issue`` for the PDF job while ``issuing`` is pending (since ``issue_requested_at``); a failure
    # keeps its reason in ``issue_error``.
    issuing: Mapped[IssueState] = mapped_column(enum_column(IssueState), default=IssueState.NONE,
                                                server_default="none", index=True)
    pending_issue: Mapped[dict | None] = mapped_column(sa.JSON)
    issue_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    issue_error: Mapped[str] = mapped_column(sa.String(500), default="")

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    submitted_by: Mapped["User | None"] = relationship(foreign_keys=[submitted_by_id])  # noqa: F821
    assigned_to: Mapped["User | None"] = relationship(foreign_keys=[assigned_to_id])  # noqa: F821
    payments: Mapped[list["Payment"]] = relationship(back_populates="request")
    certificates: Mapped[list["IssuedCertificate"]] = relationship(
        back_populates="request", order_by="IssuedCertificate.id"
    )

    __mapper_args__ = {"version_id_col": version}
    # The staff queue's default view (new + in progress, oldest first) and its tab counts read only
    # these two partial indexes: a page is an ordered index range, the counts an index-only scan.
    __table_args__ = (
        sa.Index("ix_certificate_requests_status_type", "status", "type"),
        sa.Index("ix_certificate_requests_created_at", "created_at"),  # the metrics' date range
        sa.Index("ix_certificate_requests_open_created", "created_at", "id",
                 sqlite_where=sa.text("status IN ('new', 'in_progress')"),
                 postgresql_where=sa.text("status IN ('new', 'in_progress')")),
        sa.Index("ix_certificate_requests_open_type", "type",
                 sqlite_where=sa.text("status IN ('new', 'in_progress')"),
                 postgresql_where=sa.text("status IN ('new', 'in_progress')")),
    )

    @property
    def holder_address_lines(self) -> list[str]:
        return [self.holder_address, f"{self.holder_city}, {self.holder_state} {self.holder_zip}".strip(", ")]

    # -- what the pages, the API and the jobs ask (answered once, here; templates never restate it) --

    @property
    def is_open(self) -> bool:
        """New or in progress: staff can still act on it."""
        return self.status.is_open

    @property
    def is_issuing(self) -> bool:
        """Submitted by staff and waiting for the PDF job (the page polls, the actions are hidden)."""
        return self.issuing is IssueState.PENDING and self.is_open

    @property
    def issue_failed(self) -> bool:
        """The PDF job gave up on the submitted values; staff may try again while the request is open."""
        return self.issuing is IssueState.FAILED and self.is_open

    @property
    def issue_state(self) -> IssueState:
        """The issuing sub-state shown on the request page: pending, issued, failed or none."""
        return self.issuing

    @property
    def was_submitted(self) -> bool:
        """Staff submitted a certificate for issuing (the page shows how that went)."""
        return bool(self.pending_issue) or self.issuing is IssueState.PENDING

    @property
    def needs_manual(self) -> bool:
        """Not issued automatically: undecided yet, or left for staff."""
        return self.decision is not AutomationDecision.AUTO

    @property
    def is_undecided(self) -> bool:
        """The automatic check has not decided yet (it runs on new requests only)."""
        return self.decision is AutomationDecision.UNDECIDED

    @property
    def card_payment(self) -> "Payment | None":
        """The approved card charge for this request's fee, if the card paid it."""
        return next((p for p in self.payments if p.status is PaymentStatus.APPROVED), None)


class Payment(TimestampMixin, db.Model):
    """A card charge attempt. ``idempotency_key`` is unique: one charge at most per submission."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("certificate_requests.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus))
    fee_cents: Mapped[int] = mapped_column(default=0)
    convenience_fee_cents: Mapped[int] = mapped_column(default=0)
    amount_cents: Mapped[int] = mapped_column(default=0)
    gateway_charge_id: Mapped[str | None] = mapped_column(sa.String(100))
    card_last4: Mapped[str] = mapped_column(sa.String(4), default="")
    message: Mapped[str] = mapped_column(sa.String(300), default="")
    # Given back to the card when staff rejected / cancelled the request (0 = not refunded).
    refunded_cents: Mapped[int] = mapped_column(default=0)
    refund_id: Mapped[str | None] = mapped_column(sa.String(100))
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    request: Mapped[CertificateRequest | None] = relationship(back_populates="payments")
    customer: Mapped["Customer"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}


class IssuedCertificate(TimestampMixin, db.Model):
    """One issued certificate document (COI, COI with WOS, or POI) for one holder.

    Re-issuing for the same customer + holder + kind keeps the ``certificate_number`` and increments
    ``revision`` (the first is 1); only the newest is ``is_current``, older ones are superseded
    (``superseded_at``) and stay as read-only history. ``sha256`` is of the final (signed) file as
    delivered; ``verification_code`` is printed on it (with a QR code) and opens ``/verify/<code>``.
    ``guard`` is the issue guard's result (blocks, warnings, and the override note if staff overrode).
    """

    __tablename__ = "issued_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_number: Mapped[str] = mapped_column(sa.String(40), index=True)
    revision: Mapped[int] = mapped_column(default=1)
    is_current: Mapped[bool] = mapped_column(default=True)
    kind: Mapped[RequestType] = mapped_column(enum_column(RequestType))
    source: Mapped[CertificateSource] = mapped_column(enum_column(CertificateSource),
                                                      default=CertificateSource.GENERATED)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("certificate_requests.id"), index=True)
    holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("holders.id"), index=True)
    holder_name: Mapped[str] = mapped_column(sa.String(200))
    holder_email: Mapped[str] = mapped_column(sa.String(254), default="")
    holder_address: Mapped[str] = mapped_column(sa.String(300), default="")
    # Normalised holder identity used to find earlier revisions for the same holder.
    holder_key: Mapped[str] = mapped_column(sa.String(300), index=True)
    document_key: Mapped[str] = mapped_column(sa.String(80))
    filename: Mapped[str] = mapped_column(sa.String(200))
    # The values printed on the certificate (policies, limits, wording), kept for history.
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    sha256: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    # A public, random identifier printed on the document (not a secret: anyone holding the paper has it).
    verification_code: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    guard: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    superseded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("issued_certificates.id"))
    generation_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("generation_runs.id"), index=True)

    request: Mapped[CertificateRequest | None] = relationship(back_populates="certificates")
    customer: Mapped["Customer"] = relationship()  # noqa: F821
    issued_by: Mapped["User | None"] = relationship()  # noqa: F821
    superseded_by: Mapped["IssuedCertificate | None"] = relationship(remote_side=[id])

    __table_args__ = (sa.UniqueConstraint("certificate_number", "revision",
                                          name="uq_issued_certificates_number_revision"),)

    @property
    def policy_ids(self) -> list[int]:
        """The policies printed on it (their ids, as stored with the printed data)."""
        return [int(row["policy_id"]) for row in (self.data or {}).get("coverages") or []
                if row.get("present") and row.get("policy_id")]

    @property
    def guard_overridden(self) -> bool:
        return bool((self.guard or {}).get("override_note"))


class ReissueRun(TimestampMixin, db.Model):
    """Staff re-issuing chosen certificates of one customer as new revisions (after a renewal or new
    limits), in one job with progress. ``processed`` holds the certificate ids already handled, written
    in the same transaction as each re-issue and its e-mail, so a retried job skips them."""

    __tablename__ = "reissue_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    status: Mapped[ReissueStatus] = mapped_column(enum_column(ReissueStatus), default=ReissueStatus.QUEUED,
                                                  index=True)
    certificate_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    processed: Mapped[list] = mapped_column(sa.JSON, default=list)
    total: Mapped[int] = mapped_column(default=0)
    reissued_count: Mapped[int] = mapped_column(default=0)
    emailed_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    # Certificates not re-issued, e.g. [{"certificate_id": 3, "number": "...", "holder": "...", "message": "..."}].
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    error: Mapped[str] = mapped_column(sa.String(500), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    created_by: Mapped["User | None"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def done_count(self) -> int:
        return self.reissued_count + self.skipped_count

    @property
    def percent(self) -> int:
        if self.status is ReissueStatus.DONE or not self.total:
            return 100 if self.status is ReissueStatus.DONE else 0
        return min(100, int(100 * self.done_count / self.total))

    @property
    def is_working(self) -> bool:
        """Queued or running: the page polls; the sweep restarts a lost job."""
        return self.status in (ReissueStatus.QUEUED, ReissueStatus.RUNNING)

    @property
    def is_done(self) -> bool:
        return self.status is ReissueStatus.DONE

    @property
    def is_failed(self) -> bool:
        return self.status is ReissueStatus.FAILED


class BannedWording(TimestampMixin, db.Model):
    """A phrase a certificate's description must not contain (it promises what a policy does not),
    with the reason shown to staff. Admins keep the list; matching ignores case, apostrophes, hyphens
    and spacing (``app.insurance.guard.normalise``)."""

    __tablename__ = "banned_wordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    phrase: Mapped[str] = mapped_column(sa.String(120), unique=True)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    is_active: Mapped[bool] = mapped_column(default=True)


class RejectionReason(TimestampMixin, db.Model):
    """Reasons staff pick when rejecting a COI / WOS / POI request; admins manage the list."""

    __tablename__ = "rejection_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(200), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


DEFAULT_BANNED_WORDING = [
    ("30 days notice", "A certificate cannot promise a notice period: cancellation notice follows the policy."),
    ("thirty days notice", "A certificate cannot promise a notice period: cancellation notice follows the policy."),
    ("will notify", "A certificate cannot promise to notify the holder: notice follows the policy provisions."),
    ("guarantee", "A certificate guarantees nothing; it is for information only."),
    ("notwithstanding", "\u201cNotwithstanding\u201d wording overrides policy terms a certificate cannot change."),
    ("amend the coverage", "A certificate does not amend, extend or alter the coverage afforded by the policies."),
    ("extend the coverage", "A certificate does not amend, extend or alter the coverage afforded by the policies."),
    ("alter the coverage", "A certificate does not amend, extend or alter the coverage afforded by the policies."),
]

DEFAULT_REJECTION_REASONS = [
    "Duplicate request",
    "Needs a WOS endorsement",
    "License edit – carrier approval required",
    "Special wording not acceptable – carrier approval required",
    "Internal test",
    "Incomplete address",
    "Holder name incomplete",
]
