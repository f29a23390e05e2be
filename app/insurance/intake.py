"""How COI / WOS / POI requests come in: portal, staff (internal) and the JSON API all call these.

Plain service functions: explicit ``actor`` and ``now``, no request/flash/current_user. They add and
flush rows; **the caller commits** (also after a refusal or a declined payment: the refusal's
activity row, the declined payment and its e-mail/SMS must be kept although no request exists).

WOS payment rule (DESIGN.md): a card / Amex customer asking for a COI with WOS is charged the WOS fee
plus the card convenience fee *before* the request exists. Approved -> request created with the fee
recorded; declined -> :class:`PaymentDeclined` (nothing created, customer told by e-mail and SMS);
no clear answer from the gateway -> retried with the same idempotency key (one charge at most), and
if it still does not answer -> :class:`PaymentUnavailable`. ACH / wire customers are not charged up
front: the request is created with the WOS fee recorded, to be billed with their account.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app import activity, lifecycle
from app.enums import CustomerStatus, PaymentStatus, RequestSource, RequestType, Role
from app.extensions import db
from app.insurance.fees import get_fees
from app.insurance.intake_errors import (
    IdempotencyMismatch,
    NotEligible,
    PaymentDeclined,
    PaymentUnavailable,
    RequestInvalid,
)
from app.models import CertificateRequest, Customer, IssuedCertificate, Payment, User
from app.notify import queue_email, queue_sms
from app.payments import ChargeStatus, GatewayError, get_gateway
from app.queue import defer
from app.validation import InvalidInput, normalize_email, normalize_phone, normalize_state, normalize_zip

SUBJECT = "certificate_request"
CUSTOMER_SUBJECT = "customer"
AUTO_JOB = "app.insurance.jobs.auto_process_request"
GATEWAY_ATTEMPTS = 3

# -- fields -------------------------------------------------------------------------------------------

HOLDER_FIELDS = ("holder_name", "holder_email", "holder_phone", "holder_address", "holder_city", "holder_state",
                 "holder_zip")
PROJECT_FIELDS = ("project_name", "project_location", "project_duration", "contract_details")
TEXT_FIELDS = ("description", "instructions")
ALL_FIELDS = HOLDER_FIELDS + PROJECT_FIELDS + TEXT_FIELDS

LABELS = {  # lazy: each reads in the language of the page or message it appears in
    "holder_name": _l("Holder name"), "holder_email": _l("Holder e-mail"), "holder_phone": _l("Holder phone"),
    "holder_address": _l("Address"), "holder_city": _l("City"), "holder_state": _l("State"),
    "holder_zip": _l("ZIP code"), "project_name": _l("Project name"), "project_location": _l("Project location"),
    "project_duration": _l("Project duration"), "contract_details": _l("Contract details"),
    "description": _l("Description of operations"), "instructions": _l("Special instructions"),
}
MAX_LENGTHS = {
    "holder_name": 200, "holder_email": 254, "holder_phone": 32, "holder_address": 200, "holder_city": 100,
    "holder_state": 2, "holder_zip": 10, "project_name": 200, "project_location": 300, "project_duration": 120,
    "contract_details": 5000, "description": 5000, "instructions": 5000,
}
REQUESTABLE_TYPES = (RequestType.COI, RequestType.COI_WOS)


def parse_type(value, *, allowed=tuple(RequestType)) -> RequestType:
    try:
        kind = RequestType(str(value or "").strip().lower())
    except ValueError:
        kind = None
    if kind is None or kind not in allowed:
        choices = " or ".join(f'"{t.label}"' for t in allowed)
        raise RequestInvalid({"type": f"Choose {choices}."})
    return kind


def validate_fields(kind: RequestType, fields: dict) -> dict[str, str]:
    """Clean and check the request fields; returns the cleaned values or raises RequestInvalid.

    Holder name, e-mail, phone, address, city, state and ZIP are required; WOS adds the four project
    fields. Unknown keys are ignored; non-string values are refused, never crash.
    """
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for name in ALL_FIELDS:
        raw = fields.get(name, "")
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            errors[name] = gettext("%(field)s must be text.", field=LABELS[name])
            continue
        value = raw.replace("\x00", "").strip()
        if name not in ("description", "instructions", "contract_details"):
            value = " ".join(value.split())
        clean[name] = value
    required = list(HOLDER_FIELDS) + (list(PROJECT_FIELDS) if kind is RequestType.COI_WOS else [])
    for name in required:
        if name not in errors and not clean.get(name):
            errors[name] = (gettext("%(field)s is required for a certificate with WOS.", field=LABELS[name])
                            if name in PROJECT_FIELDS else gettext("%(field)s is required.", field=LABELS[name]))
    checks = {"holder_email": normalize_email, "holder_phone": normalize_phone, "holder_state": normalize_state,
              "holder_zip": normalize_zip}
    for name, check in checks.items():
        if name in errors or not clean.get(name):
            continue
        try:
            clean[name] = check(clean[name])
        except InvalidInput as exc:
            errors[name] = str(exc)
            continue
        if name != "holder_email" and not clean[name].isascii():  # e.g. Arabic-Indic or full-width digits
            errors[name] = {"holder_phone": gettext("Use a 10-digit US phone number, e.g. (512) 555-0100."),
                            "holder_state": gettext("Use a two-letter US state code (or DC)."),
                            "holder_zip": gettext("Use a 5-digit ZIP code or ZIP+4 (12345 or 12345-6789).")}[name]
    for name, limit in MAX_LENGTHS.items():
        if name not in errors and len(clean.get(name, "")) > limit:
            errors[name] = gettext("%(field)s is too long (at most %(limit)s characters).", field=LABELS[name],
                                   limit=limit)
    if errors:
        raise RequestInvalid(errors)
    return clean


# -- eligibility --------------------------------------------------------------------------------------

REFUSALS = {
    CustomerStatus.INACTIVE: "{name} is inactive, so certificates cannot be requested for it. "
                             "Contact your account manager to reactivate the account.",
    CustomerStatus.SUSPENDED: "{name} is suspended, so certificates cannot be requested for it until the "
                              "suspension is lifted. Contact your account manager.",
}


def eligibility(customer: Customer) -> tuple[bool, str]:
    """(may request?, why not). Only ``active`` customers may request certificates."""
    if customer.status is CustomerStatus.ACTIVE:
        return True, ""
    template = REFUSALS.get(customer.status, "{name} is not active, so certificates cannot be requested for it.")
    why = template.format(name=customer.name)
    reason = (customer.status_reason or "").strip()
    if reason:  # staff give one when they change the status; the customer reads it here
        why = f"{why} Reason: {reason}" + ("" if reason.endswith((".", "!", "?")) else ".")
    return False, why


def check_eligible(customer: Customer, *, actor: User | None, now: datetime, source: RequestSource | None = None,
                   what: str = "certificate request") -> None:
    """Raise NotEligible (after writing the refusal to the customer's timeline) unless active."""
    ok, why = eligibility(customer)
    if ok:
        return
    via = f" ({source.value})" if source is not None else ""
    activity.record(CUSTOMER_SUBJECT, customer.id, "request_refused", actor=actor, customer_id=customer.id,
                    message=f"{what.capitalize()}{via} refused: {why}", now=now)
    raise NotEligible(why)


# -- submission -------------------------------------------------------------------------------------------

def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


def customer_contacts(customer: Customer, actor: User | None) -> list[str]:
    """The customer's e-mail addresses: contact on file plus the customer user acting (if any)."""
    out = [customer.contact_email] if customer.contact_email else []
    if actor is not None and actor.role is Role.CUSTOMER and actor.customer_id == customer.id and actor.email:
        out.append(actor.email)
    return list(dict.fromkeys(a.strip().lower() for a in out if a.strip()))


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _payment_key(customer: Customer, idempotency_key: str | None) -> str:
    key = (idempotency_key or "").strip()[:80] or new_idempotency_key()
    return f"wos:{customer.id}:{key}"


def _existing_request(payment: Payment) -> CertificateRequest | None:
    return payment.request


def _charge(customer: Customer, payment: Payment, *, actor: User | None, now: datetime) -> None:
    """Charge the card on file (retrying a lost answer with the same key); sets payment status."""
    gateway = get_gateway()
    last_error = ""
    for attempt in range(1, GATEWAY_ATTEMPTS + 1):
        try:
            result = gateway.charge(card_token=customer.card_token or "", amount_cents=payment.amount_cents,
                                    idempotency_key=payment.idempotency_key,
                                    description=f"WOS certificate fee for {customer.name}")
        except GatewayError as exc:
            last_error = str(exc)
            activity.record(CUSTOMER_SUBJECT, customer.id, "payment_retry", actor=actor, customer_id=customer.id,
                            now=now, message=f"Payment attempt {attempt} got no clear answer ({exc}); retrying "
                                             "with the same idempotency key.")
            continue
        payment.gateway_charge_id = result.charge_id
        payment.message = result.message[:300]
        lifecycle.transition(payment, PaymentStatus.APPROVED if result.status is ChargeStatus.APPROVED
                             else PaymentStatus.DECLINED, actor=actor, now=now)
        return
    # no clear answer: the payment stays ``error`` (a resubmission with the same key charges again)
    payment.message = last_error[:300] or "The payment service did not answer."


def _notify_declined(customer: Customer, payment: Payment, *, actor: User | None) -> None:
    from flask_babel import LazyString

    from app.customers.cards import card_page_url  # the e-mail and SMS link straight to the card page

    context = {"customer": customer, "payment": payment, "amount": _money(payment.amount_cents),
               "last4": customer.card_last4 or ""}
    for address in customer_contacts(customer, actor):
        queue_email(address, "coi_payment_failed", subject=_l("Payment failed: please update your payment method"),
                    context=context, customer_id=customer.id, dedupe_key=f"payment-failed:{payment.id}:{address}")
    if customer.contact_phone:
        queue_sms(customer.contact_phone,
                  LazyString(lambda: " ".join((
                      gettext("%(customer)s: the %(amount)s charge for your certificate with waiver of subrogation "
                              "was declined and no request was created. Please update your payment method, then "
                              "submit the request again.", customer=customer.name,
                              amount=_money(payment.amount_cents)),
                      gettext("Update the card: %(url)s", url=card_page_url(payment))))),
                  customer_id=customer.id, dedupe_key=f"payment-failed-sms:{payment.id}")


def _take_payment(customer: Customer, *, key: str, actor: User | None, now: datetime) -> Payment:
    """Find or make the Payment for this submission and make sure it is approved (or raise)."""
    payment = db.session.scalar(sa.select(Payment).where(Payment.idempotency_key == key))
    if payment is not None and payment.status is PaymentStatus.APPROVED:
        return payment
    if payment is not None and payment.status is PaymentStatus.DECLINED:
        raise PaymentDeclined(payment)
    fees = get_fees()
    if payment is None:
        conv = fees.convenience_cents()
        payment = Payment(customer_id=customer.id, idempotency_key=key, status=PaymentStatus.ERROR,
                          fee_cents=fees.wos_fee_cents, convenience_fee_cents=conv,
                          amount_cents=fees.wos_fee_cents + conv, card_last4=customer.card_last4 or "")
        try:
            with db.session.begin_nested():  # a concurrent twin submission with the same key loses here
                db.session.add(payment)
        except IntegrityError:
            payment = db.session.scalar(sa.select(Payment).where(Payment.idempotency_key == key))
            if payment is None or payment.status is PaymentStatus.ERROR:
                raise PaymentUnavailable(payment or Payment(idempotency_key=key)) from None
            if payment.status is PaymentStatus.DECLINED:
                raise PaymentDeclined(payment) from None
            return payment
    _charge(customer, payment, actor=actor, now=now)
    db.session.flush()
    amount = _money(payment.amount_cents)
    card = f"card ending {customer.card_last4}" if customer.card_last4 else "card on file"
    if payment.status is PaymentStatus.DECLINED:
        activity.record(CUSTOMER_SUBJECT, customer.id, "payment_declined", actor=actor, customer_id=customer.id,
                        now=now, message=f"WOS fee {amount} declined on the {card}; no request was created. "
                                         "The customer was asked by e-mail and SMS to update the payment method.")
        _notify_declined(customer, payment, actor=actor)
        raise PaymentDeclined(payment)
    if payment.status is PaymentStatus.ERROR:
        activity.record(CUSTOMER_SUBJECT, customer.id, "payment_failed", actor=actor, customer_id=customer.id,
                        now=now, message=f"WOS fee {amount}: the payment service did not answer after "
                                         f"{GATEWAY_ATTEMPTS} attempts; no request was created.")
        raise PaymentUnavailable(payment)
    return payment



def clean_idempotency_key(idempotency_key) -> str | None:
    """Printable characters only (a NUL cannot be stored on PostgreSQL), at most 80; blank means "no key"."""
    return "".join(ch for ch in str(idempotency_key or "") if ch.isprintable()).strip()[:80] or None


def replayed_request(customer: Customer, idempotency_key, *, type, fields: dict) -> CertificateRequest | None:
    """The request an earlier submission with this key created (an exact replay), or None for a new key.

    Raises :class:`IdempotencyMismatch` when the key was used for a request of another type or with other values
    (compared after cleaning, so "tx" and "TX" are the same)."""
    key = clean_idempotency_key(idempotency_key)
    if key is None:
        return None
    existing = db.session.scalar(sa.select(CertificateRequest)
                                 .where(CertificateRequest.idempotency_key == f"{customer.id}:{key}"))
    if existing is None:
        return None
    try:
        kind = parse_type(type)
        clean = validate_fields(kind, fields or {})
    except RequestInvalid:
        raise IdempotencyMismatch(existing) from None
    if kind is not existing.type or any(getattr(existing, k) != v for k, v in clean.items()):
        raise IdempotencyMismatch(existing)
    return existing


def submit_certificate_request(customer: Customer, *, type, source: RequestSource, fields: dict,
                               actor: User | None, now: datetime,
                               idempotency_key: str | None = None,
                               allowed_types=tuple(RequestType)) -> CertificateRequest:
    """Validate, check eligibility, take the WOS payment if due, create the request, tell the customer.

    Order: fields -> eligibility -> payment -> request. Nothing is charged for invalid input or an
    ineligible customer; nothing is created when the payment fails. Submitting again with the same
    ``idempotency_key`` after success returns the same request (no second charge, no duplicate).
    """
    idempotency_key = clean_idempotency_key(idempotency_key)
    request_key = f"{customer.id}:{idempotency_key}" if idempotency_key else None
    if request_key is not None:
        existing = db.session.scalar(sa.select(CertificateRequest)
                                     .where(CertificateRequest.idempotency_key == request_key))
        if existing is not None:
            return existing
    kind = parse_type(type, allowed=allowed_types)
    clean = validate_fields(kind, fields or {})
    check_eligible(customer, actor=actor, now=now, source=source)

    payment = None
    fee_cents = 0
    if kind is RequestType.COI_WOS:
        fee_cents = get_fees().wos_fee_cents
        if customer.payment_method.charged_up_front:
            payment = _take_payment(customer, key=_payment_key(customer, idempotency_key), actor=actor, now=now)
            existing = _existing_request(payment)
            if existing is not None:
                return existing
            fee_cents = payment.fee_cents

    req = CertificateRequest(customer_id=customer.id, type=kind, source=source, fee_cents=fee_cents,
                             submitted_by_id=actor.id if actor is not None else None,
                             created_at=now, updated_at=now,
                             idempotency_key=request_key, **clean)
    try:
        with db.session.begin_nested():  # a concurrent twin with the same idempotency key loses here
            db.session.add(req)
    except IntegrityError:
        existing = db.session.scalar(sa.select(CertificateRequest)
                                     .where(CertificateRequest.idempotency_key == request_key))
        if existing is None:
            raise
        return existing
    who = actor.name if actor is not None else "the system"
    label = {RequestSource.PORTAL: "the customer portal", RequestSource.API: "the API",
             RequestSource.INTERNAL: "staff (internal request)"}[source]
    activity.record(SUBJECT, req.id, "submitted", actor=actor, customer_id=customer.id, now=now,
                    message=f"{kind.label} for {req.holder_name} submitted by {who} via {label}.")
    from app.events import emit

    emit("certificate_request.created", SUBJECT, req, now=now)
    if payment is not None:
        payment.request_id = req.id
        activity.record(SUBJECT, req.id, "payment_approved", actor=actor, customer_id=customer.id, now=now,
                        message=f"Charged {_money(payment.amount_cents)} (WOS fee {_money(payment.fee_cents)} + "
                                f"card convenience fee {_money(payment.convenience_fee_cents)}) to the card ending "
                                f"{payment.card_last4 or '----'}; charge {payment.gateway_charge_id}.")
    elif kind is RequestType.COI_WOS:
        activity.record(SUBJECT, req.id, "fee_recorded", actor=actor, customer_id=customer.id, now=now,
                        message=f"WOS fee {_money(fee_cents)} recorded; {customer.payment_method.value.upper()} "
                                "customer, billed with the account (no card charge).")
    for address in customer_contacts(customer, actor):
        queue_email(address, "coi_request_received",
                    subject=_l("We received your certificate request #%(id)s", id=req.id),
                    context={"req": req, "customer": customer, "payment": payment,
                             "fee": _money(fee_cents) if fee_cents else ""},
                    customer_id=customer.id, dedupe_key=f"coi-received:{req.id}:{address}")
    defer(db.session, AUTO_JOB, req.id)
    return req


# -- reading ------------------------------------------------------------------------------------------------

def customer_requests(customer_id: int, limit: int = 100) -> list[CertificateRequest]:
    stmt = (sa.select(CertificateRequest).where(CertificateRequest.customer_id == customer_id)
            .order_by(CertificateRequest.created_at.desc(), CertificateRequest.id.desc()).limit(limit))
    return list(db.session.scalars(stmt))


def customer_certificates(customer_id: int, *, current_only: bool = False, limit: int = 200) -> list[IssuedCertificate]:
    stmt = sa.select(IssuedCertificate).where(IssuedCertificate.customer_id == customer_id)
    if current_only:
        stmt = stmt.where(IssuedCertificate.is_current.is_(True))
    stmt = stmt.order_by(IssuedCertificate.created_at.desc(), IssuedCertificate.id.desc()).limit(limit)
    return list(db.session.scalars(stmt))


def certificate_for(customer_id: int, certificate_id) -> IssuedCertificate | None:
    try:
        certificate_id = int(str(certificate_id).strip())
    except (TypeError, ValueError):
        return None
    if not 0 < certificate_id < 2**31:  # beyond the column's range: no such row (and no driver error)
        return None
    cert = db.session.get(IssuedCertificate, certificate_id)
    return cert if cert is not None and cert.customer_id == customer_id else None
