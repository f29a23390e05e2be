"""Jobs behind "Resend POI" and "Resend certificates" (ids and plain values in, idempotent).

Each run carries a ``token`` made when the user asked; the outbox ``dedupe_key`` includes it, so a
retried or duplicated job sends nothing twice, while a later resend (a new token) does send again.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import activity
from app.enums import RequestType
from app.extensions import db
from app.jobs import job
from app.models import Customer, IssuedCertificate, OutboxMessage, User
from app.models.base import utcnow
from app.notify import queue_email

CUSTOMER_SUBJECT = "customer"


def _attachment(cert: IssuedCertificate) -> list[dict]:
    return [{"key": cert.document_key, "filename": cert.filename, "content_type": "application/pdf"}]


def _already_queued(dedupe_key: str) -> bool:
    return db.session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)) is not None


@job
def send_poi(customer_id: int, email: str, name: str, actor_id: int | None, token: str):
    """Issue the current proof of insurance and e-mail it to the address the user gave."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.documents import issue_certificate
    from app.insurance.layout import HolderInfo

    dedupe_key = f"poi:{token}"
    if _already_queued(dedupe_key):
        return "already sent"
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        return "missing"
    actor = db.session.get(User, actor_id) if actor_id else None
    now = utcnow()
    holder = HolderInfo(name=name or email, email=email)
    try:
        cert = issue_certificate(customer, kind=RequestType.POI, holder=holder, actor=actor, now=now)
    except CertificateDataError as exc:
        activity.record(CUSTOMER_SUBJECT, customer.id, "poi_failed", actor=actor, customer_id=customer.id, now=now,
                        message=f"Proof of insurance for {email} could not be issued: {exc}")
        return "failed"
    queue_email(email, "coi_poi", subject=_l("Proof of insurance: %(customer)s", customer=customer.name),
                context={"customer": customer, "cert": cert, "name": name}, customer_id=customer.id,
                dedupe_key=dedupe_key, attachments=_attachment(cert))
    activity.record(CUSTOMER_SUBJECT, customer.id, "poi_sent", actor=actor, customer_id=customer.id, now=now,
                    message=f"Proof of insurance {cert.certificate_number} e-mailed to {email}.")
    return "sent"


@job
def resend_certificates(certificate_id: int, recipients: list[str], actor_id: int | None, token: str):
    """E-mail one previously issued certificate (its stored PDF, unchanged) to each recipient."""
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None:
        return "missing"
    actor = db.session.get(User, actor_id) if actor_id else None
    sent = []
    for address in recipients:
        dedupe_key = f"resend:{token}:{cert.id}:{address}"
        if _already_queued(dedupe_key):
            continue
        queue_email(address, "coi_certificate_resent",
                    subject=_l("Certificate of insurance %(number)s: %(customer)s", number=cert.certificate_number,
                               customer=cert.customer.name),
                    context={"cert": cert, "customer": cert.customer}, customer_id=cert.customer_id,
                    dedupe_key=dedupe_key, attachments=_attachment(cert))
        sent.append(address)
    if sent:
        activity.record(CUSTOMER_SUBJECT, cert.customer_id, "certificate_resent", actor=actor,
                        customer_id=cert.customer_id, now=utcnow(),
                        message=f"Certificate {cert.certificate_number} ({cert.holder_name}) re-sent to "
                                f"{', '.join(sent)}.")
    return len(sent)
