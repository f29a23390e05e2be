"""The manual generate path through the pages: attempt automation, edit, submit (the PDF job issues it while
the page polls); uploads; double submits; a failed issue and trying again."""

import hashlib
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


def issue_widget(htmx, req_id):
    """What the self-polling status widget answers (one poll)."""
    return htmx.get(f"/dashboard/queue/{req_id}/issue", target=f"request-{req_id}-issue")


def a_pdf(make) -> bytes:
    from app.insurance.certificate_data import build_certificate_data
    from app.insurance.layout import HolderInfo
    from app.insurance.rendering import render_certificate_pdf
    from app.models.base import utcnow

    c = make.customer(name="Uploaded Insured Co")
    return render_certificate_pdf(build_certificate_data(c, kind="coi", on=utcnow().date(), holder=HolderInfo(
        name="Uploaded Holder", address="9 Oak St", city="Austin", state="TX", zip_code="78701")))


def test_attempt_automation_prefills_then_submit_issues_edited_values(htmx, processor, make, run_jobs, smtp):
    customer = make.customer(name="Juniper Carpentry", contact_email="office@juniper.example.com")
    req = make.queue_request(customer=customer, holder_email="certs@holder.example.com")
    db.session.commit()
    prefill = htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": "1"})
    assert prefill.status_code == 200
    html = prefill.text
    assert f'id="request-{req.id}-review"' in html and f"GL-{customer.id}" in html
    assert 'name="cov.general_liability.limit.each_occurrence"' in html
    assert 'data-status="in_progress"' in html  # attempting automation marks it in progress
    assert "Insurer: A · Alpha Casualty (NAIC 11111) · in force 01/01/2026 – 01/01/2027" in html
    assert ">Attempt automation</button>" not in html  # prefilling again would throw the edits away
    version = db.session.get(CertificateRequest, req.id).version

    bad = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": str(version), "holder_name": "Harbor Holdings LLC",
        "cov.general_liability.limit.each_occurrence": "two million", "send_to_holder": "1"})
    assert bad.status_code == 422 and "must be a whole dollar amount" in bad.text
    assert 'value="Harbor Holdings LLC"' in bad.text and 'value="two million"' in bad.text  # kept what was typed
    assert db.session.get(CertificateRequest, req.id).issue_requested_at is None
    assert run_jobs() == 0  # nothing was queued

    ok = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": str(version), "holder_name": "Harbor Holdings LLC",
        "cov.general_liability.limit.each_occurrence": "$3,000,000",
        "description": "Finish carpentry at 12 Pier Rd.", "send_to_holder": "1"})
    # Submit only stores the reviewed values: the page shows the polling widget, no certificate yet.
    assert ok.status_code == 200 and 'data-status="in_progress"' in ok.text
    assert json.loads(ok.headers["HX-Trigger"])["toast"]["message"].startswith("Submitted: the certificate is being")
    assert "Generating the certificate…" in ok.text and 'hx-trigger="load delay:1s"' in ok.text
    assert "Reject" not in ok.text and "Attempt automation" not in ok.text  # no actions while it is issued
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    polling = issue_widget(htmx, req.id)
    assert 'data-issue="pending"' in polling.text and "load delay:1s" in polling.text
    assert "HX-Trigger" not in polling.headers

    assert run_jobs() >= 1
    done = issue_widget(htmx, req.id)
    assert 'data-issue="issued"' in done.text and "load delay" not in done.text  # polling stops
    trigger = json.loads(done.headers["HX-Trigger"])
    assert trigger["certificate-issued"] and trigger["request-updated"]
    assert trigger["toast"]["message"] == "Certificate issued and e-mailed."
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    assert cert.certificate_number in done.text and "Download PDF" in done.text
    text = pdf_text(cert)
    assert "3,000,000" in text and "Harbor Holdings LLC" in text and "Finish carpentry at 12 Pier Rd." in text
    panel = htmx.get(f"/dashboard/queue/{req.id}", target=f"request-{req.id}-panel")
    assert 'data-status="completed"' in panel.text and cert.certificate_number in panel.text
    to = sorted(db.session.scalars(sa.select(OutboxMessage.to_address)))
    assert to == ["certs@holder.example.com", "office@juniper.example.com"]
    assert len(smtp.to("certs@holder.example.com")) == 1 and len(smtp.to("office@juniper.example.com")) == 1
    download = htmx.get(f"/dashboard/queue/{req.id}/certificates/{cert.id}")
    assert download.data.startswith(b"%PDF") and "attachment" in download.headers["Content-Disposition"]
    actions = db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id)).all()
    assert actions.count("certificate_submitted") == 1 and actions.count("completed_generated") == 1

    # the job again (a retry, or the sweep): nothing more
    from app.queue import defer

    defer(db.session, "app.insurance.jobs.issue_request_certificate", req.id, queue="pdf")
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2


def test_submit_without_holder_when_not_selected(htmx, processor, make, run_jobs):
    customer = make.customer(contact_email="office@solo.example.com")
    req = make.queue_request(customer=customer)
    db.session.commit()
    ok = htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": "1"})
    assert ok.status_code == 200 and "e-mailed to office@solo.example.com as soon" in ok.text
    run_jobs()
    assert list(db.session.scalars(sa.select(OutboxMessage.to_address))) == ["office@solo.example.com"]


