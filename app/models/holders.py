"""Certificate holders and their links to customers (the customer's additional interests)."""

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import (
    IMPORT_TRANSITIONS,
    GenerationMode,
    GenerationStatus,
    ImportKind,
    ImportStatus,
    RequestType,
    enum_column,
)
from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow

WORKING_IMPORT_STATUSES = (ImportStatus.VALIDATING, ImportStatus.IMPORTING)
CHECKED_IMPORT_STATUSES = (ImportStatus.PREVIEW, ImportStatus.IMPORTING, ImportStatus.DONE, ImportStatus.CANCELLED)
WORKING_GENERATION_STATUSES = (GenerationStatus.QUEUED, GenerationStatus.RUNNING)


def holder_key(name: str, address: str, city: str = "", state: str = "", zip_code: str = "") -> str:
    """Normalised identity of a holder: case, punctuation and spacing do not make a new holder."""
    text = " ".join([name, address, city, state, (zip_code or "")[:5]]).lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()[:300]


class Holder(TimestampMixin, db.Model):
    __tablename__ = "holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    phone: Mapped[str] = mapped_column(sa.String(32), default="")
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    state: Mapped[str] = mapped_column(sa.String(2), default="")
    zip_code: Mapped[str] = mapped_column(sa.String(10), default="")
    normalized_key: Mapped[str] = mapped_column(sa.String(300), unique=True)

    links: Mapped[list["CustomerHolder"]] = relationship(back_populates="holder", cascade="all, delete-orphan")

    @property
    def address_lines(self) -> list[str]:
        return [self.address, f"{self.city}, {self.state} {self.zip_code}".strip(", ")]


class CustomerHolder(TimestampMixin, db.Model):
    """A holder linked to a customer, with the endorsement flags of that link."""

    __tablename__ = "customer_holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    holder_id: Mapped[int] = mapped_column(sa.ForeignKey("holders.id"), index=True)
    additional_insured: Mapped[bool] = mapped_column(default=False)
    waiver_of_subrogation: Mapped[bool] = mapped_column(default=False)
    primary_noncontributory: Mapped[bool] = mapped_column(default=False)

    holder: Mapped[Holder] = relationship(back_populates="links")
    customer: Mapped["Customer"] = relationship()  # noqa: F821

    __table_args__ = (sa.UniqueConstraint("customer_id", "holder_id", name="uq_customer_holders_pair"),)


class ImportRun(TimestampMixin, db.Model):
    """One uploaded holders / links CSV: checked first (preview with per-row errors), written on confirmation."""

    __tablename__ = "holder_import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(enum_column(ImportKind))
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus), default=ImportStatus.VALIDATING,
                                                 index=True)
    filename: Mapped[str] = mapped_column(sa.String(200), default="")
    file_key: Mapped[str | None] = mapped_column(sa.String(80))
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    error_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    unchanged_count: Mapped[int] = mapped_column(default=0)
    # [{"row": 3, "messages": ["..."]}, ...] (the first IMPORT_ERROR_LIMIT rows with errors)
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    # {"new": n, "existing": n, "sample": [{...}, ...]} written by the check
    preview: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    message: Mapped[str] = mapped_column(sa.String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    created_by: Mapped["User | None"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status in (ImportStatus.PREVIEW, ImportStatus.DONE) else 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))

    @property
    def is_working(self) -> bool:
        """A job is checking or writing the rows (the page polls; the sweep restarts a lost one)."""
        return self.status in WORKING_IMPORT_STATUSES

    @property
    def has_checked_rows(self) -> bool:
        """The check finished and its per-row results (new / update / unchanged, errors) can be shown."""
        return self.status in CHECKED_IMPORT_STATUSES and bool(self.preview)

    @property
    def is_finished(self) -> bool:
        """Done, cancelled or failed: no move left in ``IMPORT_TRANSITIONS``."""
        return not IMPORT_TRANSITIONS[self.status]


