"""Model factories for tests (plain functions; every argument has a sensible default)."""

from __future__ import annotations

import itertools
from datetime import date

from app.enums import CoverageLine, CustomerStatus, EndorsementKind, PaymentMethod, Role
from app.extensions import db
from app.models import Customer, Endorsement, Insurer, Policy, Program, User
from app.payments import APPROVE_CARD, sandbox_token

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def program(name: str | None = None, automation_enabled: bool = True, is_peo: bool = False) -> Program:
    p = Program(name=name or f"Program {next(_seq)}", automation_enabled=automation_enabled, is_peo=is_peo)
    db.session.add(p)
    db.session.flush()
    return p


def customer(name: str | None = None, status: CustomerStatus = CustomerStatus.ACTIVE,
             payment_method: PaymentMethod = PaymentMethod.ACH, card: str | None = None,
             automation_enabled: bool = True, with_policies: bool = True, **kw) -> Customer:
    n = next(_seq)
    c = Customer(
        name=name or f"Customer {n} LLC", external_id=kw.pop("external_id", f"C-{n:05d}"), status=status,
        payment_method=payment_method,
        program=kw.pop("program", None) or program(automation_enabled=automation_enabled),
        contact_name="Pat Contact", contact_email=kw.pop("contact_email", f"contact{n}@customer.example.com"),
        contact_phone="+15550100000", address="1 Main St", city="Austin", state="TX", zip_code="78701", **kw,
    )
    if payment_method in (PaymentMethod.CARD, PaymentMethod.AMEX):
        number = card or APPROVE_CARD
        c.card_token = sandbox_token(number)
        c.card_last4 = number[-4:]
    db.session.add(c)
    db.session.flush()
    if with_policies:
        for p in policies(c):
            c.policies.append(p)
        db.session.flush()
    return c


def insurer(name: str = "Alpha Casualty", naic: str | None = "11111") -> Insurer:
    """The insurer with this NAIC number (created the first time it is asked for)."""
    import sqlalchemy as sa

    found = db.session.scalar(sa.select(Insurer).filter_by(naic=naic)) if naic else None
    if found is None:
        found = Insurer(name=name, naic=naic)
        db.session.add(found)
        db.session.flush()
    return found


def policies(c: Customer, start: date = date(2026, 1, 1), end: date = date(2027, 1, 1)) -> list[Policy]:
    """GL, auto and WC (with a blanket waiver of subrogation) from three insurers."""
    alpha, beta, gamma = insurer("Alpha Casualty", "11111"), insurer("Beta Mutual", "22222"), insurer(
        "Gamma Comp Fund", "33333")
    return [
        Policy(line=CoverageLine.GENERAL_LIABILITY, insurer=alpha,
               policy_number=f"GL-{c.id}", effective_date=start, expiry_date=end,
               limits={"each_occurrence": 1_000_000, "general_aggregate": 2_000_000}),
        Policy(line=CoverageLine.AUTOMOBILE, insurer=beta,
               policy_number=f"CA-{c.id}", effective_date=start, expiry_date=end,
               limits={"combined_single_limit": 1_000_000}),
        Policy(line=CoverageLine.WORKERS_COMP, insurer=gamma,
               policy_number=f"WC-{c.id}", effective_date=start, expiry_date=end,
               limits={"el_each_accident": 1_000_000},
               endorsements=[Endorsement(kind=EndorsementKind.WAIVER_OF_SUBROGATION, form_number="WC 00 03 13")]),
    ]


def user(role: Role = Role.ADMIN, email: str | None = None, customer: Customer | None = None,
         password: str = PASSWORD, name: str | None = None) -> User:
    n = next(_seq)
    if role is Role.CUSTOMER and customer is None:
        customer = globals()["customer"]()
    u = User(email=email or f"{role}{n}@example.com", name=name or f"{str(role).title()} {n}", role=role,
             customer_id=customer.id if customer is not None else None)
    u.set_password(password)
    db.session.add(u)
    db.session.commit()
    return u


