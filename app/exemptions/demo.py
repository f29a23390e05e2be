"""Demo rows for ``flask seed-demo``: a few requests in different states, one certificate awaiting
review and one active certificate with a generated PDF (listed in app.cli.SEED_HOOKS by create_app)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Customer, ExemptionRequest, User


def demo_pdf(customer_name: str, states: str) -> bytes:
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=letter)
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(72, 720, "Sales and use tax exemption certificate (demo)")
    pdf.setFont("Helvetica", 11)
    lines = [f"Purchaser: {customer_name}", f"Jurisdictions: {states}", "Reason: resale",
             "Type: blanket certificate", "Signed: Demo Signer, Purchasing Manager"]
    for i, line in enumerate(lines):
        pdf.drawString(72, 690 - i * 18, line)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def seed_exemptions(today: date) -> None:
    from app.enums import ExemptionFormType, ExemptionReason, PurchaseType
    from app.exemptions import services
    from app.uploads import PDF, CheckedUpload

    if db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))):
        return
    customers = {c.name.split()[0]: c for c in db.session.scalars(sa.select(Customer))}
    reviewer = db.session.scalar(sa.select(User).filter_by(email="reviewer@certdesk.demo"))
    now = datetime.now(UTC)
    start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)

    def data(name, states):
        return services.CertificateData(
            reason=ExemptionReason.RESALE, form_type=ExemptionFormType.UNIFORM_MULTISTATE,
            purchase_type=PurchaseType.BLANKET, tax_id_number="12-3456789", effective_date=today - timedelta(days=60),
            purchaser_name=name, purchaser_address="100 Main Street\nAustin, TX 78701", signer_name="Demo Signer",
            signer_title="Purchasing Manager", signed_on=today - timedelta(days=60),
            jurisdictions=[(s, f"{s}-0001", today + timedelta(days=d)) for s, d in states],
        )

    def completed(customer, states, when):
        req, _ = services.send_request(customer, customer.contact_email, actor=reviewer, now=when)
        services.open_link(req, now=when + timedelta(hours=1))
        pdf = demo_pdf(customer.name, ", ".join(s for s, _ in states))
        upload = CheckedUpload(data=pdf, content_type=PDF, filename="exemption-certificate.pdf", page_count=1)
        return services.submit_certificate(req, data(customer.name, states), upload, now=when + timedelta(hours=2))

    if "Acme" in customers:
        cert = completed(customers["Acme"], [("TX", 365), ("OK", 20)], start - timedelta(days=10))
        services.approve_certificate(cert, reviewer=reviewer, now=start - timedelta(days=9))
    if "Delta" in customers:
        completed(customers["Delta"], [("TX", 700)], start - timedelta(days=1))
    if "Bluebird" in customers:
        services.send_request(customers["Bluebird"], customers["Bluebird"].contact_email, actor=reviewer,
                              now=now - timedelta(days=2))
    if "Copperline" in customers:
        req, _ = services.send_request(customers["Copperline"], customers["Copperline"].contact_email,
                                       actor=reviewer, now=now - timedelta(days=25))
        services.open_link(req, now=now - timedelta(days=24))
    if "Evergreen" in customers:
        req, _ = services.send_request(customers["Evergreen"], customers["Evergreen"].contact_email,
                                       actor=reviewer, now=now - timedelta(days=40))
        services.expire_request(req, now=now - timedelta(days=10))
    db.session.flush()