class GenerationRun(TimestampMixin, db.Model):
    """One mass generation of certificates for one customer's holders (a ZIP or one merged PDF)."""

    __tablename__ = "generation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    status: Mapped[GenerationStatus] = mapped_column(enum_column(GenerationStatus),
                                                     default=GenerationStatus.QUEUED, index=True)
    mode: Mapped[GenerationMode] = mapped_column(enum_column(GenerationMode))
    kind: Mapped[RequestType] = mapped_column(enum_column(RequestType), default=RequestType.COI)
    # True: every holder linked to the customer when the job runs; False: the rows of GenerationRunHolder.
    all_holders: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    record_sent: Mapped[bool] = mapped_column(default=False)
    email_holders: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    emailed_count: Mapped[int] = mapped_column(default=0)
    # Holders the issue guard blocked (no certificate): how many, and the first ones with the guard's reasons,
    # e.g. [{"holder_id": 3, "name": "Lakeside LLC", "reasons": ["The holder's address is incomplete ..."]}].
    skipped_count: Mapped[int] = mapped_column(default=0, server_default="0")
    skipped: Mapped[list] = mapped_column(sa.JSON, default=list)
    file_key: Mapped[str | None] = mapped_column(sa.String(80))
    filename: Mapped[str] = mapped_column(sa.String(200), default="")
    error: Mapped[str] = mapped_column(sa.String(500), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # checked by the lifecycle engine

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    created_by: Mapped["User | None"] = relationship()  # noqa: F821

    __mapper_args__ = {"version_id_col": version}

    @property
    def percent(self) -> int:
        if self.status in (GenerationStatus.DONE, GenerationStatus.EXPIRED):
            return 100
        return min(100, int(self.done * 100 / self.total)) if self.total else 0

    @property
    def is_working(self) -> bool:
        """Queued or running: the page polls; the sweep restarts a lost job."""
        return self.status in WORKING_GENERATION_STATUSES


class GenerationRunHolder(db.Model):
    """One holder chosen for a generation run, in the order chosen (``position`` from 1). Written in
    chunks when the run is started (chosen holders) or by its job (all holders); the job reads them
    back in chunks by position, and they are deleted when the run ends."""

    __tablename__ = "generation_run_holders"

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("generation_runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    holder_id: Mapped[int] = mapped_column(sa.ForeignKey("holders.id", ondelete="CASCADE"))


class SentCertificate(TimestampMixin, db.Model):
    """History of certificates sent to a holder: holder, date (created_at), who, file."""

    __tablename__ = "sent_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("holders.id", ondelete="SET NULL"), index=True)
    generation_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("generation_runs.id"), index=True)
    holder_name: Mapped[str] = mapped_column(sa.String(200))
    holder_email: Mapped[str] = mapped_column(sa.String(254), default="")
    kind: Mapped[RequestType] = mapped_column(enum_column(RequestType), default=RequestType.COI)
    document_key: Mapped[str] = mapped_column(sa.String(80))
    filename: Mapped[str] = mapped_column(sa.String(200))
    emailed: Mapped[bool] = mapped_column(default=False)
    sent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The issued certificate (number, revision, verification code) this row sent.
    certificate_id: Mapped[int | None] = mapped_column(sa.ForeignKey("issued_certificates.id"), index=True)

    customer: Mapped["Customer"] = relationship()  # noqa: F821
    holder: Mapped[Holder | None] = relationship()
    sent_by: Mapped["User | None"] = relationship()  # noqa: F821
    certificate: Mapped["IssuedCertificate | None"] = relationship()  # noqa: F821

    __table_args__ = (
        sa.UniqueConstraint("generation_run_id", "holder_id", name="uq_sent_certificates_run_holder"),
        # Sent certificates, newest first (all customers, or one): seek pages by (created_at, id).
        sa.Index("ix_sent_certificates_created", "created_at", "id"),
        sa.Index("ix_sent_certificates_customer_created", "customer_id", "created_at", "id"),
    )