def queue_request(customer: Customer | None = None, type: str = "coi", status: str = "new", **kw):
    """A certificate request as the intake forms create it (for the staff-queue tests)."""
    from app.enums import RequestSource, RequestStatus, RequestType
    from app.models import CertificateRequest

    c = customer or globals()["customer"]()
    values = dict(
        holder_name="Northwind Builders Inc", holder_email="certs@northwind.example.com", holder_phone="(512) 555-0199",
        holder_address="500 Congress Ave", holder_city="Austin", holder_state="TX", holder_zip="78701",
        description="Roofing work at the holder's sites.", source=RequestSource.PORTAL,
    )
    values.update(kw)
    req = CertificateRequest(customer_id=c.id, type=RequestType(type), status=RequestStatus(status), **values)
    db.session.add(req)
    db.session.flush()
    return req


# -- exemption certificates ------------------------------------------------------------------------

def exemption_request(customer: Customer | None = None, email: str = "buyer@customer.example.com", now=None,
                      actor: User | None = None):
    """A request in ``sent`` (through the service); returns (request, plain token)."""
    from app.exemptions.services import send_request
    from app.models.base import utcnow

    req, token = send_request(customer or globals()["customer"](), email, actor=actor, now=now or utcnow())
    db.session.commit()
    return req, token


def exemption_certificate(customer: Customer | None = None, status=None, states=(("TX", "", None),),
                          effective: date = date(2026, 1, 1), expiration: date | None = None, document: bytes = b"",
                          now=None):
    """A certificate written directly (no link), in ``status`` (default active)."""
    from app.enums import (
        ExemptionCertificateStatus,
        ExemptionFormType,
        ExemptionReason,
        PurchaseType,
    )
    from app.models import CertificateJurisdiction, ExemptionCertificate
    from app.models.base import utcnow
    from app.storage import get_store

    now = now or utcnow()
    c = customer or globals()["customer"]()
    cert = ExemptionCertificate(
        customer_id=c.id, status=status or ExemptionCertificateStatus.ACTIVE, reason=ExemptionReason.RESALE,
        purchase_type=PurchaseType.BLANKET, form_type=ExemptionFormType.UNIFORM_MULTISTATE,
        tax_id_number="12-3456789", effective_date=effective, expiration_date=expiration,
        purchaser_name=c.name, purchaser_address="1 Main St, Austin, TX 78701", signer_name="Pat Buyer",
        signed_on=effective, document_key=get_store().save(document or tiny_pdf()), document_filename="cert.pdf",
        document_content_type="application/pdf", document_pages=1, submitted_at=now, created_at=now,
        jurisdictions=[CertificateJurisdiction(state=s, state_id_number=n, expiration_date=d) for s, n, d in states],
    )
    db.session.add(cert)
    db.session.commit()
    return cert


def tiny_pdf(text: str = "Exemption certificate") -> bytes:
    import io

    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def exemption_form(**overrides) -> dict:
    """A complete, valid POST body for an exemption link form (without the document)."""
    data = {
        "reason": "resale", "reason_other": "", "purchase_type": "blanket", "po_number": "",
        "form_type": "state_specific", "tax_id_number": "TX-12345678", "effective_date": "2026-01-01",
        "expiration_date": "", "purchaser_name": "Acme Buyer Inc", "purchaser_address": "9 Elm St\nDallas, TX 75201",
        "signer_name": "Jo Signer", "signer_title": "Controller", "signed_on": "2026-01-02",
        "jurisdictions-0-state": "TX", "jurisdictions-0-state_id_number": "32000000001",
        "jurisdictions-0-expiration_date": "2027-12-31",
        "jurisdictions-1-state": "NY", "jurisdictions-1-state_id_number": "",
        "jurisdictions-1-expiration_date": "",
    }
    data.update(overrides)
    return data
