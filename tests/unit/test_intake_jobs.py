"""Resend POI / resend certificate jobs, run by a real RQ worker; read the PDF back."""

import io
from datetime import UTC, datetime

import sqlalchemy as sa

from app.enums import Channel, RequestType
from app.extensions import db
from app.insurance import delivery, intake_jobs
from app.models import Activity, IssuedCertificate, OutboxMessage
from app.storage import get_store

NOW = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)


def test_resend_poi_issues_a_poi_and_emails_it_once(make, run_jobs):
    customer = make.customer(name="Pinecrest Builders")
    token = delivery.resend_poi(customer, email="Lender@Bank.example.com", name="Loan desk", actor=None, now=NOW)
    assert run_jobs() >= 1
    run_jobs()  # the delivery job of the queued e-mail
    cert = db.session.scalar(sa.select(IssuedCertificate))
    assert cert.kind is RequestType.POI and cert.customer_id == customer.id
    messages = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL)).all()
    assert [m.to_address for m in messages] == ["lender@bank.example.com"]
    assert messages[0].attachments[0]["key"] == cert.document_key
    assert "proof of insurance for Pinecrest Builders" in messages[0].body_text
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)
    assert "Pinecrest Builders" in text
    # a retried job finds the e-mail already queued and issues nothing more
    assert intake_jobs.send_poi(customer.id, "lender@bank.example.com", "Loan desk", None, token) == "already sent"
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    actions = [a.action for a in db.session.scalars(sa.select(Activity).order_by(Activity.id))]
    assert actions[0] == "poi_requested" and "poi_sent" in actions


def test_resend_poi_without_policies_records_why(make, run_jobs):
    customer = make.customer(with_policies=False)
    delivery.resend_poi(customer, email="a@example.com", actor=None, now=NOW)
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    failed = db.session.scalar(sa.select(Activity).where(Activity.action == "poi_failed"))
    assert failed is not None and "a@example.com" in failed.message
