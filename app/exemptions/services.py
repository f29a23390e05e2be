"""Exemption certificates: the business rules (send, resend, cancel, open, submit, review, expire,
remind, renew, lookup).

Plain functions with explicit arguments (``actor``, ``now``); the caller commits. Jobs are parked
with ``defer`` and reach Redis only after that commit. Every status change goes through
``transition()``, which checks the TRANSITIONS tables below and writes an activity row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from app import lifecycle
from app.activity import record
from app.enums import (
    ExemptionCertificateStatus as CS,
)
from app.enums import (
    ExemptionFormType,
    ExemptionReason,
    PurchaseType,
    Role,
    SendRunStatus,
)
from app.enums import (
    ExemptionRequestStatus as RS,
)
from app.events import emit
from app.exemptions import rules
from app.extensions import db
from app.lifecycle import MACHINES
from app.models import (
    CertificateJurisdiction,
    Customer,
    ExemptionCertificate,
    ExemptionRequest,
    ExemptionSendRun,
    User,
)
from app.notify import queue_email
from app.queue import defer
from app.uploads import CheckedUpload
from app.validation import US_STATES

LIVE = (RS.SENT, RS.OPENED)

REQUEST_SUBJECT = "exemption_request"
CERTIFICATE_SUBJECT = "exemption_certificate"
# (subject, new status) -> the event it emits, as the lifecycle machines declare it.
EVENT_OF = {(m.subject, state): event for m in (MACHINES[ExemptionRequest], MACHINES[ExemptionCertificate])
            for state, event in m.events.items()}
CUSTOMER_SUBJECT = "customer"
NOTE_MAX = 5000


# -- errors -----------------------------------------------------------------------------------------

class LinkUnavailable(Exception):
    """The link is unknown, tampered with, expired, cancelled, replaced or already used."""


class ReviewConflict(Exception):
    """Somebody else changed the item first; the message is safe to show."""


class InvalidData(ValueError):
    """Field errors for a form or API body: ``errors`` maps field name -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# -- the state machines -----------------------------------------------------------------------------

def transition(obj, to, *, actor: User | None, now: datetime, action: str | None = None, message: str = ""):
    """An exemption request's or certificate's status change, through the lifecycle engine."""
    return lifecycle.transition(obj, to, actor=actor, now=now, action=action, note=message)


# -- tokens -----------------------------------------------------------------------------------------
#
# A link's token is never stored anywhere. It is derived from SECRET_KEY, the request id and a random
# per-link nonce, so a reminder can repeat the link; only its SHA-256 is kept, to find the request.
# E-mails carry a placeholder that is expanded only when the e-mail is built for delivery
# (``notify.DELIVERY_EXPANDERS``), so the outbox rows do not hold a usable link either.

LINK_PLACEHOLDER = re.compile(r"\[\[exemption-link:(\d+):([0-9a-f]{32})\]\]")


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link_nonce() -> str:
    return secrets.token_hex(16)


