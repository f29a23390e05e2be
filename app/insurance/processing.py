"""Processing COI / WOS / POI requests: the staff queue actions and the automatic path.

Plain service functions (explicit ``actor`` and ``now``; no request, no flash). The caller commits.

Conflicts: every staff action takes the ``expected_version`` the user saw on the page. If the
request changed since (somebody else acted), the action raises :class:`RequestConflict` before doing
anything. Two actions racing past that check are caught by the row's version counter
(SQLAlchemy ``version_id_col``): the state change is flushed *first*, so the loser's UPDATE
matches no row, raises ``StaleDataError`` and its whole transaction (pending values, e-mails,
deferred jobs) is rolled back. Nothing is done twice.

Two sub-states have their own tables in ``app.lifecycle``: the automation **decision** (undecided ->
manual | auto, set by :func:`auto_process`) and **issuing** (none -> pending -> issued | failed, failed ->
pending on a retry; the automatic path goes none -> issued).

Issuing is asynchronous: staff *Submit* (generated or uploaded) validates, stores the approved values
in ``pending_issue`` and moves issuing to ``pending`` in one transaction, and defers the PDF job
(``ISSUE_JOB``, queue ``pdf``). The job (:func:`issue_requested`) renders / issues the certificate,
completes the request and queues the e-mails; it does nothing for a request that is no longer being
issued, so a retry or a duplicate is harmless. A sweep step re-enqueues submits a lost job left behind.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from app import activity, lifecycle
from app.enums import (
    OPEN_REQUEST_STATUSES,
    AutomationDecision,
    InvalidTransition,
    IssueState,
    RequestStatus,
    RequestType,
    Role,
)
from app.extensions import db
from app.insurance.certificate_data import should_auto_issue
from app.models import CertificateRequest, IssuedCertificate, RejectionReason, User
from app.models.insurance import DEFAULT_REJECTION_REASONS
from app.notify import queue_email
from app.queue import defer
from app.uploads import PDF, UploadRejected, check_upload

log = logging.getLogger(__name__)

SUBJECT = "certificate_request"
AUTO_JOB = "app.insurance.jobs.auto_process_request"
ISSUE_JOB = "app.insurance.jobs.issue_request_certificate"
# A submit still waiting after this long lost its job (Redis or a worker died): the sweep enqueues it again...
ISSUE_REQUEUE_AFTER = timedelta(minutes=3)
# ...and after this long gives up, so staff see the failure and can try again instead of waiting forever.
ISSUE_GIVE_UP_AFTER = timedelta(hours=1)
OPEN_STATUSES = OPEN_REQUEST_STATUSES  # defined once, in app.enums
MAX_ID = 2**31 - 1  # ids are 32-bit integers: a bigger number typed into a form is simply not found
RELABEL = {RequestType.COI: RequestType.COI_WOS, RequestType.COI_WOS: RequestType.COI}
NO_AUTOMATION = ("Automation is not enabled for this customer's program: "
                 "upload the issued certificate (PDF) instead.")

__all__ = ["ActionRefused", "RequestConflict", "InvalidTransition", "IssueFailed", "StaleDataError", "UploadRejected"]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str | None, limit: int = 2000) -> str:
    """Typed text as stored: control characters (NUL breaks PostgreSQL) dropped, trimmed, capped."""
    return _CONTROL.sub("", text or "").strip()[:limit]


class ActionRefused(Exception):
    """The action cannot be done on this request as it is; the message is safe to show (422)."""


class IssueFailed(Exception):
    """The PDF job cannot issue the submitted certificate (the data or the uploaded file is unusable)."""


class RequestConflict(Exception):
    """Somebody else changed the request since the user loaded it (409)."""

    def __init__(self, req: CertificateRequest, message: str | None = None):
        self.request = req
        super().__init__(message or conflict_message(req))


def issue_pending(req: CertificateRequest) -> bool:
    """Submitted and waiting for the PDF job (the request is being issued)."""
    return req.is_issuing


def issuing_message(req: CertificateRequest) -> str:
    name = (req.pending_issue or {}).get("actor_name") or "Someone"
    return (f"{name} already submitted this request: the certificate is being generated and will be e-mailed. "
            "Nothing was done; the current state is shown.")


def conflict_message(req: CertificateRequest) -> str:
    if issue_pending(req):
        return issuing_message(req)
    who = f" by {req.assigned_to.name}" if req.assigned_to is not None and req.status is not RequestStatus.NEW else ""
    return (f"Someone else changed this request first: it is now {req.status.value.replace('_', ' ')}{who}. "
            "Nothing was done; the current state is shown.")


# -- lifecycle -------------------------------------------------------------------------------------

def transition(req: CertificateRequest, to: RequestStatus | AutomationDecision | IssueState, *,
               actor: User | None, now: datetime, action: str | None = None, message: str = "") -> None:
    """The only place that assigns ``CertificateRequest.status`` and its sub-states ``decision`` and
    ``issuing`` (through the lifecycle engine)."""
    lifecycle.transition(req, to, actor=actor, now=now, action=action, note=message)


def _check_open(req: CertificateRequest, expected_version: int | None) -> None:
    if expected_version is not None and req.version != expected_version:
        raise RequestConflict(req)
    if issue_pending(req):
        raise RequestConflict(req, issuing_message(req))
    if req.status not in OPEN_STATUSES:
        raise RequestConflict(req, f"This request is already {req.status.value.replace('_', ' ')}. Nothing was done.")


def _claim(req: CertificateRequest) -> None:
    """Flush the status change now: the version check in the UPDATE decides who wins a race."""
    db.session.flush()


def get_request(request_id: int, *, for_update: bool = False) -> CertificateRequest | None:
    stmt = sa.select(CertificateRequest).where(CertificateRequest.id == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


# -- staff actions ----------------------------------------------------------------------------------

def mark_in_progress(req: CertificateRequest, *, actor: User, now: datetime,
                     expected_version: int | None = None) -> CertificateRequest:
    _check_open(req, expected_version)
    if req.status is RequestStatus.IN_PROGRESS:
        raise RequestConflict(req, f"{req.assigned_to.name if req.assigned_to else 'Someone'} is already working on "
                            "this request. Nothing was done.")
    req.assigned_to = actor
    transition(req, RequestStatus.IN_PROGRESS, actor=actor, now=now, action="marked_in_progress",
               message=f"{actor.name} is working on it.")
    _claim(req)
    return req


def automation_available(req: CertificateRequest) -> tuple[bool, str]:
    if not req.customer.automation_enabled:
        return False, NO_AUTOMATION
    return True, ""


def _holder(req: CertificateRequest, overrides: dict | None = None):
    from app.insurance.layout import HolderInfo

    holder = HolderInfo.from_request(req)
    edits = {k: str(v).strip() for k, v in ((overrides or {}).get("holder") or {}).items()
             if k in {f.name for f in dataclasses.fields(HolderInfo)} and str(v).strip()}
    return dataclasses.replace(holder, **edits) if edits else holder


def _build_data(req: CertificateRequest, *, now: datetime, overrides: dict | None = None) -> dict:
    from app.insurance.certificate_data import CertificateDataError, build_certificate_data

    try:
        return build_certificate_data(req.customer, kind=req.type, holder=_holder(req, overrides), on=now.date(),
                                      request=req, overrides=overrides or None)
    except CertificateDataError as exc:
        raise ActionRefused(f"The certificate cannot be prefilled: {exc} Upload the issued certificate instead, "
                            "or fix the policies on file.") from exc


def attempt_automation(req: CertificateRequest, *, actor: User, now: datetime,
                       expected_version: int | None = None) -> dict:
    """Prefill the certificate from the policies on file and the request, for staff to review.

    Marks a new request in progress (recording who), so colleagues see somebody is on it.
    """
    _check_open(req, expected_version)
    ok, why = automation_available(req)
    if not ok:
        raise ActionRefused(why)
    data = _build_data(req, now=now)
    if req.status is RequestStatus.NEW:
        req.assigned_to = actor
        transition(req, RequestStatus.IN_PROGRESS, actor=actor, now=now, action="marked_in_progress",
                   message=f"{actor.name} is working on it (attempted automation).")
    activity.record(SUBJECT, req.id, "automation_attempted", actor=actor, customer_id=req.customer_id,
                    message="Certificate prefilled from the policies on file for review.", now=now)
    _claim(req)
    return data


def customer_recipients(req: CertificateRequest) -> list[str]:
    """The customer's addresses: the contact on file, plus the customer user who asked (if any)."""
    out = []
    if req.customer.contact_email:
        out.append(req.customer.contact_email)
    if req.submitted_by is not None and req.submitted_by.role is Role.CUSTOMER and req.submitted_by.email:
        out.append(req.submitted_by.email)
    return list(dict.fromkeys(a.lower() for a in out))


