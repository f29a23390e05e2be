"""The audit pack: what a sales-tax auditor asks a seller for, in one ZIP.

For a date range and a set of states: every certificate document that was active in the range (as
uploaded), ``certificates.csv`` (one row per certificate and state) and each certificate's review
history. Built by a job that streams the ZIP to disk, so memory does not grow with the number of
certificates; the request only records what was asked and enqueues.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app import lifecycle
from app.activity import record
from app.csvio import csv_safe
from app.enums import AuditPackStatus
from app.enums import ExemptionCertificateStatus as CS
from app.exemptions.services import CERTIFICATE_SUBJECT, InvalidData
from app.extensions import db
from app.models import Activity, AuditPack, CertificateJurisdiction, ExemptionCertificate, User
from app.queue import defer
from app.validation import US_STATES

SUBJECT = "audit_pack"
MAX_YEARS = 10
MAX_ATTEMPTS = 3
BATCH = 200
CSV_COLUMNS = ["certificate_id", "customer", "external_number", "state", "state_id", "reason", "form",
               "purchase_type", "po_number", "effective", "expiration", "status", "approved_by", "approved_at",
               "failed_checks", "override_notes", "document"]


def start_audit_pack(date_from: date | None, date_to: date | None, jurisdictions, *, actor: User | None,
                     now: datetime) -> AuditPack:
    """Record what was asked and enqueue the build. Refused (nothing stored): dates missing or out of
    order, a range over ten years, an unknown state, no state at all."""
    errors: dict[str, str] = {}
    if date_from is None:
        errors["from"] = "Give the first day of the range (YYYY-MM-DD)."
    if date_to is None:
        errors["to"] = "Give the last day of the range (YYYY-MM-DD)."
    if date_from and date_to:
        if date_to < date_from:
            errors["to"] = "The last day must be on or after the first day."
        elif (date_to - date_from).days > 366 * MAX_YEARS:
            errors["to"] = f"An audit pack covers at most {MAX_YEARS} years; split the range."
    states = []
    if not isinstance(jurisdictions, list | tuple) or not jurisdictions:
        errors["jurisdictions"] = "Choose at least one state."
    else:
        for s in jurisdictions:
            code = str(s).strip().upper() if isinstance(s, str) else ""
            if code not in US_STATES:
                errors["jurisdictions"] = f"{str(s)[:10]!r} is not a US state code (or DC)."
                break
            if code not in states:
                states.append(code)
    if errors:
        raise InvalidData(errors)
    pack = AuditPack(date_from=date_from, date_to=date_to, jurisdictions=sorted(states), status=AuditPackStatus.QUEUED,
                     created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(pack)
    db.session.flush()
    record(SUBJECT, pack.id, "requested", actor=actor, now=now,
           message=f"Audit pack {date_from} to {date_to} for {', '.join(pack.jurisdictions)}.")
    defer(db.session, "app.exemptions.jobs.build_audit_pack", pack.id)
    return pack


def certificates_in_range(pack: AuditPack):
    """Certificates that were active at some point of the range in one of the states: approved by the
    end of the range (active now or expired since), effective before its end, expiring after its start."""
    end = datetime.combine(pack.date_to + timedelta(days=1), time.min, tzinfo=UTC)
    approved_by_end = ExemptionCertificate.activated_at < end
    covering = (
        sa.select(CertificateJurisdiction.certificate_id)
        .join(ExemptionCertificate)
        .where(CertificateJurisdiction.state.in_(pack.jurisdictions),
               CertificateJurisdiction.expires_on_sql() >= pack.date_from)
    )
    return (
        sa.select(ExemptionCertificate)
        .where(ExemptionCertificate.status.in_([CS.ACTIVE, CS.EXPIRED]), ExemptionCertificate.activated_at.is_not(None),
               approved_by_end, ExemptionCertificate.effective_date <= pack.date_to,
               ExemptionCertificate.id.in_(covering))
        .order_by(ExemptionCertificate.id)
    )


def _document_name(cert: ExemptionCertificate) -> str:
    base = os.path.basename(cert.document_filename or "document") or "document"
    return f"documents/certificate-{cert.id}-{base}"


def _csv_rows(cert: ExemptionCertificate, states: set[str], overrides: list[str]):
    failed = "; ".join(c["evidence"] for c in cert.failed_checks)
    for j in cert.jurisdictions:
        if j.state not in states:
            continue
        yield [cert.id, csv_safe(cert.customer.name), csv_safe(getattr(cert.customer, "external_id", "") or ""),
               j.state, csv_safe(j.state_id_number), cert.reason.label, cert.form_type.label,
               str(cert.purchase_type), csv_safe(cert.po_number), cert.effective_date.isoformat(),
               j.expires_on.isoformat() if j.expires_on else "", str(cert.status),
               csv_safe(cert.reviewed_by.name if cert.reviewed_by else ""),
               cert.activated_at.isoformat() if cert.activated_at else "", csv_safe(failed),
               csv_safe(" | ".join(overrides)), _document_name(cert)]


def _timelines(certificate_ids: list[int]) -> dict[int, list[Activity]]:
    """Every certificate's timeline of one batch, in one query."""
    out: dict[int, list[Activity]] = {}
    for a in db.session.scalars(sa.select(Activity).where(Activity.subject_type == CERTIFICATE_SUBJECT,
                                                          Activity.subject_id.in_(certificate_ids))):
        out.setdefault(a.subject_id, []).append(a)
    return out


