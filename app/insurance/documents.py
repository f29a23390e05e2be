"""Issuing and delivering certificate documents (COI, COI with WOS, POI).

``issue_certificate`` gives each document a unique certificate number and a revision (re-issuing for
the same customer + holder + kind increments it; only the newest stays current), renders it (or keeps
an uploaded PDF byte for byte), stores the file and records the activity. ``deliver_certificate`` puts
one e-mail per recipient in the outbox with the PDF attached. Both flush; the caller commits.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import activity
from app.enums import CertificateSource, RequestType
from app.extensions import db
from app.i18n import lazy_label
from app.insurance.pdf import HolderInfo, build_certificate_data, render_certificate_pdf
from app.models import CertificateRequest, Customer, IssuedCertificate, OutboxMessage, Setting, User
from app.models.holders import holder_key
from app.notify import queue_email
from app.storage import get_store

AGENCY_KEY = "agency"
AGENCY_FIELDS = ("name", "contact_name", "phone", "email", "address", "city", "state", "zip_code",
                 "authorized_representative")
AGENCY_DEFAULTS = {
    "name": "CertDesk Insurance Services", "contact_name": "Certificates desk", "phone": "", "email": "",
    "address": "", "city": "", "state": "", "zip_code": "", "authorized_representative": "",
}
CUSTOMER_SUBJECT = "customer"
KIND_PREFIX = {RequestType.COI: "COI", RequestType.COI_WOS: "WOS", RequestType.POI: "POI"}


def get_agency() -> dict:
    """The producer printed on certificates (Setting ``agency``), with defaults for missing fields.

    Works without an app context too (then only the defaults), so the renderer can run in the
    benchmark and in worker processes.
    """
    values = dict(AGENCY_DEFAULTS)
    try:
        setting = db.session.get(Setting, AGENCY_KEY)
    except RuntimeError:  # no application context
        setting = None
    if setting is not None and isinstance(setting.value, dict):
        values.update({k: str(v or "") for k, v in setting.value.items() if k in AGENCY_FIELDS})
    return values


def save_agency(values: dict) -> None:
    """Store the producer details (only the known fields, stripped); flushes, does not commit."""
    clean = {k: str(values.get(k) or "").strip()[:200] for k in AGENCY_FIELDS}
    setting = db.session.get(Setting, AGENCY_KEY)
    if setting is None:
        db.session.add(Setting(key=AGENCY_KEY, value=clean))
    else:
        setting.value = clean
    db.session.flush()


def _holder_key(holder: HolderInfo) -> str:
    return holder_key(holder.name, holder.address, holder.city, holder.state, holder.zip_code) or "-"


def _new_number(now: datetime, customer: Customer) -> str:
    for _ in range(20):
        number = f"{now:%Y%m%d}-{customer.id:05d}-{secrets.token_hex(3).upper()}"
        exists = db.session.scalar(sa.select(IssuedCertificate.id).where(
            IssuedCertificate.certificate_number == number))
        if exists is None:
            return number
    raise RuntimeError("could not find a free certificate number")  # pragma: no cover - 16M per day and customer


def _filename(kind: RequestType, number: str, holder: HolderInfo, revision: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", holder.name).strip("-")[:50] or "holder"
    rev = f"-rev{revision}" if revision else ""
    return f"{KIND_PREFIX[kind]}-{number}-{slug}{rev}.pdf"


def previous_certificate(customer: Customer, kind: RequestType, holder: HolderInfo) -> IssuedCertificate | None:
    """The current certificate of this customer + holder + kind, if any (locked for the update)."""
    return db.session.scalar(
        sa.select(IssuedCertificate)
        .where(IssuedCertificate.customer_id == customer.id, IssuedCertificate.kind == RequestType(kind),
               IssuedCertificate.holder_key == _holder_key(holder), IssuedCertificate.is_current.is_(True))
        .order_by(IssuedCertificate.revision.desc(), IssuedCertificate.id.desc())
        .limit(1)
        .with_for_update()
    )


def issue_certificate(customer: Customer, *, kind: RequestType, holder: HolderInfo, actor: User | None,
                      now: datetime, request: CertificateRequest | None = None, data: dict | None = None,
                      uploaded_pdf: bytes | None = None, holder_id: int | None = None) -> IssuedCertificate:
    """Number, render (or keep the uploaded PDF), store and record one certificate. Flushes only.

    Raises ``CertificateDataError`` when ``data`` is not given and cannot be built (no policy in force).
    """
    kind = RequestType(kind)
    if uploaded_pdf is None and data is None:
        data = build_certificate_data(customer, kind=kind, holder=holder, on=now.date(), request=request)
    previous = previous_certificate(customer, kind, holder)
    revision = previous.revision + 1 if previous is not None else 0
    if previous is not None:
        previous.is_current = False
        db.session.flush()
    number = _new_number(now, customer)
    if uploaded_pdf is not None:
        document = uploaded_pdf
        source = CertificateSource.UPLOADED
        stored = {"uploaded": True, "kind": kind.value, "date": now.date().isoformat(),
                  "holder": asdict(holder),
                  "certificate_number": number, "revision": revision,
                  "request_id": request.id if request is not None else None}
    else:
        stored = {**data, "certificate_number": number, "revision": revision}
        document = render_certificate_pdf(stored)
        source = CertificateSource.GENERATED
    key = get_store().save(document)
    address = ", ".join(p for p in (holder.address.strip(), holder.city_line) if p)
    cert = IssuedCertificate(
        certificate_number=number, revision=revision, is_current=True, kind=kind, source=source,
        customer_id=customer.id, request_id=request.id if request is not None else None, holder_id=holder_id,
        holder_name=holder.name[:200], holder_email=(holder.email or "")[:254], holder_address=address[:300],
        holder_key=_holder_key(holder), document_key=key, filename=_filename(kind, number, holder, revision),
        data=stored, issued_by_id=actor.id if actor is not None else None, created_at=now,
    )
    db.session.add(cert)
    db.session.flush()
    how = "uploaded" if uploaded_pdf is not None else "generated"
    rev = f", revision {revision}" if revision else ""
    activity.record(CUSTOMER_SUBJECT, customer.id, "certificate_issued", actor=actor, customer_id=customer.id,
                    now=now, message=f"{kind.label} {number}{rev} ({how}) for {holder.name}.")
    return cert


def deliver_certificate(cert: IssuedCertificate, *, recipients: list[str],
                        actor: User | None = None) -> list[OutboxMessage]:
    """One outbox e-mail per distinct recipient, with the certificate PDF attached (at most once each)."""
    seen: list[str] = []
    for address in recipients:
        address = (address or "").strip().lower()
        if address and address not in seen:
            seen.append(address)
    customer = cert.customer or db.session.get(Customer, cert.customer_id)
    attachment = [{"key": cert.document_key, "filename": cert.filename, "content_type": "application/pdf"}]
    messages = []
    for address in seen:
        is_holder = address == (cert.holder_email or "").strip().lower()
        messages.append(queue_email(
            address, "certificate_issued",
            subject=_l("%(kind)s %(number)s: %(customer)s", kind=lazy_label(cert.kind), number=cert.certificate_number,
                       customer=customer.name),
            context={"cert": cert, "customer": customer, "is_holder": is_holder,
                     "sent_by": actor.name if actor is not None else ""},
            customer_id=cert.customer_id, dedupe_key=f"cert:{cert.id}:{address}", attachments=attachment,
        ))
    return messages