def delivery_recipients(req: CertificateRequest, *, send_to_holder: bool, holder_email: str = "") -> list[str]:
    recipients = []
    email = (holder_email or req.holder_email or "").strip().lower()
    if send_to_holder and email:
        recipients.append(email)
    recipients.extend(customer_recipients(req))
    return list(dict.fromkeys(recipients))


def _complete_and_deliver(req: CertificateRequest, *, actor: User | None, now: datetime, holder,
                          recipients: list[str], action: str, message: str, data: dict | None = None,
                          uploaded_pdf: bytes | None = None, override_note: str = "") -> IssuedCertificate:
    from app.insurance.documents import deliver_certificate, issue_certificate

    transition(req, RequestStatus.COMPLETED, actor=actor, now=now, action=action, message=message)
    transition(req, IssueState.ISSUED, actor=actor, now=now)
    if actor is None:  # the automatic check decided
        transition(req, AutomationDecision.AUTO, actor=None, now=now)
    _claim(req)
    cert = issue_certificate(req.customer, kind=req.type, holder=holder, actor=actor, now=now, request=req,
                             data=data, uploaded_pdf=uploaded_pdf, override_note=override_note)
    if recipients:
        deliver_certificate(cert, recipients=recipients, actor=actor)
    activity.record(SUBJECT, req.id, "certificate_sent", actor=actor, customer_id=req.customer_id, now=now,
                    message=f"Certificate {cert.certificate_number} e-mailed to {', '.join(recipients) or 'nobody'}.")
    return cert


