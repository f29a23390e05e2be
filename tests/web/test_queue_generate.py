"""The manual generate path through the pages: attempt automation, edit, submit; uploads; double submits."""

import io
import json

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.enums import RequestStatus, Role
from app.extensions import db
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage
from app.storage import get_store
from tests.conftest import AuthActions


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR, name="Pia Processor")
    auth.login(user)
    return user


def pdf_text(cert: IssuedCertificate) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)


def a_pdf(make) -> bytes:
    from app.insurance.pdf import HolderInfo, build_certificate_data, render_certificate_pdf
    from app.models.base import utcnow

    c = make.customer(name="Uploaded Insured Co")
    return render_certificate_pdf(build_certificate_data(c, kind="coi", on=utcnow().date(), holder=HolderInfo(
        name="Uploaded Holder", address="9 Oak St", city="Austin", state="TX", zip_code="78701")))


def test_attempt_automation_prefills_then_submit_issues_edited_values(htmx, processor, make):
    customer = make.customer(name="Juniper Carpentry", contact_email="office@juniper.example.com")
    req = make.queue_request(customer=customer, holder_email="certs@holder.example.com")
    db.session.commit()
    prefill = htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": "1"})
    assert prefill.status_code == 200
    html = prefill.text
    assert f'id="request-{req.id}-review"' in html and f"GL-{customer.id}" in html
    assert 'name="cov.general_liability.limit.each_occurrence"' in html
    assert 'data-status="in_progress"' in html  # attempting automation marks it in progress
    version = db.session.get(CertificateRequest, req.id).version

    bad = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": str(version), "holder_name": "Harbor Holdings LLC",
        "cov.general_liability.limit.each_occurrence": "two million", "send_to_holder": "1"})
    assert bad.status_code == 422 and "must be a whole dollar amount" in bad.text
    assert 'value="Harbor Holdings LLC"' in bad.text and 'value="two million"' in bad.text  # kept what was typed
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0

    ok = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": str(version), "holder_name": "Harbor Holdings LLC",
        "cov.general_liability.limit.each_occurrence": "$3,000,000",
        "description": "Finish carpentry at 12 Pier Rd.", "send_to_holder": "1"})
    assert ok.status_code == 200 and 'data-status="completed"' in ok.text
    assert json.loads(ok.headers["HX-Trigger"])["toast"]["message"] == "Certificate issued and e-mailed."
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    text = pdf_text(cert)
    assert "3,000,000" in text and "Harbor Holdings LLC" in text and "Finish carpentry at 12 Pier Rd." in text
    assert cert.certificate_number in ok.text
    to = sorted(db.session.scalars(sa.select(OutboxMessage.to_address)))
    assert to == ["certs@holder.example.com", "office@juniper.example.com"]
    download = htmx.get(f"/dashboard/queue/{req.id}/certificates/{cert.id}")
    assert download.data.startswith(b"%PDF") and "attachment" in download.headers["Content-Disposition"]


def test_submit_without_holder_when_not_selected(htmx, processor, make):
    customer = make.customer(contact_email="office@solo.example.com")
    req = make.queue_request(customer=customer)
    db.session.commit()
    ok = htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": "1"})
    assert ok.status_code == 200
    assert list(db.session.scalars(sa.select(OutboxMessage.to_address))) == ["office@solo.example.com"]


def test_no_automation_explains_upload_and_refuses_submit(client, htmx, processor, make):
    req = make.queue_request(customer=make.customer(automation_enabled=False))
    db.session.commit()
    page = client.get(f"/dashboard/queue/{req.id}").text
    assert "Automation is not enabled for this customer&#39;s program" in page and "disabled" in page
    refused = htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": "1"})
    assert refused.status_code == 422 and "upload the issued certificate" in refused.text
    refused = htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": "1"})
    assert refused.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0


def test_upload_submit_sends_uploaded_pdf(htmx, processor, make):
    pdf = a_pdf(make)
    customer = make.customer(contact_email="office@upl.example.com")
    req = make.queue_request(customer=customer, holder_email="h@upl.example.com")
    db.session.commit()
    ok = htmx.post(f"/dashboard/queue/{req.id}/upload", content_type="multipart/form-data", data={
        "version": "1", "send_to_holder": "1", "certificate": (io.BytesIO(pdf), "issued cert.pdf")})
    assert ok.status_code == 200 and 'data-status="completed"' in ok.text
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    assert get_store().read(cert.document_key) == pdf
    assert sorted(db.session.scalars(sa.select(OutboxMessage.to_address))) == ["h@upl.example.com",
                                                                              "office@upl.example.com"]
    actions = db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id)).all()
    assert "completed_uploaded" in actions


def test_double_submit_issues_once(app, htmx, processor, make):
    """Two staff press Submit on the same request: one certificate, one set of e-mails, one 409."""
    pdf = a_pdf(make)
    req = make.queue_request()
    reviewer = make.user(Role.REVIEWER, name="Rae Reviewer")
    db.session.commit()
    first = htmx.post(f"/dashboard/queue/{req.id}/upload", content_type="multipart/form-data", data={
        "version": "1", "send_to_holder": "1", "certificate": (io.BytesIO(pdf), "a.pdf")})
    assert first.status_code == 200
    second = app.test_client()
    with app.app_context():
        AuthActions(second).login(reviewer.email)
        late = second.post(f"/dashboard/queue/{req.id}/submit", headers={"HX-Request": "true"},
                           data={"version": "1", "send_to_holder": "1"})
    assert late.status_code == 409 and "Someone else changed this request first" in late.text
    assert 'data-status="completed"' in late.text
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED
