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
from app.insurance.layout import HolderInfo
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


def deliver_to_holder(certs: list[IssuedCertificate], address: str, *,
                      actor: User | None = None) -> OutboxMessage | None:
    """One e-mail to one holder address with every certificate of ``certs`` attached (a re-issue run sends
    a holder all its new revisions together: one e-mail per holder). At most once for the first certificate
    and the address (``dedupe_key cert:<first id>:<address>``, as ``deliver_certificate``)."""
    address = (address or "").strip().lower()
    if not certs or not address:
        return None
    if len(certs) == 1:
        return deliver_certificate(certs[0], recipients=[address], actor=actor)[0]
    first = certs[0]
    customer = first.customer or db.session.get(Customer, first.customer_id)
    return queue_email(
        address, "certificate_issued",
        subject=_l("%(kind)s %(number)s: %(customer)s", kind=lazy_label(first.kind), number=first.certificate_number,
                   customer=customer.name),
        context={"cert": first, "more": certs[1:], "customer": customer, "is_holder": True,
                 "sent_by": actor.name if actor is not None else ""},
        customer_id=first.customer_id, dedupe_key=f"cert:{first.id}:{address}",
        attachments=[{"key": c.document_key, "filename": c.filename, "content_type": "application/pdf"}
                     for c in certs])


def notify_cancellation(policy, *, actor: User | None, now: datetime) -> int:
    """A policy was cancelled: e-mail the holders of current certificates that print it, but only those the
    policy's notice-of-cancellation endorsement covers (one naming the holder, or a blanket one). Holders
    without such an endorsement get nothing: a certificate confers no right to notice. One e-mail per
    holder address and policy (``dedupe_key policy-cancelled:<policy>:<address>``), listing its
    certificates. The verify pages need nothing: they read the policy's state when opened. Returns the
    number of holders e-mailed. Flushes only."""
    import sqlalchemy as sa

    from app.activity import record
    from app.enums import EndorsementKind

    if not any(e.kind is EndorsementKind.NOTICE_OF_CANCELLATION for e in policy.endorsements):
        return 0
    holders: dict[str, tuple[str, list[str]]] = {}
    certs = db.session.scalars(sa.select(IssuedCertificate).where(
        IssuedCertificate.customer_id == policy.customer_id, IssuedCertificate.is_current.is_(True))
        .order_by(IssuedCertificate.id).execution_options(yield_per=500))
    for cert in certs:
        address = (cert.holder_email or "").strip().lower()
        if not address or policy.id not in cert.policy_ids:
            continue
        if policy.endorsement_for(EndorsementKind.NOTICE_OF_CANCELLATION, cert.holder_name) is None:
            continue
        name, numbers = holders.setdefault(address, (cert.holder_name, []))
        numbers.append(cert.certificate_number)
    customer = policy.customer or db.session.get(Customer, policy.customer_id)
    for address, (name, numbers) in holders.items():
        queue_email(address, "policy_cancelled",
                    subject=_l("Notice of cancellation: policy %(number)s of %(customer)s",
                               number=policy.policy_number, customer=customer.name),
                    context={"customer": customer, "holder_name": name, "policy": policy,
                             "numbers": ", ".join(sorted(set(numbers)))},
                    customer_id=customer.id, dedupe_key=f"policy-cancelled:{policy.id}:{address}")
    if holders:
        record("policy", policy.id, "cancellation_notices", actor=actor, customer_id=customer.id, now=now,
               message=f"Notice of cancellation e-mailed to {len(holders)} holder(s) its endorsement covers: "
               + ", ".join(name for name, _ in holders.values()) + ".")
    return len(holders)