def _request_issue(req: CertificateRequest, *, actor: User, now: datetime, payload: dict, message: str) -> None:
    """Store the approved values and mark the request as being issued; the PDF job runs after the commit."""
    if req.status is RequestStatus.NEW:
        req.assigned_to = actor
        transition(req, RequestStatus.IN_PROGRESS, actor=actor, now=now, action="marked_in_progress",
                   message=f"{actor.name} is working on it (submitted the certificate).")
    req.pending_issue = {**payload, "actor_id": actor.id, "actor_name": actor.name}
    req.issue_error = ""
    transition(req, IssueState.PENDING, actor=actor, now=now, action="certificate_submitted", message=message)
    _claim(req)
    defer(db.session, ISSUE_JOB, req.id, queue="pdf")


def guard_refusal(result, override_note: str) -> str | None:
    """Why staff may not submit past the issue guard (None when they may): a hard block never passes; an
    endorsement or wording block passes only with a note saying why."""
    if result.allows(override_note):
        return None
    if result.hard_blocks:
        return "The issue guard refuses this certificate: " + " ".join(b.message for b in result.hard_blocks)
    return ("The issue guard stops this certificate: " + " ".join(result.reasons)
            + " To issue it anyway, write an override note saying why (it is recorded).")


def submit_generated(req: CertificateRequest, *, actor: User, now: datetime, overrides: dict | None = None,
                     send_to_holder: bool = True, expected_version: int | None = None,
                     override_note: str = "") -> CertificateRequest:
    """Accept the (staff-edited) certificate values; the PDF job generates, issues and e-mails it.

    Everything that can be refused is checked here (automation, the values build into certificate data, the
    issue guard), so the job only renders what staff reviewed. A guard block on an endorsement or on wording
    passes only with ``override_note``; a policy not in force never does.
    """
    from app.insurance.issuing import run_guard

    _check_open(req, expected_version)
    ok, why = automation_available(req)
    if not ok:
        raise ActionRefused(why)
    data = _build_data(req, now=now, overrides=overrides)
    holder = _holder(req, overrides)
    note = clean_text(override_note, 1000)
    result = run_guard(req.customer, data, holder, now.date())
    refusal = guard_refusal(result, note)
    if refusal:
        raise ActionRefused(refusal)
    if result.blocks:
        activity.record(SUBJECT, req.id, "guard_overridden", actor=actor, customer_id=req.customer_id, now=now,
                        message="Issue guard overridden (" + " ".join(result.reasons) + f"). Note: {note}")
    _request_issue(req, actor=actor, now=now, message="Reviewed certificate submitted; generating the PDF.", payload={
        "mode": "generated", "data": data, "holder": dataclasses.asdict(holder),
        "recipients": delivery_recipients(req, send_to_holder=send_to_holder, holder_email=holder.email),
        "override_note": note if result.blocks else "",
    })
    return req