def link_token(request_id: int, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(key, f"exemption-link:{request_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def request_token(req: ExemptionRequest) -> str:
    """The plain token of the request's current link (recomputed, never read from storage)."""
    return link_token(req.id, req.link_nonce)


def _new_link(req: ExemptionRequest) -> str:
    """Give the (flushed) request a fresh link: a new nonce, the new token's hash. Returns the token."""
    req.link_nonce = new_link_nonce()
    token = request_token(req)
    req.token_hash = hash_link_token(token)
    return token


def link_url(token: str) -> str:
    return f"{current_app.config['BASE_URL']}/portal/r/{token}"


def link_placeholder(req: ExemptionRequest) -> str:
    """What an e-mail template gets as ``link``: replaced by the real URL at delivery time."""
    return f"[[exemption-link:{req.id}:{req.link_nonce}]]"


def expand_link_placeholders(text: str) -> str:
    if not text or "[[exemption-link:" not in text:
        return text
    return LINK_PLACEHOLDER.sub(lambda m: link_url(link_token(int(m.group(1)), m.group(2))), text)


def link_days() -> int:
    return current_app.config["EXEMPTION_LINK_DAYS"]


# -- send / resend / cancel ---------------------------------------------------------------------------

def _clean_email(email: str) -> str:
    from app.validation import InvalidInput, normalize_email

    try:
        return normalize_email(email)
    except InvalidInput as exc:
        raise InvalidData({"email": str(exc)}) from exc


def delivery_ref(req: ExemptionRequest) -> str:
    """The outbox ``ref`` of this request's e-mails, so its page can show a delivery failure."""
    return f"exemption-request:{req.id}"


def _email_link(req: ExemptionRequest, *, template: str = "exemption_request",
                subject=None, extra: dict | None = None) -> None:
    seller = current_app.config["SELLER_NAME"]
    queue_email(
        req.email, template,
        subject=subject or _l("%(seller)s asks for your sales-tax exemption certificate", seller=seller),
        context={"request": req, "customer": req.customer, "link": link_placeholder(req),
                 "expires_at": req.expires_at, **(extra or {})},
        customer_id=req.customer_id, ref=delivery_ref(req),
    )


def _schedule_expiry(req: ExemptionRequest) -> None:
    defer(db.session, "app.exemptions.jobs.expire_link", req.id, at=req.expires_at)


def send_request(customer: Customer, email: str, *, actor: User | None, now: datetime, source: str = "staff",
                 prefill: dict | None = None, previous_certificate: ExemptionCertificate | None = None,
                 renewal_of: ExemptionCertificate | None = None, send_run: ExemptionSendRun | None = None,
                 email_template: str = "exemption_request", email_extra: dict | None = None,
                 subject: str | None = None) -> tuple[ExemptionRequest, str]:
    """Create a request in ``sent``, e-mail its link (by the outbox job) and schedule its expiry.

    Returns the request and the plain token (derived, never stored; only its hash is)."""
    if customer is None:
        raise InvalidData({"customer_id": "Choose a customer."})
    email = _clean_email(email)
    nonce = new_link_nonce()
    req = ExemptionRequest(
        # The token needs the id: a provisional hash (never a SHA-256, so it matches no token) until the flush.
        customer_id=customer.id, customer=customer, email=email, token_hash=f"new:{nonce}", link_nonce=nonce,
        status=RS.SENT,
        source=source, sent_at=now, expires_at=now + timedelta(days=link_days()), reminders_sent=[],
        prefill=prefill, previous_certificate_id=previous_certificate.id if previous_certificate else None,
        renewal_of_id=renewal_of.id if renewal_of else None, send_run_id=send_run.id if send_run else None,
        created_by_id=actor.id if actor else None, created_at=now,
    )
    db.session.add(req)
    db.session.flush()
    token = request_token(req)
    req.token_hash = hash_link_token(token)
    what = {"staff": "Request sent", "api": "Request sent through the API", "bulk": "Request sent (send to many)",
            "renewal": "Renewal request sent", "resubmission": "New link sent after rejection"}.get(source, "Sent")
    record(REQUEST_SUBJECT, req.id, "sent", actor=actor, customer_id=customer.id, now=now,
           message=f"{what} to {email}; the link expires {req.expires_at:%b %d, %Y}.")
    emit("exemption_request.sent", REQUEST_SUBJECT, req, now=now)
    _email_link(req, template=email_template, subject=subject, extra=email_extra)
    _schedule_expiry(req)
    return req, token


def resend_request(req: ExemptionRequest, *, actor: User | None, now: datetime, email: str | None = None) -> str:
    """A new link with a fresh expiry (optionally to a new e-mail); the old link dies at once."""
    new_email = _clean_email(email) if email and email.strip() else req.email
    old_email = req.email
    token = _new_link(req)
    req.email = new_email
    req.link_version += 1
    req.expires_at = now + timedelta(days=link_days())
    req.opened_at = None
    req.expired_at = None
    req.reminders_sent = []
    note = f"New link sent to {new_email}" + (f" (was {old_email})" if new_email != old_email else "")
    transition(req, RS.SENT, actor=actor, now=now, action="resent",
               message=f"{note}; the previous link no longer works. Expires {req.expires_at:%b %d, %Y}.")
    _email_link(req)
    _schedule_expiry(req)
    return token


def cancel_request(req: ExemptionRequest, *, actor: User | None, now: datetime) -> ExemptionRequest:
    return transition(req, RS.CANCELLED, actor=actor, now=now, message="Request cancelled; its link no longer works.")


# -- the customer's link ------------------------------------------------------------------------------

def find_by_token(token: str) -> ExemptionRequest | None:
    if not token or len(token) > 200:
        return None
    return db.session.scalar(sa.select(ExemptionRequest).where(ExemptionRequest.token_hash == hash_link_token(token))
                             .options(sa.orm.joinedload(ExemptionRequest.customer)))


def expire_request(req: ExemptionRequest, *, now: datetime) -> bool:
    """Move a live request whose time has come to ``expired``. Idempotent: False if nothing to do."""
    if req.status not in LIVE or req.expires_at > now:
        return False
    transition(req, RS.EXPIRED, actor=None, now=now, message="The link expired unused.")
    return True


def resolve_link(token: str, *, now: datetime) -> ExemptionRequest:
    """The request a link opens, or LinkUnavailable. Time is checked here on every use, so an
    overdue link is refused even if neither the scheduled job nor the sweep has run yet."""
    req = find_by_token(token)
    if req is None:
        raise LinkUnavailable()
    if req.status in LIVE and req.expires_at <= now:
        expire_request(req, now=now)
    if req.status not in LIVE:
        raise LinkUnavailable()
    return req


def is_completed(req: ExemptionRequest) -> bool:
    """The link's form was submitted (reloads the row: another request may have just done it)."""
    db.session.refresh(req)
    return req.status is RS.COMPLETED


def open_link(req: ExemptionRequest, *, now: datetime) -> ExemptionRequest:
    if req.status is RS.SENT:
        transition(req, RS.OPENED, actor=None, now=now, message="The customer opened the link.")
    return req


@dataclass
class CertificateData:
    """Validated certificate fields (from the link form, the edit form or a prefill)."""

    reason: ExemptionReason
    form_type: ExemptionFormType
    purchase_type: PurchaseType
    tax_id_number: str
    effective_date: date
    purchaser_name: str
    purchaser_address: str
    signer_name: str
    signed_on: date
    jurisdictions: list[tuple[str, str, date | None]]
    reason_other: str = ""
    po_number: str = ""
    expiration_date: date | None = None
    signer_title: str = ""
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def as_prefill(self) -> dict:
        return {
            "reason": str(self.reason), "reason_other": self.reason_other, "form_type": str(self.form_type),
            "purchase_type": str(self.purchase_type), "po_number": self.po_number,
            "tax_id_number": self.tax_id_number, "effective_date": self.effective_date.isoformat(),
            "expiration_date": self.expiration_date.isoformat() if self.expiration_date else "",
            "purchaser_name": self.purchaser_name, "purchaser_address": self.purchaser_address,
            "signer_name": self.signer_name, "signer_title": self.signer_title,
            "signed_on": self.signed_on.isoformat(),
            "jurisdictions": [{"state": s, "state_id_number": n, "expiration_date": d.isoformat() if d else ""}
                              for s, n, d in self.jurisdictions],
        }


def check_certificate_data(data: CertificateData) -> None:
    """Cross-field rules shared by every face; raises InvalidData with per-field messages."""
    errors: dict[str, str] = {}
    if not data.jurisdictions:
        errors["jurisdictions"] = gettext("Add at least one state.")
    states = [s for s, _, _ in data.jurisdictions]
    for s in states:
        if s not in US_STATES:
            errors["jurisdictions"] = gettext("%(code)s is not a US state code.", code=s)
    if len(set(states)) != len(states):
        errors["jurisdictions"] = gettext("Each state may appear only once.")
    if data.expiration_date and data.expiration_date < data.effective_date:
        errors["expiration_date"] = gettext("The expiration date must be on or after the effective date.")
    for s, _, d in data.jurisdictions:
        if d and d < data.effective_date:
            errors["jurisdictions"] = gettext("The expiration date for %(code)s is before the effective date.", code=s)
    if data.purchase_type is PurchaseType.SINGLE and not data.po_number.strip():
        errors["po_number"] = gettext("A single-purchase certificate needs the PO or invoice number.")
    if data.reason is ExemptionReason.OTHER and not data.reason_other.strip():
        errors["reason_other"] = gettext("Describe the exemption reason.")
    table = rules.rules_table()
    for s in states:
        if s in table and not table[s].sales_tax:
            errors["jurisdictions"] = gettext("%(state)s levies no statewide sales tax, so no exemption certificate "
                                              "is needed there. Remove %(code)s.", state=table[s].name, code=s)
    if errors:
        raise InvalidData(errors)


def current_checks(cert: ExemptionCertificate, table: dict | None = None) -> list[dict]:
    """The state rules' verdicts on the certificate as it reads now (computed, not stored)."""
    return rules.run_checks(
        reason=str(cert.reason), form_type=str(cert.form_type), effective_date=cert.effective_date,
        expiration_date=cert.expiration_date, table=table if table is not None else rules.rules_table(),
        jurisdictions=[(j.state, j.state_id_number, j.expiration_date) for j in cert.jurisdictions])


def apply_rules(cert: ExemptionCertificate, *, now: datetime, actor: User | None = None,
                actor_label: str | None = None) -> list[dict]:
    """Run the state rules on the certificate as it now reads: store the verdicts, fill in the expiry a
    state's rule gives where nothing is printed, and write the summary into the certificate's timeline."""
    table = rules.rules_table()
    for j in cert.jurisdictions:
        rule = table.get(j.state)
        j.rule_expiration = (rules.computed_expiration(rule, str(cert.reason), cert.effective_date)
                             if rule and not (j.expiration_date or cert.expiration_date) else None)
    cert.checks = current_checks(cert, table)
    db.session.flush()
    record(CERTIFICATE_SUBJECT, cert.id, "checked", actor=actor, actor_label=actor_label,
           customer_id=cert.customer_id, now=now, message=rules.summary(cert.checks))
    return cert.checks


def _require_override_note(checks: list[dict], notes: str) -> None:
    """Approving past a failed check needs the reviewer's reason, which is kept in the timeline."""
    failed = [c for c in checks if c["result"] == rules.FAIL]
    if failed and not (notes or "").strip():
        failed = " ".join(c["evidence"] for c in failed)
        raise InvalidData({"notes": f"A state rule check failed ({failed}) Add a note saying why you approve anyway."})


def _apply(cert: ExemptionCertificate, data: CertificateData) -> None:
    cert.reason = data.reason
    cert.reason_other = data.reason_other.strip() if data.reason is ExemptionReason.OTHER else ""
    cert.form_type = data.form_type
    cert.purchase_type = data.purchase_type
    cert.po_number = data.po_number.strip() if data.purchase_type is PurchaseType.SINGLE else ""
    cert.tax_id_number = data.tax_id_number.strip()
    cert.effective_date = data.effective_date
    cert.expiration_date = data.expiration_date
    cert.purchaser_name = data.purchaser_name.strip()
    cert.purchaser_address = data.purchaser_address.strip()
    cert.signer_name = data.signer_name.strip()
    cert.signer_title = data.signer_title.strip()
    cert.signed_on = data.signed_on
    existing = {j.state: j for j in cert.jurisdictions}
    wanted = {s for s, _, _ in data.jurisdictions}
    for state, j in existing.items():
        if state not in wanted:
            cert.jurisdictions.remove(j)
    for state, number, expires in data.jurisdictions:
        j = existing.get(state)
        if j is None:
            cert.jurisdictions.append(CertificateJurisdiction(state=state, state_id_number=number.strip(),
                                                              expiration_date=expires))
        else:
            j.state_id_number = number.strip()
            j.expiration_date = expires


def reviewer_emails() -> list[str]:
    return list(db.session.scalars(
        sa.select(User.email).where(User.role.in_([Role.ADMIN, Role.REVIEWER]), User.is_enabled.is_(True))
        .order_by(User.id)))


def submit_certificate(req: ExemptionRequest, data: CertificateData, upload: CheckedUpload, *,
                       now: datetime) -> ExemptionCertificate:
    """The customer's submission: store the document as uploaded, create the certificate in
    ``pending_review``, complete the request and tell the reviewers."""
    from app.storage import get_store

    if req.status not in LIVE or req.expires_at <= now:
        raise LinkUnavailable()
    check_certificate_data(data)
    key = get_store().save(upload.data)
    cert = ExemptionCertificate(
        customer_id=req.customer_id, request_id=req.id, status=CS.PENDING_REVIEW, submitted_at=now,
        document_key=key, document_filename=upload.filename, document_content_type=upload.content_type,
        document_size=len(upload.data), document_pages=upload.page_count, created_at=now,
    )
    _apply(cert, data)
    db.session.add(cert)
    db.session.flush()
    label = f"{req.customer.name} (via link sent to {req.email})"
    record(CERTIFICATE_SUBJECT, cert.id, "submitted", actor_label=label, customer_id=req.customer_id, now=now,
           message=f"Certificate for {', '.join(cert.states)} submitted with {upload.filename}.")
    apply_rules(cert, now=now, actor_label="state rules")
    transition(req, RS.COMPLETED, actor=None, now=now, message=f"Completed by the customer (certificate #{cert.id}).")
    for address in reviewer_emails():
        queue_email(address, "exemption_submitted", subject=f"Exemption certificate to review: {req.customer.name}",
                    context={"certificate": cert, "customer": req.customer},
                    customer_id=req.customer_id, dedupe_key=f"exemption-submitted:{cert.id}:{address}",
                    locale="en")  # to staff
    return cert


# -- review ----------------------------------------------------------------------------------------------

def _check_version(cert: ExemptionCertificate, expected_version: int | None, reviewer: User | None = None) -> None:
    status = str(cert.status).replace("_", " ")
    yours = reviewer is not None and cert.reviewed_by_id is not None and cert.reviewed_by_id == reviewer.id
    if expected_version is not None and cert.version != expected_version:
        if yours:
            raise ReviewConflict(f"You already reviewed this submission (it is now {status}); nothing else was "
                                 "changed. Reload to see the current state.")
        who = cert.reviewed_by.name if cert.reviewed_by else "someone else"
        raise ReviewConflict(f"This submission was changed by {who} while you were looking at it "
                             f"(it is now {status}). Reload to see the current state.")
    if cert.status is not CS.PENDING_REVIEW:
        if yours:
            raise ReviewConflict(f"You already reviewed this submission: it is {status}; nothing else was changed.")
        who = cert.reviewed_by.name if cert.reviewed_by else "someone else"
        raise ReviewConflict(f"This submission was already reviewed by {who}: it is {status}.")


def _claim(cert: ExemptionCertificate, expected_version: int | None, reviewer: User | None = None) -> None:
    """Win the review before doing it (the lifecycle engine's version check, made early): of two reviewers
    acting at once, exactly one wins; the other is told who changed the submission."""
    try:
        lifecycle.claim(cert, expected_version=expected_version, target=CS.ACTIVE)
    except lifecycle.TransitionConflict as exc:
        _check_version(cert, exc.seen_version, reviewer)
        raise ReviewConflict("This submission was changed by someone else. Reload to see the current state.") from exc


def _notify_customer(cert: ExemptionCertificate, template: str, subject, **extra) -> None:
    req = cert.request
    to = req.email if req else cert.customer.contact_email
    if not to:
        return
    queue_email(to, template, subject=subject, context={"certificate": cert, "customer": cert.customer, **extra},
                customer_id=cert.customer_id)


def approve_certificate(cert: ExemptionCertificate, *, reviewer: User, now: datetime,
                        expected_version: int | None = None, notes: str = "") -> ExemptionCertificate:
    _check_version(cert, expected_version, reviewer)
    _require_override_note(current_checks(cert), notes)
    _claim(cert, expected_version, reviewer)
    apply_rules(cert, now=now, actor_label="state rules")
    cert.reviewed_at = now
    cert.reviewed_by_id = reviewer.id
    cert.review_notes = (notes or "").strip()
    if cert.failed_checks:
        record(CERTIFICATE_SUBJECT, cert.id, "checks_overridden", actor=reviewer, customer_id=cert.customer_id,
               now=now, message=f"Approved past {len(cert.failed_checks)} failed check(s): {cert.review_notes}")
    transition(cert, CS.ACTIVE, actor=reviewer, now=now, action="approved",
               message="Approved" + (f": {cert.review_notes}" if cert.review_notes else "."))
    seller = current_app.config["SELLER_NAME"]
    _notify_customer(cert, "exemption_approved", _l("Your exemption certificate was accepted by %(seller)s",
                                                    seller=seller))
    return cert


def edit_and_approve_certificate(cert: ExemptionCertificate, data: CertificateData, *, reviewer: User,
                                 now: datetime, expected_version: int | None = None) -> ExemptionCertificate:
    _check_version(cert, expected_version, reviewer)
    check_certificate_data(data)
    _claim(cert, expected_version, reviewer)
    before = CertificateData(
        reason=cert.reason, form_type=cert.form_type, purchase_type=cert.purchase_type,
        tax_id_number=cert.tax_id_number, effective_date=cert.effective_date, purchaser_name=cert.purchaser_name,
        purchaser_address=cert.purchaser_address, signer_name=cert.signer_name, signed_on=cert.signed_on,
        jurisdictions=[(j.state, j.state_id_number, j.expiration_date) for j in cert.jurisdictions],
        reason_other=cert.reason_other, po_number=cert.po_number, expiration_date=cert.expiration_date,
        signer_title=cert.signer_title,
    ).as_prefill()
    _apply(cert, data)
    after = data.as_prefill()
    changed = [k.replace("_", " ") for k in after if after[k] != before.get(k)]
    cert.edited_on_review = True
    db.session.flush()
    record(CERTIFICATE_SUBJECT, cert.id, "edited", actor=reviewer, customer_id=cert.customer_id, now=now,
           message="Changed on review: " + (", ".join(changed) if changed else "nothing"))
    apply_rules(cert, now=now, actor_label="state rules")
    _require_override_note(cert.checks, data.notes)
    if cert.failed_checks:
        record(CERTIFICATE_SUBJECT, cert.id, "checks_overridden", actor=reviewer, customer_id=cert.customer_id,
               now=now, message=f"Approved past {len(cert.failed_checks)} failed check(s): {data.notes.strip()}")
    if data.notes.strip():
        record(CERTIFICATE_SUBJECT, cert.id, "note", actor=reviewer, customer_id=cert.customer_id, now=now,
               message=data.notes.strip()[:5000], is_note=True)
    cert.reviewed_at = now
    cert.reviewed_by_id = reviewer.id
    cert.review_notes = data.notes.strip()
    transition(cert, CS.ACTIVE, actor=reviewer, now=now, action="approved", message="Saved changes and approved.")
    seller = current_app.config["SELLER_NAME"]
    _notify_customer(cert, "exemption_approved", _l("Your exemption certificate was accepted by %(seller)s",
                                                    seller=seller))
    return cert


def certificate_prefill(cert: ExemptionCertificate) -> dict:
    return CertificateData(
        reason=cert.reason, form_type=cert.form_type, purchase_type=cert.purchase_type,
        tax_id_number=cert.tax_id_number, effective_date=cert.effective_date, purchaser_name=cert.purchaser_name,
        purchaser_address=cert.purchaser_address, signer_name=cert.signer_name, signed_on=cert.signed_on,
        jurisdictions=[(j.state, j.state_id_number, j.expiration_date) for j in cert.jurisdictions],
        reason_other=cert.reason_other, po_number=cert.po_number, expiration_date=cert.expiration_date,
        signer_title=cert.signer_title,
    ).as_prefill()


def reject_certificate(cert: ExemptionCertificate, *, reviewer: User, now: datetime, notes: str,
                       send_new_link: bool = True, expected_version: int | None = None) -> ExemptionRequest | None:
    """Reject with notes (required). The customer is told why and, unless the reviewer unticked it,
    gets a fresh link whose form is pre-filled with what they sent. Returns that new request."""
    notes = (notes or "").strip()
    if not notes:
        raise InvalidData({"notes": "Tell the customer why the certificate is rejected."})
    _check_version(cert, expected_version, reviewer)
    _claim(cert, expected_version, reviewer)
    cert.reviewed_at = now
    cert.reviewed_by_id = reviewer.id
    cert.review_notes = notes
    transition(cert, CS.REJECTED, actor=reviewer, now=now, action="rejected", message=notes[:5000])
    seller = current_app.config["SELLER_NAME"]
    subject = _l("Your exemption certificate needs changes (%(seller)s)", seller=seller)
    to = cert.request.email if cert.request else cert.customer.contact_email
    if send_new_link and to:
        new_req, _ = send_request(
            cert.customer, to, actor=reviewer, now=now, source="resubmission", prefill=certificate_prefill(cert),
            previous_certificate=cert, email_template="exemption_rejected", subject=subject,
            email_extra={"certificate": cert, "notes": notes},
        )
        return new_req
    _notify_customer(cert, "exemption_rejected", subject, notes=notes, link=None)
    return None


# -- time: expiry, reminders, renewals ---------------------------------------------------------------------

def jurisdiction_expiry(cert: ExemptionCertificate, j: CertificateJurisdiction) -> date | None:
    return j.expires_on


SWEEP_BATCH = 5_000  # rows per statement: well under a second on PostgreSQL and SQLite


def expire_overdue_links(now: datetime, *, batch: int | None = None) -> int:
    """Expire every live link past its time, set-based: per batch one ``UPDATE … RETURNING``, one INSERT
    of the timeline rows and the events (``emit_many``) -- what ``expire_request`` does one link at a time.
    Each batch is committed, and it goes on until nothing is overdue (100,000 links are one sweep, not
    a hundred). The row's version goes up, so a staff edit of the same request at that moment gets a
    conflict, as with ``transition``."""
    from app.events import emit_many
    from app.models import Activity

    batch = batch or SWEEP_BATCH
    table = ExemptionRequest.__table__
    message = "The link expired unused."
    total = 0
    while True:
        db.session.flush()
        overdue = (sa.select(table.c.id).where(table.c.status.in_([s.value for s in LIVE]), table.c.expires_at <= now)
                   .order_by(table.c.id).limit(batch))
        done = db.session.execute(
            sa.update(table)
            .where(table.c.id.in_(overdue.scalar_subquery()), table.c.status.in_([s.value for s in LIVE]))
            .values(status=RS.EXPIRED.value, expired_at=now, version=table.c.version + 1)
            .returning(table.c.id, table.c.customer_id)).all()
        if not done:
            return total
        db.session.execute(sa.insert(Activity.__table__), [
            {"subject_type": REQUEST_SUBJECT, "subject_id": rid, "customer_id": cid, "actor_id": None,
             "actor_label": "system", "action": str(RS.EXPIRED), "message": message, "is_note": False,
             "created_at": now} for rid, cid in done])
        ids = [rid for rid, _ in done]
        for rid in ids:  # a copy this session holds already shows the new status when next read
            if (obj := db.session.identity_map.get(sa.orm.util.identity_key(ExemptionRequest, rid))) is not None:
                db.session.expire(obj)
        if event := EVENT_OF.get((REQUEST_SUBJECT, RS.EXPIRED)):
            reqs = db.session.scalars(sa.select(ExemptionRequest).where(ExemptionRequest.id.in_(ids))
                                      .options(sa.orm.selectinload(ExemptionRequest.certificate))).all()
            emit_many(event, REQUEST_SUBJECT, reqs, now=now)
            for obj in reqs:  # not kept for the next batch (memory; no refresh after the commit)
                db.session.expunge(obj)
        db.session.commit()
        total += len(done)


def due_reminder(req: ExemptionRequest, now: datetime, days_list) -> int | None:
    """Pure: which reminder (days before expiry) is due now, if any. Only the closest one counts,
    so a worker that was down for a week sends one reminder, not a burst."""
    if req.status not in LIVE or req.expires_at <= now:
        return None
    due = [d for d in sorted(days_list) if req.expires_at - timedelta(days=d) <= now]
    if not due:
        return None
    closest = due[0]
    return None if closest in (req.reminders_sent or []) else closest


REMINDER_BATCH = 1_000  # each reminder renders its own e-mail: a batch stays well under a second


def send_due_reminders(now: datetime, *, batch: int | None = None) -> int:
    """Every reminder that is due (:func:`due_reminder`: only the closest one of each link), in batches:
    per window of ``EXEMPTION_REMINDER_DAYS`` one SELECT of the links in it (id order, a page at a time;
    only those whose expiry falls in the window are read), then for the due ones one SELECT of their
    rows, one INSERT of their e-mails (:func:`~app.notify.queue_emails`, dedupe keys as ``remind_request``
    uses, so none is written twice), one UPDATE (reminder bookkeeping, version + 1) and one INSERT of the
    timeline rows; each batch is committed."""
    from app.models import Activity
    from app.notify import queue_emails

    days_list = sorted(set(current_app.config["EXEMPTION_REMINDER_DAYS"] or ()))
    if not days_list:
        return 0
    batch = batch or REMINDER_BATCH
    t = ExemptionRequest.__table__
    live = [s.value for s in LIVE]
    seller = current_app.config["SELLER_NAME"]
    subject = _l("Reminder: %(seller)s still needs your exemption certificate", seller=seller)
    sent, lower = 0, now
    for days in days_list:  # the window where ``days`` is the closest reminder: lower < expires_at <= upper
        upper, after = now + timedelta(days=days), 0
        while True:
            page = db.session.execute(
                sa.select(t.c.id, t.c.reminders_sent).where(t.c.status.in_(live), t.c.expires_at > lower,
                                                            t.c.expires_at <= upper, t.c.id > after)
                .order_by(t.c.id).limit(batch)).all()
            if not page:
                break
            after = page[-1].id
            due = [rid for rid, already in page if days not in (already or [])]
            if not due:
                continue
            reqs = db.session.scalars(sa.select(ExemptionRequest).where(ExemptionRequest.id.in_(due))
                                      .order_by(ExemptionRequest.id)
                                      .options(sa.orm.selectinload(ExemptionRequest.customer))).all()
            queue_emails([
                {"to": req.email, "template": "exemption_reminder", "subject": subject,
                 "context": {"request": req, "customer": req.customer, "days": days_left(req.expires_at, now),
                             "expires_at": req.expires_at, "link": link_placeholder(req)},
                 "customer_id": req.customer_id, "dedupe_key": f"exemption-reminder:{req.id}:{req.link_version}:{days}",
                 "ref": delivery_ref(req)} for req in reqs])
            db.session.execute(
                sa.update(t).where(t.c.id == sa.bindparam("rid"))
                .values(reminders_sent=sa.bindparam("sent"), last_reminded_at=now, version=t.c.version + 1)
                .execution_options(synchronize_session=False),
                [{"rid": req.id, "sent": [*(req.reminders_sent or []), days]} for req in reqs])
            plural = "s" if days != 1 else ""
            db.session.execute(sa.insert(Activity.__table__), [
                {"subject_type": REQUEST_SUBJECT, "subject_id": req.id, "customer_id": req.customer_id,
                 "actor_id": None, "actor_label": "system", "action": "reminded", "is_note": False, "created_at": now,
                 "message": f"Reminder sent to {req.email} ({days} day{plural} before the link expires)."}
                for req in reqs])
            for req in reqs:  # read again when next used: shows the new bookkeeping
                db.session.expire(req)
            db.session.commit()
            sent += len(reqs)
        lower = upper
    return sent


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until ``expires_at``, rounded up (23 hours left is "1 day"), counted on the UTC
    timeline, so a daylight-saving change or a month end never adds or loses a day."""
    seconds = (expires_at - now).total_seconds()
    return max(1, -int(-seconds // 86400))


def remind_request(req: ExemptionRequest, days: int, *, now: datetime) -> None:
    """Remind the customer, with the current link again; the dedupe key makes each reminder of each
    link at-most-once."""
    seller = current_app.config["SELLER_NAME"]
    queue_email(req.email, "exemption_reminder",
                subject=_l("Reminder: %(seller)s still needs your exemption certificate", seller=seller),
                context={"request": req, "customer": req.customer, "days": days_left(req.expires_at, now),
                         "expires_at": req.expires_at, "link": link_placeholder(req)},
                customer_id=req.customer_id, dedupe_key=f"exemption-reminder:{req.id}:{req.link_version}:{days}",
                ref=delivery_ref(req))
    req.reminders_sent = [*(req.reminders_sent or []), days]
    req.last_reminded_at = now
    record(REQUEST_SUBJECT, req.id, "reminded", customer_id=req.customer_id, now=now,
           message=f"Reminder sent to {req.email} ({days} day{'s' if days != 1 else ''} before the link expires).")


def expire_certificate_if_due(cert: ExemptionCertificate, *, today: date, now: datetime) -> bool:
    if cert.status is not CS.ACTIVE:
        return False
    dates = [jurisdiction_expiry(cert, j) for j in cert.jurisdictions]
    if not dates or any(d is None or d >= today for d in dates):
        return False
    transition(cert, CS.EXPIRED, actor=None, now=now, message="Every jurisdiction on the certificate has expired.")
    return True


def _due_certificates(today: date):
    """SQL: active certificates with at least one jurisdiction and none still valid on ``today`` (the
    rule of :func:`expire_certificate_if_due`; a jurisdiction without any expiry never lapses)."""
    t, jt = ExemptionCertificate.__table__, CertificateJurisdiction.__table__
    expires_on = sa.func.coalesce(jt.c.expiration_date, t.c.expiration_date, jt.c.rule_expiration, date.max)
    return (t.c.status == CS.ACTIVE.value, sa.exists().where(jt.c.certificate_id == t.c.id),
            ~sa.exists().where(jt.c.certificate_id == t.c.id, expires_on >= today))


# Each expired certificate's event carries its full API representation (read with its states): about a
# millisecond a certificate on a loaded 2-core machine, so a batch of 1,000 stays near a second.
CERTIFICATE_BATCH = 1_000


def expire_certificates(now: datetime, *, batch: int | None = None) -> int:
    """Expire every active certificate whose every jurisdiction has lapsed, set-based: per batch one
    ``UPDATE … RETURNING``, one INSERT of the timeline rows and the events (``emit_many``) -- what
    ``expire_certificate_if_due`` does one certificate at a time. Each batch is committed, and it goes on
    until none is due. The version goes up, so a reviewer acting on the same certificate gets a conflict."""
    from app.events import emit_many
    from app.models import Activity

    batch, today = batch or CERTIFICATE_BATCH, now.date()
    t = ExemptionCertificate.__table__
    message = "Every jurisdiction on the certificate has expired."
    total, after = 0, 0
    while True:
        db.session.flush()
        # id order, from where the last batch ended: a batch never re-reads the certificates before it
        due = (sa.select(t.c.id).where(*_due_certificates(today), t.c.id > after).order_by(t.c.id).limit(batch))
        done = db.session.execute(
            sa.update(t).where(t.c.id.in_(due.scalar_subquery()), t.c.status == CS.ACTIVE.value)
            .values(status=CS.EXPIRED.value, expired_at=now, version=t.c.version + 1)
            .returning(t.c.id, t.c.customer_id)).all()
        if not done:
            return total
        db.session.execute(sa.insert(Activity.__table__), [
            {"subject_type": CERTIFICATE_SUBJECT, "subject_id": cid, "customer_id": customer_id, "actor_id": None,
             "actor_label": "system", "action": str(CS.EXPIRED), "message": message, "is_note": False,
             "created_at": now} for cid, customer_id in done])
        ids = [cid for cid, _ in done]
        after = max(ids)
        for cid in ids:  # a copy this session holds already shows the new status when next read
            if (obj := db.session.identity_map.get(sa.orm.util.identity_key(ExemptionCertificate, cid))) is not None:
                db.session.expire(obj)
        if event := EVENT_OF.get((CERTIFICATE_SUBJECT, CS.EXPIRED)):
            certs = db.session.scalars(sa.select(ExemptionCertificate).where(ExemptionCertificate.id.in_(ids))
                                       .options(sa.orm.selectinload(ExemptionCertificate.jurisdictions))).all()
            emit_many(event, CERTIFICATE_SUBJECT, certs, now=now)
            del certs  # not kept for the next batch (the session holds them weakly)
        db.session.commit()
        total += len(done)


def renewal_email(cert: ExemptionCertificate) -> str:
    if cert.request and cert.request.email:
        return cert.request.email
    return cert.customer.contact_email


def renewal_due_on(cert: ExemptionCertificate) -> date | None:
    """The day the renewal request goes out: ``EXEMPTION_RENEWAL_DAYS`` (default 45) before the earliest
    jurisdiction expiry, so the customer can answer before any state lapses."""
    earliest = cert.earliest_expiration
    if earliest is None:
        return None
    return earliest - timedelta(days=current_app.config.get("EXEMPTION_RENEWAL_DAYS", 45))


def renew_certificate(cert: ExemptionCertificate, *, now: datetime) -> ExemptionRequest | None:
    """Send a renewal request once, ahead of the certificate's earliest expiration."""
    due = renewal_due_on(cert)
    if cert.status is not CS.ACTIVE or cert.renewal_requested_at or due is None or due > now.date():
        return None
    cert.renewal_requested_at = now
    return _send_renewal(cert, now=now)


def _send_renewal(cert: ExemptionCertificate, *, now: datetime) -> ExemptionRequest | None:
    """The renewal request of a certificate already marked ``renewal_requested_at`` (so never twice),
    or a timeline note when there is no address to send it to."""
    to = renewal_email(cert)
    if not to:
        record(CERTIFICATE_SUBJECT, cert.id, "renewal_skipped", customer_id=cert.customer_id, now=now,
               message="No e-mail address on file for the renewal request.")
        return None
    req, _ = send_request(cert.customer, to, actor=None, now=now, source="renewal", renewal_of=cert,
                          prefill=certificate_prefill(cert),
                          subject=_l("Time to renew your exemption certificate with %(seller)s",
                                     seller=current_app.config["SELLER_NAME"]),
                          email_extra={"renewal_of": cert})
    emit("exemption_certificate.renewal_requested", CERTIFICATE_SUBJECT, cert, now=now)
    record(CERTIFICATE_SUBJECT, cert.id, "renewal_requested", customer_id=cert.customer_id, now=now,
           message=f"Earliest expiration {cert.earliest_expiration:%b %d, %Y} is near: renewal request #{req.id} "
                   f"sent to {to}.")
    return req


RENEWAL_BATCH = 500  # each renewal writes a request, its e-mail and a timeline row: well under a second


def send_renewals(now: datetime, *, batch: int | None = None) -> int:
    """Renewal requests for every active certificate whose earliest expiry is ``EXEMPTION_RENEWAL_DAYS``
    away or nearer (:func:`renewal_due_on`): per batch one ``UPDATE … RETURNING`` claims the due ones
    (``renewal_requested_at``, version + 1: each certificate is claimed once, whatever runs at the same
    time), then each claimed certificate gets its request and e-mail, and the batch is committed; it goes
    on until none is due. Only due certificates are read, not every active one."""
    batch = batch or RENEWAL_BATCH
    horizon = now.date() + timedelta(days=current_app.config.get("EXEMPTION_RENEWAL_DAYS", 45))
    t, jt = ExemptionCertificate.__table__, CertificateJurisdiction.__table__
    state_due = sa.exists().where(
        jt.c.certificate_id == t.c.id,
        sa.func.coalesce(jt.c.expiration_date, t.c.expiration_date, jt.c.rule_expiration) <= horizon)
    own_date_due = sa.and_(~sa.exists().where(jt.c.certificate_id == t.c.id), t.c.expiration_date <= horizon)
    unclaimed = (t.c.status == CS.ACTIVE.value, t.c.renewal_requested_at.is_(None))
    total = 0
    while True:
        db.session.flush()
        due = (sa.select(t.c.id).where(*unclaimed, sa.or_(state_due, own_date_due))
               .order_by(t.c.id).limit(batch))
        ids = db.session.scalars(
            sa.update(t).where(t.c.id.in_(due.scalar_subquery()), *unclaimed)
            .values(renewal_requested_at=now, version=t.c.version + 1).returning(t.c.id)).all()
        if not ids:
            return total
        for cid in ids:  # a copy this session holds shows the claim when next read
            if (obj := db.session.identity_map.get(sa.orm.util.identity_key(ExemptionCertificate, cid))) is not None:
                db.session.expire(obj)
        certs = db.session.scalars(
            sa.select(ExemptionCertificate).where(ExemptionCertificate.id.in_(ids)).order_by(ExemptionCertificate.id)
            .options(sa.orm.selectinload(ExemptionCertificate.jurisdictions),
                     sa.orm.selectinload(ExemptionCertificate.request),
                     sa.orm.selectinload(ExemptionCertificate.customer))).all()
        total += sum(1 for cert in certs if _send_renewal(cert, now=now) is not None)
        db.session.commit()


def is_expiring_soon(cert: ExemptionCertificate, today: date, days: int | None = None) -> bool:
    days = current_app.config["EXPIRING_SOON_DAYS"] if days is None else days
    earliest = cert.earliest_expiration
    return cert.status is CS.ACTIVE and earliest is not None and earliest <= today + timedelta(days=days)


def mark_expiring_soon(now: datetime) -> int:
    """Once per certificate, when its earliest state expiry comes within EXPIRING_SOON_DAYS: a timeline
    entry and the ``exemption_certificate.expiring_soon`` event. Only certificates near their date are read."""
    horizon = now.date() + timedelta(days=current_app.config["EXPIRING_SOON_DAYS"])
    near = (sa.select(CertificateJurisdiction.certificate_id).join(ExemptionCertificate)
            .where(CertificateJurisdiction.expires_on_sql() <= horizon))
    certs = db.session.scalars(sa.select(ExemptionCertificate).where(
        ExemptionCertificate.status == CS.ACTIVE, ExemptionCertificate.expiring_soon_at.is_(None),
        ExemptionCertificate.id.in_(near)).order_by(ExemptionCertificate.id).limit(1000)).all()
    for cert in certs:
        cert.expiring_soon_at = now
        record(CERTIFICATE_SUBJECT, cert.id, "expiring_soon", customer_id=cert.customer_id, now=now,
               message=f"Expiring soon: the earliest state expiry is {cert.earliest_expiration:%b %d, %Y}.")
        emit("exemption_certificate.expiring_soon", CERTIFICATE_SUBJECT, cert, now=now)
    return len(certs)


# -- send to many -----------------------------------------------------------------------------------------

def start_send_run(customer_ids: list[int], *, actor: User | None, now: datetime) -> ExemptionSendRun:
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        raise InvalidData({"customer_ids": "Select at least one customer."})
    run = ExemptionSendRun(customer_ids=ids, total=len(ids), status=SendRunStatus.QUEUED, errors=[],
                           created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(run)
    db.session.flush()
    defer(db.session, "app.exemptions.jobs.send_many", run.id)
    return run


def customers_missing_active(state: str, on: date) -> list[int]:
    covered = (
        sa.select(ExemptionCertificate.customer_id)
        .join(CertificateJurisdiction)
        .where(ExemptionCertificate.status == CS.ACTIVE, CertificateJurisdiction.state == state,
               ExemptionCertificate.effective_date <= on,
               CertificateJurisdiction.expires_on_sql() >= on)
    )
    return list(db.session.scalars(sa.select(Customer.id).where(Customer.id.not_in(covered)).order_by(Customer.name)))


def run_send_step(run: ExemptionSendRun, customer_id: int, *, actor: User | None, now: datetime) -> bool:
    """Send one customer's request of a run; idempotent per (run, customer)."""
    exists = db.session.scalar(sa.select(ExemptionRequest.id).where(
        ExemptionRequest.send_run_id == run.id, ExemptionRequest.customer_id == customer_id))
    if exists:
        return True
    customer = db.session.get(Customer, customer_id)
    if customer is None or not customer.contact_email:
        run.skipped_count += 1
        run.errors = [*run.errors, {"customer_id": customer_id,
                                    "message": "no such customer" if customer is None else "no contact e-mail"}]
        return False
    try:
        send_request(customer, customer.contact_email, actor=actor, now=now, source="bulk", send_run=run)
    except InvalidData as exc:
        run.skipped_count += 1
        run.errors = [*run.errors, {"customer_id": customer_id, "message": str(exc)}]
        return False
    run.sent_count += 1
    return True


# -- lookup ----------------------------------------------------------------------------------------------

def lookup(customer_id: int, state: str, on: date, po: str | None = None) -> list[ExemptionCertificate]:
    """Active certificates of the customer covering ``state`` on ``on``:
    effective date <= on <= that jurisdiction's expiry (:attr:`CertificateJurisdiction.expires_on`).
    A single-purchase certificate counts only when asked about its own PO / invoice number."""
    stmt = (
        sa.select(ExemptionCertificate)
        .join(CertificateJurisdiction)
        .where(ExemptionCertificate.customer_id == customer_id, ExemptionCertificate.status == CS.ACTIVE,
               CertificateJurisdiction.state == state, ExemptionCertificate.effective_date <= on,
               CertificateJurisdiction.expires_on_sql() >= on)
        .order_by(ExemptionCertificate.effective_date.desc(), ExemptionCertificate.id.desc())
    )
    return [c for c in db.session.scalars(stmt).unique() if c.covers_purchase(po)]


# -- free notes ---------------------------------------------------------------------------------------------

def add_note(subject_type: str, subject_id: int, text: str, *, actor: User, customer_id: int | None,
             now: datetime):
    """A staff member's free note on an exemption request, a certificate or a customer, in the same timeline
    as the activities. Refused (nothing stored) when empty or longer than the timeline keeps."""
    from app.activity import add_note as add_timeline_note

    text = (text or "").strip()
    if not text:
        raise InvalidData({"text": "Write the note first."})
    if len(text) > NOTE_MAX:
        raise InvalidData({"text": f"A note holds up to {NOTE_MAX:,} characters; this one has {len(text):,}. "
                                   "Split it into two notes."})
    return add_timeline_note(subject_type, subject_id, text, actor=actor, customer_id=customer_id, now=now)
