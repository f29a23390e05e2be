"""Issuing and delivering certificate documents (COI, COI with WOS, POI); the agency settings are in ``agency.py``.

``issue_certificate`` is the entry point the request paths use; the work (issue guard, number and
revision, verification code + QR code, signature, SHA-256, superseding the previous revision) is done by
the one issuing service, ``app.insurance.issuing``. ``deliver_certificate`` puts one e-mail per recipient
in the outbox with the PDF attached (resend uses it for an existing certificate). Both flush; the
caller commits.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from app.enums import RequestType
from app.extensions import db
from app.i18n import lazy_label
from app.insurance.pdf import HolderInfo
from app.models import CertificateRequest, Customer, IssuedCertificate, OutboxMessage, User
from app.notify import queue_email

CUSTOMER_SUBJECT = "customer"
KIND_PREFIX = {RequestType.COI: "COI", RequestType.COI_WOS: "WOS", RequestType.POI: "POI"}


def issue_certificate(customer: Customer, *, kind: RequestType, holder: HolderInfo, actor: User | None,
                      now: datetime, request: CertificateRequest | None = None, data: dict | None = None,
                      uploaded_pdf: bytes | None = None, holder_id: int | None = None,
                      override_note: str = "") -> IssuedCertificate:
    """Issue one certificate through the one issuing path (``app.insurance.issuing.issue``): guard,
    number + revision, verification code + QR code, signature, SHA-256. Flushes only."""
    from app.insurance.issuing import issue

    return issue(customer, kind=kind, holder=holder, actor=actor, now=now, request=request, data=data,
                 uploaded_pdf=uploaded_pdf, holder_id=holder_id, override_note=override_note)


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