def submit_uploaded(req: CertificateRequest, *, actor: User, now: datetime, data: bytes, filename: str,
                    send_to_holder: bool = True, expected_version: int | None = None) -> CertificateRequest:
    """Accept an already-issued certificate (a PDF, checked by content); the PDF job issues and e-mails it."""
    from app.storage import get_store

    _check_open(req, expected_version)
    checked = check_upload(data, filename, allowed=frozenset({PDF}))
    holder = _holder(req)
    key = get_store().save(checked.data)
    _request_issue(req, actor=actor, now=now, message=f"Uploaded certificate {checked.filename} submitted.", payload={
        "mode": "uploaded", "document_key": key, "filename": checked.filename, "page_count": checked.page_count,
        "holder": dataclasses.asdict(holder),
        "recipients": delivery_recipients(req, send_to_holder=send_to_holder, holder_email=holder.email),
    })
    return req


def retry_issue(req: CertificateRequest, *, actor: User, now: datetime,
                expected_version: int | None = None) -> CertificateRequest:
    """After a failed issue: queue the same submitted values again."""
    _check_open(req, expected_version)
    if not req.pending_issue or req.issuing is not IssueState.FAILED:
        raise ActionRefused("There is no failed certificate to try again: submit the certificate instead.")
    payload = {k: v for k, v in req.pending_issue.items() if k not in ("actor_id", "actor_name")}
    _request_issue(req, actor=actor, now=now, payload=payload, message="Trying the submitted certificate again.")
    return req


def issue_requested(req: CertificateRequest, *, now: datetime) -> str:
    """The PDF job's work: issue the submitted certificate, complete the request, queue the e-mails.

    Idempotent: a request that is no longer being issued (completed, failed, cancelled) is left alone.
    Raises :class:`IssueFailed` when the submitted values cannot be issued (the caller rolls back and
    records it with :func:`record_issue_failure`).
    """
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.layout import HolderInfo
    from app.storage import get_store

    if not issue_pending(req):
        return "nothing to do"
    payload = req.pending_issue or {}
    actor = db.session.get(User, payload["actor_id"]) if payload.get("actor_id") else None
    holder = HolderInfo.from_dict(payload.get("holder") or {"name": req.holder_name})
    recipients = list(payload.get("recipients") or [])
    uploaded = None
    if payload.get("mode") == "uploaded":
        key = payload.get("document_key") or ""
        store = get_store()
        if not key or not store.exists(key):
            raise IssueFailed("the uploaded file is missing from the file store; upload it again.")
        uploaded = store.read(key)
        action = "completed_uploaded"
        message = f"Uploaded certificate {payload.get('filename', '')} ({payload.get('page_count', '?')} page(s))."
    elif payload.get("mode") == "generated" and payload.get("data"):
        action, message = "completed_generated", "Certificate generated from the reviewed values."
    else:
        raise IssueFailed("the submitted values are incomplete; submit the certificate again.")
    from app.insurance.issuing import CertificateBlocked

    try:
        _complete_and_deliver(req, actor=actor, now=now, holder=holder, recipients=recipients, action=action,
                              message=message, data=payload.get("data") if uploaded is None else None,
                              uploaded_pdf=uploaded, override_note=payload.get("override_note") or "")
    except (CertificateDataError, CertificateBlocked) as exc:
        raise IssueFailed(str(exc)) from exc
    return "issued"


