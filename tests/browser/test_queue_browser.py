"""In Chromium: a processor opens a request, attempts automation, edits a limit, submits; the page polls while
the PDF job runs and then shows the request completed."""

import io

import sqlalchemy as sa
from pypdf import PdfReader

from app.enums import RequestStatus, Role
from app.extensions import db
from app.models import CertificateRequest, IssuedCertificate, OutboxMessage
from app.storage import get_store
from tests.factories import PASSWORD


def login(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def test_processor_automates_edits_and_submits(page, app, make, run_jobs):
    processor = make.user(Role.PROCESSOR, name="Pia Processor")
    customer = make.customer(name="Quarry Stoneworks", contact_email="office@quarry.example.com")
    req = make.queue_request(customer=customer, holder_name="Lakeside Property Group",
                             instructions="Show a 2,500,000 each occurrence limit")
    db.session.commit()
    login(page, processor)
    page.click("nav >> text=Queue")
    page.wait_for_url("**/dashboard/queue")
    page.click("text=Lakeside Property Group")
    page.wait_for_selector(f"#request-{req.id}-panel[data-status=new]")
    assert "Show a 2,500,000 each occurrence limit" in page.inner_text("main")

    page.click("button:has-text('Attempt automation')")
    review = page.wait_for_selector(f"#request-{req.id}-review")
    limit = page.locator("input[name='cov.general_liability.limit.each_occurrence']")
    assert limit.input_value().replace(",", "").replace("$", "") == "1000000"
    limit.fill("2,500,000")
    page.wait_for_selector("#toasts >> text=Certificate prefilled")
    assert review.is_visible()
    page.click(f"#request-{req.id}-review button:has-text('Submit')")

    # Submit stored the reviewed values; the PDF job has not run, the widget polls while it waits.
    page.wait_for_selector(f"#request-{req.id}-issue[data-issue=pending] >> text=Generating the certificate…")
    page.wait_for_selector("#toasts >> text=Submitted: the certificate is being generated")
    with page.expect_response(lambda r: r.url.endswith(f"/queue/{req.id}/issue")):
        pass  # it really polls
    assert page.locator(f"#request-{req.id}-panel[data-status=in_progress]").count() == 1
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0

    assert run_jobs() >= 1  # the worker runs while the page keeps polling
    page.wait_for_selector(f"#request-{req.id}-panel[data-status=completed]")
    assert "completed" in page.inner_text(f"#request-{req.id}-panel .badge")
    page.wait_for_selector("#toasts >> text=Certificate issued and e-mailed.")
    page.wait_for_selector("#request-timeline >> text=completed generated")
    done = page.wait_for_selector(f"#request-{req.id}-issue[data-issue=issued]")
    assert "Download PDF" in done.inner_text()
    # polling has stopped: no more requests to the status URL
    polls = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/issue") else None)
    page.wait_for_timeout(2500)
    assert polls == []

    db.session.expire_all()
    done = db.session.get(CertificateRequest, req.id)
    assert done.status is RequestStatus.COMPLETED
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)
    assert "2,500,000" in text and "Lakeside Property Group" in text
    recipients = set(db.session.scalars(sa.select(OutboxMessage.to_address)))
    assert {"office@quarry.example.com", "certs@northwind.example.com"} <= recipients


def test_review_form_survives_a_reload(page, app, make):
    processor = make.user(Role.PROCESSOR, name="Pia Processor")
    req = make.queue_request(customer=make.customer(name="Quarry Stoneworks"), holder_name="Lakeside Property Group")
    db.session.commit()
    login(page, processor)
    page.goto(f"/dashboard/queue/{req.id}")
    page.click("button:has-text('Attempt automation')")
    page.wait_for_selector(f"#request-{req.id}-review")
    page.fill(f"#cert-description-{req.id}", "Roofing at 4 Quarry Ln, typed before a reload.")
    page.locator("input[name='cov.general_liability.limit.each_occurrence']").fill("3,000,000")
    page.wait_for_selector(f"#request-{req.id}-draft >> text=Draft saved")  # kept as typed, without a click

    page.reload()
    page.wait_for_selector(f"#request-{req.id}-review")
    assert page.input_value(f"#cert-description-{req.id}") == "Roofing at 4 Quarry Ln, typed before a reload."
    assert page.locator("input[name='cov.general_liability.limit.each_occurrence']").input_value() == "3,000,000"
