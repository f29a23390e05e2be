"""End to end with a real RQ worker, real Redis and a real SMTP server: the automatic path, and the PDF job
that issues what staff submitted."""

import io
import re

import sqlalchemy as sa
from pypdf import PdfReader

from app.enums import RequestStatus, Role
from app.extensions import db
from app.insurance import processing
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage
from app.models.base import utcnow
from app.queue import defer
from app.storage import get_store


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def submit(req):
    defer(db.session, processing.AUTO_JOB, req.id)
    db.session.commit()


def attachment(message):
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(parts) == 1, message
    return parts[0].get_content()


def test_auto_issue_generates_pdf_and_emails_holder_and_customer(app, make, run_jobs, smtp):
    customer = make.customer(name="Orchard Masonry LLC", contact_email="office@orchard.example.com")
    req = make.queue_request(customer=customer, type="coi", holder_name="Riverside Development Corp",
                             holder_email="certs@riverside.example.com")
    submit(req)
    run_jobs()

    req = db.session.get(CertificateRequest, req.id)
    assert req.status is RequestStatus.COMPLETED and not req.needs_manual and req.completed_at is not None
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    assert cert is not None and cert.certificate_number
    from app.storage import get_store

    text = pdf_text(get_store().read(cert.document_key))
    for expected in ("Riverside Development Corp", "Orchard Masonry LLC", f"GL-{customer.id}", f"CA-{customer.id}",
                     f"WC-{customer.id}"):
        assert expected in text, expected

    holder_mail = smtp.to("certs@riverside.example.com")
    customer_mail = smtp.to("office@orchard.example.com")
    assert len(holder_mail) == 1 and len(customer_mail) == 1
    for message in holder_mail + customer_mail:
        assert "Riverside Development Corp" in pdf_text(attachment(message))
    path = db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id,
                                                                   subject_type="certificate_request")).all()
    assert "auto_issued" in path and "sent_to_manual_queue" not in path

    # a retried / duplicated job does nothing: no second certificate, no second e-mail
    submit(req)
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    assert len(smtp.to("certs@riverside.example.com")) == 1


def test_poi_is_auto_issued(app, make, run_jobs, smtp):
    req = make.queue_request(type="poi")
    submit(req)
    run_jobs()
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED


def test_manual_paths_send_nothing_and_record_why(app, make, run_jobs, smtp):
    wos = make.queue_request(type="coi_wos")
    instructions = make.queue_request(instructions="Add the lender as loss payee")
    no_policies = make.queue_request(customer=make.customer(with_policies=False))
    no_automation = make.queue_request(customer=make.customer(automation_enabled=False))
    for req in (wos, instructions, no_policies, no_automation):
        submit(req)
    run_jobs()
    reasons = {}
    for req in (wos, instructions, no_policies, no_automation):
        fresh = db.session.get(CertificateRequest, req.id)
        assert fresh.status is RequestStatus.NEW and fresh.needs_manual
        reasons[req.id] = fresh.manual_reason
        entry = db.session.scalar(sa.select(Activity).filter_by(subject_id=req.id, action="sent_to_manual_queue"))
        assert entry.message.startswith("Manual processing:")
    assert "waiver of subrogation" in reasons[wos.id].lower()
    assert "special instructions" in reasons[instructions.id]
    # No policy on file is a discrepancy found before any prefill is tried (not a failed prefill).
    assert re.fullmatch(r"Discrepancies: No policy is in force on \d\d/\d\d/\d{4}\.", reasons[no_policies.id])
    assert "not enabled" in reasons[no_automation.id]
    assert smtp.messages == []
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0


def test_incomplete_holder_address_goes_to_manual(app, make, run_jobs):
    req = make.queue_request(holder_address="", holder_city="", holder_zip="")
    submit(req)
    run_jobs()
    fresh = db.session.get(CertificateRequest, req.id)
    assert fresh.status is RequestStatus.NEW and fresh.manual_reason


def test_manual_upload_path_delivers_same_way(app, make, run_jobs, smtp):
    """Upload cert -> Submit: the uploaded PDF (its pages as they were, plus the verification page, signed)
    reaches holder and customer."""
    from app.insurance.certificate_data import build_certificate_data
    from app.insurance.layout import HolderInfo
    from app.insurance.rendering import render_certificate_pdf

    staff = make.user(Role.PROCESSOR)
    customer = make.customer(contact_email="office@upload.example.com")
    req = make.queue_request(customer=customer, holder_email="holder@upload.example.com")
    data = build_certificate_data(customer, kind=req.type, holder=HolderInfo.from_request(req), on=utcnow().date())
    pdf = render_certificate_pdf(data)
    processing.submit_uploaded(req, actor=staff, now=utcnow(), data=pdf, filename="issued.pdf",
                               send_to_holder=False, expected_version=req.version)
    db.session.commit()
    run_jobs()
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED
    assert smtp.to("holder@upload.example.com") == []  # not selected
    [mail] = smtp.to("office@upload.example.com")
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    sent = attachment(mail)
    assert sent == get_store().read(cert.document_key) and sent.startswith(pdf)
    assert f"{cert.verification_code[:5]}-{cert.verification_code[5:]}" in PdfReader(io.BytesIO(sent)).pages[
        -1].extract_text()
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_staff_submit_lost_by_redis_is_issued_after_the_sweep(app, make, run_jobs, smtp):
    """Submit committed but its job never reached Redis: the sweep enqueues it; one certificate, one e-mail each."""
    from datetime import timedelta

    staff = make.user(Role.PROCESSOR, name="Pia Processor")
    customer = make.customer(name="Lantern Glassworks", contact_email="office@lantern.example.com")
    req = make.queue_request(customer=customer, holder_name="Bayview Towers LP",
                             holder_email="certs@bayview.example.com")
    db.session.commit()
    limits = {"coverages": {"general_liability": {"limits": {"each_occurrence": 4_000_000}}}}
    processing.submit_generated(req, actor=staff, now=utcnow(), send_to_holder=True, expected_version=req.version,
                                overrides=limits)
    db.session.info.pop("deferred_jobs")  # Redis was down at the commit
    db.session.commit()
    assert run_jobs() == 0
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.IN_PROGRESS

    assert processing.requeue_issue_requests(utcnow()) == 0  # too fresh: the job may still come
    assert processing.requeue_issue_requests(utcnow() + timedelta(minutes=4)) == 1
    db.session.commit()
    processing.requeue_issue_requests(utcnow() + timedelta(minutes=5))  # a second sweep before the worker ran
    db.session.commit()
    assert run_jobs() >= 2

    req = db.session.get(CertificateRequest, req.id)
    assert req.status is RequestStatus.COMPLETED
    [cert] = db.session.scalars(sa.select(IssuedCertificate).filter_by(request_id=req.id)).all()
    from app.storage import get_store

    text = pdf_text(get_store().read(cert.document_key))
    assert "Bayview Towers LP" in text and "4,000,000" in text and "Lantern Glassworks" in text
    for address in ("certs@bayview.example.com", "office@lantern.example.com"):
        [mail] = smtp.to(address)
        assert "Bayview Towers LP" in pdf_text(attachment(mail))
    actions = db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id,
                                                                      subject_type="certificate_request")).all()
    assert actions.count("completed_generated") == 1 and actions.count("certificate_sent") == 1