def record_issue_failure(req: CertificateRequest, reason: str, *, now: datetime) -> None:
    """The submitted certificate could not be issued: stop waiting, tell staff why (nothing was sent)."""
    req.issue_requested_at = None
    req.issue_error = reason[:500]
    transition(req, IssueState.FAILED, actor=None, now=now, action="issue_failed",
               message=f"The certificate could not be issued: {reason} Nothing was sent.")
    _claim(req)


def requeue_issue_requests(now: datetime) -> int:
    """Re-enqueue submits whose PDF job was lost; give up (visibly) on those stuck for an hour."""
    stuck = db.session.scalars(
        sa.select(CertificateRequest).where(
            CertificateRequest.status.in_(OPEN_STATUSES), CertificateRequest.issuing == IssueState.PENDING,
            CertificateRequest.issue_requested_at < now - ISSUE_REQUEUE_AFTER,
        ).order_by(CertificateRequest.issue_requested_at).limit(500)
    ).all()
    for req in stuck:
        if req.issue_requested_at < now - ISSUE_GIVE_UP_AFTER:
            log.warning("certificate request %s: issuing kept failing for an hour; gave up", req.id)
            record_issue_failure(req, "the certificate job kept failing for an hour (see the worker log).", now=now)
        else:
            defer(db.session, ISSUE_JOB, req.id, queue="pdf")
    return len(stuck)


def relabel(req: CertificateRequest, to_type: RequestType | str, *, actor: User, now: datetime,
            expected_version: int | None = None) -> CertificateRequest:
    """Switch a request between COI and COI with WOS when the customer picked the wrong type."""
    _check_open(req, expected_version)
    try:
        to_type = RequestType(to_type)
    except ValueError as exc:
        raise ActionRefused("Pick a request type to relabel to.") from exc
    if RELABEL.get(req.type) is not to_type:
        raise ActionRefused("Only a certificate of insurance can be relabelled, between COI and COI with WOS.")
    old = req.type
    req.type = to_type
    activity.record(SUBJECT, req.id, "relabelled", actor=actor, customer_id=req.customer_id, now=now,
                    message=f"Relabelled from {old.label} to {to_type.label}.")
    _claim(req)
    return req


REFUND_ATTEMPTS = 3


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def refundable_payment(req: CertificateRequest):
    """The approved card payment of this request that has not been refunded yet (or None)."""
    from app.enums import PaymentStatus

    return next((p for p in req.payments if p.status is PaymentStatus.APPROVED and p.gateway_charge_id
                 and not p.refunded_at and p.amount_cents > 0), None)