def test_submit_without_js_redirects_and_page_shows_progress(client, processor, make, run_jobs):
    req = make.queue_request()
    db.session.commit()
    response = client.post(f"/dashboard/queue/{req.id}/submit", data={"version": "1", "send_to_holder": "1"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/dashboard/queue/{req.id}")
    page = client.get(f"/dashboard/queue/{req.id}").text
    assert "Generating the certificate…" in page and "<html" in page
    assert client.get(f"/dashboard/queue/{req.id}/issue").text.count("<html") == 1  # full page without htmx
    run_jobs()
    page = client.get(f"/dashboard/queue/{req.id}").text
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    assert "Generating" not in page and f"certificate <strong>{cert.certificate_number}</strong> issued" in page


def test_no_automation_explains_upload_and_refuses_submit(client, htmx, processor, make):
    req = make.queue_request(customer=make.customer(automation_enabled=False))
    db.session.commit()
    page = client.get(f"/dashboard/queue/{req.id}").text
    assert "Automation is not enabled for this customer&#39;s program" in page and "disabled" in page
    refused = htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": "1"})
    assert refused.status_code == 422 and "upload the issued certificate" in refused.text
    refused = htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": "1"})
    assert refused.status_code == 422
    fresh = db.session.get(CertificateRequest, req.id)
    assert fresh.issue_requested_at is None and fresh.pending_issue is None


def test_upload_submit_sends_uploaded_pdf(htmx, processor, make, run_jobs, smtp):
    pdf = a_pdf(make)
    customer = make.customer(contact_email="office@upl.example.com")
    req = make.queue_request(customer=customer, holder_email="h@upl.example.com")
    db.session.commit()
    panel = htmx.get(f"/dashboard/queue/{req.id}", target=f"request-{req.id}-panel").text
    assert "with a verification page (number, code, QR code) added at the end, and the file is signed" in panel
    ok = htmx.post(f"/dashboard/queue/{req.id}/upload", content_type="multipart/form-data", data={
        "version": "1", "send_to_holder": "1", "certificate": (io.BytesIO(pdf), "issued cert.pdf")})
    assert ok.status_code == 200 and "Uploaded PDF submitted by Pia Processor" in ok.text
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    run_jobs()
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    sent = get_store().read(cert.document_key)
    # The uploaded pages as they were, then the verification page; the whole file signed.
    uploaded_pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    sent_pages = PdfReader(io.BytesIO(sent)).pages
    assert [page.extract_text() for page in sent_pages[:-1]] == uploaded_pages
    assert cert.certificate_number in sent_pages[-1].extract_text()
    assert sent.startswith(pdf) and cert.data["uploaded_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert sorted(db.session.scalars(sa.select(OutboxMessage.to_address))) == ["h@upl.example.com",
                                                                              "office@upl.example.com"]
    [mail] = smtp.to("h@upl.example.com")
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert part.get_content() == sent
    actions = db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id)).all()
    assert "completed_uploaded" in actions


def test_double_submit_issues_once(app, htmx, processor, make, run_jobs):
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
        assert late.status_code == 409
        assert "Pia Processor already submitted this request: the certificate is being generated" in late.text
        assert "Generating the certificate…" in late.text  # the current state
        # even with the current version (a reloaded page, a crafted POST): still refused while it is issued
        current = db.session.get(CertificateRequest, req.id).version
        again = second.post(f"/dashboard/queue/{req.id}/submit", headers={"HX-Request": "true"},
                            data={"version": str(current), "send_to_holder": "1"})
        assert again.status_code == 409 and "already submitted" in again.text
        cancel = second.post(f"/dashboard/queue/{req.id}/cancel", headers={"HX-Request": "true"},
                             data={"version": str(current)})
        assert cancel.status_code == 409
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED
    late = second.post(f"/dashboard/queue/{req.id}/submit", headers={"HX-Request": "true"},
                       data={"version": "1", "send_to_holder": "1"})
    assert late.status_code == 409 and 'data-status="completed"' in late.text


def test_failed_issue_is_shown_and_can_be_tried_again(htmx, processor, make, run_jobs):
    """The uploaded file vanished before the job ran: staff see why, nothing was sent; Try again works."""
    pdf = a_pdf(make)
    req = make.queue_request()
    db.session.commit()
    htmx.post(f"/dashboard/queue/{req.id}/upload", content_type="multipart/form-data", data={
        "version": "1", "certificate": (io.BytesIO(pdf), "a.pdf")})
    key = db.session.get(CertificateRequest, req.id).pending_issue["document_key"]
    get_store().delete(key)
    run_jobs()
    fresh = db.session.get(CertificateRequest, req.id)
    assert fresh.status is RequestStatus.IN_PROGRESS and fresh.issue_requested_at is None
    done = issue_widget(htmx, req.id)
    assert 'data-issue="failed"' in done.text and "the uploaded file is missing" in done.text
    assert json.loads(done.headers["HX-Trigger"])["toast"]["level"] == "error"
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    page = htmx.get(f"/dashboard/queue/{req.id}", target=f"request-{req.id}-panel").text
    assert "Try again" in page and "Upload cert" in page  # the actions are back

    get_store().save(pdf)
    retry = htmx.post(f"/dashboard/queue/{req.id}/retry-issue", data={"version": str(fresh.version)})
    assert retry.status_code == 200 and "Generating the certificate…" in retry.text
    run_jobs()
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.COMPLETED
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    nothing = htmx.post(f"/dashboard/queue/{req.id}/retry-issue", data={"version": "99"})
    assert nothing.status_code == 409