def _history(cert: ExemptionCertificate, entries) -> str:
    lines = [f"Certificate #{cert.id} — {cert.customer.name}", f"States: {', '.join(cert.states)}",
             f"Status: {cert.status}", ""]
    for a in sorted(entries, key=lambda a: (a.created_at, a.id)):
        lines.append(f"{a.created_at:%Y-%m-%d %H:%M} UTC  {a.actor_label}  {a.action}  {a.message}".rstrip())
    return "\n".join(lines) + "\n"


def build_pack(pack: AuditPack, *, now, progress=None) -> AuditPack:
    """Write the ZIP (documents, CSV, histories) to a scratch file, store it, mark the pack done."""
    from app.storage import get_store

    store = get_store()
    states = set(pack.jurisdictions)
    pack.total = db.session.scalar(sa.select(sa.func.count()).select_from(certificates_in_range(pack).subquery()))
    pack.done_count = 0
    # Beside the store (same file system), so storing the finished ZIP is a rename, not a copy.
    store.root.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(suffix=".zip.part", dir=store.root)
    os.close(fd)
    try:
        with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(CSV_COLUMNS)
            last_id = 0
            while True:
                batch = list(db.session.scalars(
                    certificates_in_range(pack).where(ExemptionCertificate.id > last_id).limit(BATCH)
                    .options(selectinload(ExemptionCertificate.jurisdictions),
                             selectinload(ExemptionCertificate.customer),
                             selectinload(ExemptionCertificate.reviewed_by))))
                if not batch:
                    break
                histories = _timelines([c.id for c in batch])
                for cert in batch:
                    entries = histories.get(cert.id, [])
                    overrides = [a.message for a in entries if a.action == "checks_overridden"]
                    for row in _csv_rows(cert, states, overrides):
                        writer.writerow(row)
                    if store.exists(cert.document_key):
                        # Documents are stored as they are (PDFs and images are compressed already).
                        zf.write(store.path(cert.document_key), _document_name(cert), compress_type=zipfile.ZIP_STORED)
                    zf.writestr(f"history/certificate-{cert.id}.txt", _history(cert, entries))
                    last_id = cert.id
                pack.done_count += len(batch)
                if progress:
                    progress(pack)
            zf.writestr("certificates.csv", text.getvalue())
            zf.writestr("README.txt",
                        f"Exemption certificates active between {pack.date_from} and {pack.date_to} in "
                        f"{', '.join(pack.jurisdictions)}: {pack.done_count} certificate(s).\n"
                        "certificates.csv has one row per certificate and state; documents/ holds each document "
                        "as the customer uploaded it; history/ holds each certificate's review timeline.\n")
        pack.file_size = os.path.getsize(scratch)
        pack.file_key = store.save_file(scratch)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    lifecycle.transition(pack, AuditPackStatus.DONE, actor=None, now=now,
                         note=f"{pack.done_count} certificate(s) in the pack.")
    return pack


def fail_pack(pack: AuditPack, message: str, *, now) -> None:
    pack.error = message[:2000]
    lifecycle.transition(pack, AuditPackStatus.FAILED, actor=None, now=now, note=pack.error)


def resume_audit_packs(now: datetime) -> int:
    """Re-enqueue packs a lost job left queued or running (the job is idempotent); give up after
    ``MAX_ATTEMPTS`` tries, visibly."""
    packs = db.session.scalars(sa.select(AuditPack).where(sa.or_(
        sa.and_(AuditPack.status == AuditPackStatus.QUEUED, AuditPack.created_at <= now - timedelta(minutes=5)),
        sa.and_(AuditPack.status == AuditPackStatus.RUNNING, AuditPack.started_at <= now - timedelta(minutes=30))))
        .order_by(AuditPack.id).limit(100)).all()
    for pack in packs:
        if pack.attempts >= MAX_ATTEMPTS:
            fail_pack(pack, f"The pack could not be built after {pack.attempts} tries. Ask for it again; "
                            "if it fails again, tell your administrator.", now=now)
        else:
            defer(db.session, "app.exemptions.jobs.build_audit_pack", pack.id)
    return len(packs)