def refund_payment(req: CertificateRequest, *, actor: User | None, now: datetime, why: str):
    """Give the card payment back (fee + convenience fee) when the request will not be issued.

    Once: a refunded payment is skipped, and the gateway call uses a key derived from the payment, so a retried
    action (or a retried call after a lost answer) returns the first refund. Raises :class:`ActionRefused` when the
    gateway cannot refund; the caller rolls back, so the request stays open and staff can try again.
    """
    from app.payments import GatewayError, RefundRefused, get_gateway

    payment = refundable_payment(req)
    if payment is None:
        return None
    gateway, result, last_error = get_gateway(), None, ""
    for _attempt in range(REFUND_ATTEMPTS):
        try:
            result = gateway.refund(payment.gateway_charge_id, payment.amount_cents,
                                    f"refund:{payment.idempotency_key}")
            break
        except GatewayError as exc:
            last_error = str(exc)
        except RefundRefused as exc:
            raise ActionRefused(f"The {_money(payment.amount_cents)} card payment could not be refunded: {exc} "
                                "Nothing was done.") from exc
    if result is None:
        raise ActionRefused(f"The {_money(payment.amount_cents)} card payment could not be refunded: the payment "
                            f"service did not answer ({last_error}). Nothing was done; try again.")
    payment.refunded_cents = result.amount_cents
    payment.refund_id = result.refund_id[:100]
    payment.refunded_at = now
    activity.record(SUBJECT, req.id, "payment_refunded", actor=actor, customer_id=req.customer_id, now=now,
                    message=f"Refunded {_money(result.amount_cents)} (WOS fee {_money(payment.fee_cents)} + card "
                            f"convenience fee {_money(payment.convenience_fee_cents)}) to the card ending "
                            f"{payment.card_last4 or '----'} because the request was {why}; refund {result.refund_id}.")
    return payment


def reject(req: CertificateRequest, reason_id: int | str | None, *, actor: User, now: datetime, note: str = "",
           expected_version: int | None = None) -> CertificateRequest:
    """Reject with a reason from the admin list; the customer (only) gets an e-mail with the reason."""
    _check_open(req, expected_version)
    reason = None
    from app.validation import parse_id

    if (number := parse_id(reason_id)) is not None:
        reason = db.session.get(RejectionReason, number)
    if reason is None or not reason.is_active:
        raise ActionRefused("Pick a rejection reason from the list.")
    note = clean_text(note)
    req.rejection_reason = reason.text
    transition(req, RequestStatus.REJECTED, actor=actor, now=now, action="rejected",
               message=reason.text + (f" — {note}" if note else ""))
    _claim(req)  # the state change wins the race first: only the winner refunds
    refunded = refund_payment(req, actor=actor, now=now, why="rejected")
    for address in customer_recipients(req):
        queue_email(address, "coi_rejected", subject=_l("Your certificate request #%(id)s was not issued", id=req.id),
                    context={"req": req, "reason": reason.text, "note": note, "customer": req.customer,
                             "refund": refunded, "refund_amount": _money(refunded.refunded_cents) if refunded else ""},
                    customer_id=req.customer_id, dedupe_key=f"coi-rejected:{req.id}:{address}")
    return req


def cancel_consequences(req: CertificateRequest) -> str:
    """What cancelling does, in words, for the confirmation a person answers before :func:`cancel` runs.

    Stated here, next to :func:`cancel`, so the dialog cannot promise anything the action does not do.
    """
    says = "The customer is e-mailed that the request was cancelled, with your note."
    payment = refundable_payment(req)
    if payment is not None:
        says += f" The {_money(payment.amount_cents)} card payment is refunded."
    return says


def cancel(req: CertificateRequest, *, actor: User, now: datetime, note: str = "",
           expected_version: int | None = None) -> CertificateRequest:
    _check_open(req, expected_version)
    note = clean_text(note)
    transition(req, RequestStatus.CANCELLED, actor=actor, now=now, action="cancelled", message=note)
    _claim(req)
    refunded = refund_payment(req, actor=actor, now=now, why="cancelled")
    for address in customer_recipients(req):
        queue_email(address, "coi_cancelled", subject=_l("Your certificate request #%(id)s was cancelled", id=req.id),
                    context={"req": req, "note": note, "customer": req.customer, "refund": refunded,
                             "refund_amount": _money(refunded.refunded_cents) if refunded else ""},
                    customer_id=req.customer_id, dedupe_key=f"coi-cancelled:{req.id}:{address}")
    return req


def add_note(req: CertificateRequest, text: str, *, actor: User, now: datetime):
    try:
        return activity.add_note(SUBJECT, req.id, clean_text(text, 10_000), actor=actor, customer_id=req.customer_id,
                                 now=now)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from exc


