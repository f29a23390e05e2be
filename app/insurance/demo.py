"""Demo certificate requests for ``flask seed-demo`` (listed in ``app.cli.SEED_HOOKS`` by create_app).

A few COI / WOS / POI requests of the active demo customers so the staff queue is not empty: new and in-progress
ones (one with special instructions, a WOS paid by card through the sandbox gateway, a WOS billed to an ACH
account), one completed with an issued certificate (rendered by ``documents.issue_certificate``) and one rejected.
Idempotent: each request carries the idempotency key ``<customer id>:demo-<n>``; a second run adds nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from app import activity, lifecycle
from app.enums import AutomationDecision, PaymentStatus, RequestSource, RequestStatus, RequestType
from app.extensions import db
from app.insurance import certificate_data
from app.models import CertificateRequest, Customer, Payment, User

HOLDERS = [
    {"holder_name": "Northgate Property Management LLC", "holder_email": "leasing@northgate.demo",
     "holder_phone": "(512) 555-0141", "holder_address": "1200 Lamar Blvd", "holder_city": "Austin",
     "holder_state": "TX", "holder_zip": "78703"},
    {"holder_name": "City of Round Rock, Public Works", "holder_email": "permits@roundrock-pw.demo",
     "holder_phone": "(512) 555-0172", "holder_address": "221 E Main St", "holder_city": "Round Rock",
     "holder_state": "TX", "holder_zip": "78664"},
    {"holder_name": "Bexar Medical Plaza Partners", "holder_email": "vendors@bexarplaza.demo",
     "holder_phone": "(210) 555-0119", "holder_address": "4500 Medical Dr", "holder_city": "San Antonio",
     "holder_state": "TX", "holder_zip": "78229"},
    {"holder_name": "Lakeway Retail Center LP", "holder_email": "", "holder_phone": "(512) 555-0188",
     "holder_address": "900 Ranch Rd 620 S", "holder_city": "Lakeway", "holder_state": "TX", "holder_zip": "78734"},
]
PROJECT = {"project_name": "Parking garage resurfacing", "project_location": "1200 Lamar Blvd, Austin TX",
           "project_duration": "6 weeks", "contract_details": "Subcontract NG-2026-114, waiver required by section 9"}

# n, customer name prefix, type, holder index, days ago, extra fields, what happens after it came in
DEMO_REQUESTS = [
    (1, "Acme", RequestType.COI_WOS, 0, 0, PROJECT, "new"),
    (2, "Bluebird", RequestType.COI, 1, 0, {"instructions": "Please list the City and its officials as additional "
                                                           "insureds and add 30 days notice of cancellation."}, "new"),
    (3, "Delta", RequestType.COI_WOS, 2, 1, {**PROJECT, "project_location": "4500 Medical Dr, San Antonio TX"},
     "in_progress"),
    (4, "Evergreen", RequestType.POI, 3, 1, {}, "new"),
    (5, "Acme", RequestType.COI, 1, 3, {"description": "Roof repairs at municipal buildings."}, "completed"),
    (6, "Evergreen", RequestType.COI, 0, 4, {}, "rejected"),
]


def _customer(prefix: str) -> Customer | None:
    return db.session.scalar(sa.select(Customer).where(Customer.name.like(f"{prefix}%")).order_by(Customer.id))


def seed_demo_requests(today: date) -> int:
    """Add the demo requests that are missing; returns how many were added."""
    from app.insurance import fees, processing
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.documents import issue_certificate
    from app.insurance.layout import HolderInfo
    from app.payments import ChargeStatus, get_gateway

    processor = db.session.scalar(sa.select(User).where(User.email == "processor@certdesk.demo"))
    reviewer = db.session.scalar(sa.select(User).where(User.email == "reviewer@certdesk.demo"))
    added = 0
    for n, prefix, kind, holder, days_ago, extra, outcome in DEMO_REQUESTS:
        customer = _customer(prefix)
        if customer is None:
            continue
        key = f"{customer.id}:demo-{n}"
        if db.session.scalar(sa.select(CertificateRequest.id).where(CertificateRequest.idempotency_key == key)):
            continue
        now = datetime.combine(today - timedelta(days=days_ago), time(14, 5 + n * 7), tzinfo=UTC)
        fields = {**HOLDERS[holder], **extra}
        fee = fees.get_fees().wos_fee_cents if kind is RequestType.COI_WOS else 0
        ok, reason = certificate_data.should_auto_issue(
            CertificateRequest(type=kind, customer=customer, instructions=fields.get("instructions", "")), [])
        req = CertificateRequest(customer_id=customer.id, type=kind, source=RequestSource.PORTAL, fee_cents=fee,
                                 decision=AutomationDecision.MANUAL, idempotency_key=key, created_at=now,
                                 updated_at=now,
                                 manual_reason=(reason if not ok else "Demo request, left for staff.")[:300],
                                 **fields)
        db.session.add(req)
        db.session.flush()
        activity.record(processing.SUBJECT, req.id, "submitted", customer_id=customer.id, now=now,
                        message=f"{kind.label} for {req.holder_name} submitted via the customer portal (demo).")
        if fee and customer.payment_method.charged_up_front and customer.card_token:
            conv = fees.get_fees().convenience_cents()
            payment = Payment(customer_id=customer.id, request_id=req.id, idempotency_key=f"wos:{key}",
                              status=PaymentStatus.ERROR, fee_cents=fee, convenience_fee_cents=conv,
                              amount_cents=fee + conv, card_last4=customer.card_last4 or "")
            db.session.add(payment)
            result = get_gateway().charge(card_token=customer.card_token, amount_cents=fee + conv,
                                          idempotency_key=payment.idempotency_key,
                                          description=f"WOS certificate fee for {customer.name}")
            payment.gateway_charge_id, payment.message = result.charge_id, result.message
            lifecycle.transition(payment, PaymentStatus.APPROVED if result.status is ChargeStatus.APPROVED
                                 else PaymentStatus.DECLINED, actor=None, now=now)
            activity.record(processing.SUBJECT, req.id, "payment_approved", customer_id=customer.id, now=now,
                            message=f"Charged ${(fee + conv) / 100:.2f} to the card ending {customer.card_last4} "
                                    "(demo sandbox charge).")
        if outcome in ("in_progress", "completed") and processor is not None:
            req.assigned_to = processor
            processing.transition(req, RequestStatus.IN_PROGRESS, actor=processor, now=now + timedelta(minutes=20),
                                  action="marked_in_progress", message=f"{processor.name} is working on it.")
        if outcome == "completed":
            try:
                cert = issue_certificate(customer, kind=kind, holder=HolderInfo.from_request(req), actor=processor,
                                         now=now + timedelta(minutes=40), request=req)
            except CertificateDataError:
                cert = None
            if cert is not None:
                processing.transition(req, RequestStatus.COMPLETED, actor=processor, now=now + timedelta(minutes=40),
                                      action="completed_generated",
                                      message=f"Certificate {cert.certificate_number} generated (demo).")
        if outcome == "rejected":
            req.rejection_reason = "Incomplete address"
            processing.transition(req, RequestStatus.REJECTED, actor=reviewer, now=now + timedelta(hours=1),
                                  action="rejected", message="Incomplete address — suite number missing (demo).")
        added += 1
    db.session.flush()
    return added
