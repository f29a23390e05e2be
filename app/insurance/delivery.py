"""Sending again what a customer already has: the current proof of insurance, and issued certificates to
their holders or other addresses. Both queue a job (``intake_jobs``) after the caller commits.

Plain service functions: explicit ``actor`` and ``now``; they add and flush rows, **the caller commits**.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from app import activity
from app.extensions import db
from app.insurance.intake import CUSTOMER_SUBJECT, certificate_for, check_eligible, customer_contacts
from app.insurance.intake_errors import RequestInvalid
from app.models import Customer, User
from app.queue import defer
from app.validation import InvalidInput, normalize_email

POI_JOB = "app.insurance.intake_jobs.send_poi"
RESEND_JOB = "app.insurance.intake_jobs.resend_certificates"


# -- resend POI / certificates ------------------------------------------------------------------------------

def resend_poi(customer: Customer, *, email: str, name: str = "", actor: User | None, now: datetime) -> str:
    """Queue the current proof of insurance to ``email``; returns the token the job uses (idempotency)."""
    try:
        address = normalize_email(email).lower()
    except InvalidInput as exc:
        raise RequestInvalid({"email": str(exc)}) from exc
    name = " ".join((name or "").replace("\x00", "").split())[:200]
    check_eligible(customer, actor=actor, now=now, what="proof of insurance")
    token = secrets.token_hex(8)
    activity.record(CUSTOMER_SUBJECT, customer.id, "poi_requested", actor=actor, customer_id=customer.id, now=now,
                    message=f"Proof of insurance to be e-mailed to {address}.")
    defer(db.session, POI_JOB, customer.id, address, name, actor.id if actor is not None else None, token,
          queue="pdf")
    return token


def resend_certificates(customer: Customer, *, certificate_ids, send_to_holders: bool = True,
                        extra_emails: str = "", copy_customer: bool = False, actor: User | None,
                        now: datetime) -> dict:
    """Re-send previously issued certificates of this customer to their holders (and/or other addresses).

    ``certificate_ids`` must all belong to the customer (others are refused as not found).
    Returns {"certificates": [...], "recipients": {cert_id: [emails]}}.
    """
    ids = []
    for raw in certificate_ids or []:
        cert = certificate_for(customer.id, raw)
        if cert is None:
            raise RequestInvalid({"certificate_ids": "Pick certificates of this customer from the list."})
        ids.append(cert)
    if not ids:
        raise RequestInvalid({"certificate_ids": "Pick at least one certificate to resend."})
    extras = []
    errors = {}
    for part in (extra_emails or "").replace(";", ",").replace("\n", ",").split(","):
        if part.strip():
            try:
                extras.append(normalize_email(part))
            except InvalidInput as exc:
                errors["extra_emails"] = f"{part.strip()[:60]}: {exc}"
    if len(extras) > 20:
        errors["extra_emails"] = "At most 20 extra addresses."
    if errors:
        raise RequestInvalid(errors)
    customer_addresses = customer_contacts(customer, actor) if copy_customer else []
    plan: dict[int, list[str]] = {}
    for cert in ids:
        recipients = []
        if send_to_holders and cert.holder_email:
            recipients.append(cert.holder_email.lower())
        recipients += extras + customer_addresses
        plan[cert.id] = list(dict.fromkeys(recipients))
    if not any(plan.values()):
        raise RequestInvalid({"extra_emails": "None of the picked certificates has a holder e-mail: "
                                              "add an address to send them to."})
    token = secrets.token_hex(8)
    for cert in ids:
        if not plan[cert.id]:
            continue
        activity.record(CUSTOMER_SUBJECT, customer.id, "certificate_resend_requested", actor=actor,
                        customer_id=customer.id, now=now,
                        message=f"Certificate {cert.certificate_number} ({cert.holder_name}) to be re-sent to "
                                f"{', '.join(plan[cert.id])}.")
        defer(db.session, RESEND_JOB, cert.id, plan[cert.id], actor.id if actor is not None else None, token,
              queue="email")
    return {"certificates": ids, "recipients": plan}