# -- automatic path ----------------------------------------------------------------------------------

def auto_process(req: CertificateRequest, *, now: datetime) -> str:
    """The job's work: issue and deliver without staff, or send to the manual queue with the reason.

    Idempotent: only a ``new`` request whose decision is still ``undecided`` is looked at.
    """
    if req.status is not RequestStatus.NEW or not req.is_undecided:
        return "nothing to do"
    from app.insurance.issuing import run_guard

    discrepancies: list[str] = []
    if req.type is not RequestType.COI_WOS and req.customer.automation_enabled:
        from app.insurance.certificate_data import certificate_discrepancies

        discrepancies = certificate_discrepancies(req.customer, kind=req.type, holder=_holder(req), on=now.date())
    data, blocks = None, []
    if req.customer.automation_enabled or req.type is RequestType.COI_WOS:
        try:
            data = _build_data(req, now=now)
        except ActionRefused as exc:
            if not discrepancies and req.type is not RequestType.COI_WOS:
                discrepancies = [str(exc)]
        if data is not None:
            blocks = run_guard(req.customer, data, _holder(req), now.date()).reasons
    ok, reason = should_auto_issue(req, discrepancies, blocks)
    if not ok:
        req.manual_reason = reason[:300]
        transition(req, AutomationDecision.MANUAL, actor=None, now=now, action="sent_to_manual_queue",
                   message=f"Manual processing: {reason}")
        _claim(req)
        return "manual"
    holder = _holder(req)
    _complete_and_deliver(req, actor=None, now=now, holder=holder, data=data, action="auto_issued",
                          recipients=delivery_recipients(req, send_to_holder=True, holder_email=holder.email),
                          message=f"Issued automatically: {reason}")
    return "issued"


def requeue_undecided(now: datetime) -> int:
    """Re-enqueue the automatic check for new requests nobody decided (Redis or a worker was down)."""
    ids = db.session.scalars(
        sa.select(CertificateRequest.id).where(
            CertificateRequest.status == RequestStatus.NEW,
            CertificateRequest.decision == AutomationDecision.UNDECIDED,
            CertificateRequest.created_at < now - timedelta(minutes=2),
        ).limit(500)
    ).all()
    for request_id in ids:
        defer(db.session, AUTO_JOB, request_id)
    return len(ids)


# -- rejection reasons (admins manage the list) ------------------------------------------------------

def ensure_default_reasons() -> None:
    """Seed the defaults when the table is empty (lazily, and from the demo seed hook). Flushes only."""
    if db.session.scalar(sa.select(sa.func.count(RejectionReason.id))):
        return
    for position, text in enumerate(DEFAULT_REJECTION_REASONS):
        db.session.add(RejectionReason(text=text, position=position, is_active=True))
    db.session.flush()


def seed_rejection_reasons(today: date) -> None:
    ensure_default_reasons()


def rejection_reasons(*, include_inactive: bool = False) -> list[RejectionReason]:
    ensure_default_reasons()
    stmt = sa.select(RejectionReason).order_by(RejectionReason.position, RejectionReason.id)
    if not include_inactive:
        stmt = stmt.where(RejectionReason.is_active.is_(True))
    return list(db.session.scalars(stmt))


def add_reason(text: str) -> RejectionReason:
    text = " ".join(clean_text(text, 10_000).split())
    if not text:
        raise ActionRefused("Type the reason.")
    if len(text) > 200:
        raise ActionRefused("Keep the reason under 200 characters.")
    ensure_default_reasons()
    existing = db.session.scalar(sa.select(RejectionReason).where(sa.func.lower(RejectionReason.text) == text.lower()))
    if existing is not None:
        if existing.is_active:
            raise ActionRefused("That reason is already in the list.")
        existing.is_active = True
        return existing
    position = (db.session.scalar(sa.select(sa.func.max(RejectionReason.position))) or 0) + 1
    reason = RejectionReason(text=text, position=position, is_active=True)
    db.session.add(reason)
    db.session.flush()
    return reason


def set_reason_active(reason: RejectionReason, active: bool) -> RejectionReason:
    reason.is_active = active
    return reason


def move_reason(reason: RejectionReason, direction: str) -> None:
    """Swap with the neighbour above (``up``) or below (``down``); renumbers positions 0..n."""
    reasons = rejection_reasons(include_inactive=True)
    index = next(i for i, r in enumerate(reasons) if r.id == reason.id)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down"):
        raise ActionRefused("Move a reason up or down.")
    if 0 <= other < len(reasons):
        reasons[index], reasons[other] = reasons[other], reasons[index]
    for position, r in enumerate(reasons):
        r.position = position


def _us_date(value) -> str:
    try:
        return date.fromisoformat(str(value)).strftime("%m/%d/%Y")
    except ValueError:
        return str(value or "?")


def review_choices(req: CertificateRequest, data: dict) -> dict:
    """For the review form, per coverage line: the customer's policies staff may print on that row (same
    line; any line on the OTHER row), the one printed now, its marks, and whether an endorsement on it backs
    ADDL INSD / SUBR WVD for this holder (unbacked marks need an override note)."""
    from app.enums import CoverageLine
    from app.insurance.certificate_data import LINE_ORDER, LINE_TITLES
    from app.insurance.guard import _endorsement

    holder_name = (data.get("holder") or {}).get("name") or req.holder_name
    rows = {r["line"]: r for r in data.get("coverages") or []}
    by_id = {p.id: p for p in req.customer.policies}
    out = {}
    for line in LINE_ORDER:
        row = rows.get(line.value) or {}
        options = [(p.id, f"{p.policy_number} · {p.insurer_name} · {p.effective_date:%m/%d/%Y}–{p.expiry_date:%m/%d/%Y}"
                    + ("" if line is not CoverageLine.OTHER else f" · {LINE_TITLES[p.line]}")
                    + (" · cancelled" if getattr(p, "is_cancelled", False) else ""))
                   for p in req.customer.policies if line is CoverageLine.OTHER or p.line is line]
        policy = by_id.get(row.get("policy_id")) if row.get("present") else None
        out[line.value] = {
            "title": LINE_TITLES[line], "options": options, "policy_id": policy.id if policy else None,
            "present": bool(row.get("present")), "addl_insd": bool(row.get("addl_insd")),
            "subr_wvd": bool(row.get("subr_wvd")), "marks": line is not CoverageLine.OTHER,
            "ai_backed": bool(policy and _endorsement(policy, "additional_insured", holder_name)),
            "wos_backed": bool(policy and _endorsement(policy, "waiver_of_subrogation", holder_name)),
        }
    return out


def review_guard(req: CertificateRequest, data: dict):
    """The issue guard's result for the prefilled values, shown on the review form before submitting."""
    from app.insurance.issuing import run_guard
    from app.insurance.layout import HolderInfo
    from app.models.base import utcnow

    holder = HolderInfo.from_dict(data.get("holder") or {}) if data.get("holder") else _holder(req)
    return run_guard(req.customer, data, holder, utcnow().date())


def coverage_rows(data: dict) -> list[dict]:
    """The coverage rows of certificate data (lines with a policy), flattened for the review form."""
    rows = []
    for row in data.get("coverages") or []:
        if not row.get("present", True):
            continue
        insurer = row.get("insurer") or ""
        if insurer and row.get("letter"):
            insurer = f"{row['letter']} · {insurer}" + (f" (NAIC {row['naic']})" if row.get("naic") else "")
        period = ""
        if row.get("effective") or row.get("expiry"):
            period = f"in force {_us_date(row.get('effective'))} – {_us_date(row.get('expiry'))}"
        rows.append({"line": row["line"], "label": row.get("title") or row["line"].replace("_", " ").title(),
                     "policy_number": row.get("policy_number", ""), "insurer": insurer, "period": period,
                     "limits": [(item["key"], item.get("label") or item["key"].replace("_", " ").capitalize(),
                                 item.get("amount")) for item in row.get("limits") or []]})
    return rows
