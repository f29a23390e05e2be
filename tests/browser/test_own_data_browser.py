"""In Chromium, from an empty database: the first admin sets the instance up through the pages (agency, a
program with automation, insurers, a customer, its GL + WC policies with a blanket waiver), invites a
customer user who sets a password from the e-mail's link, signs in and gets a COI issued automatically that
names the new policy numbers."""

import io
import re

import sqlalchemy as sa
from pypdf import PdfReader

from app.enums import RequestStatus, Role
from app.extensions import db
from app.models import CertificateRequest, Customer, IssuedCertificate, Policy, Program
from tests.browser.axe import Audit
from tests.factories import PASSWORD


def work_off_jobs(run_jobs):
    """The real worker, here. Playwright's sync API keeps its event loop marked as running in this thread,
    and libraries the jobs use may start a loop of their own (asyncio.run), so the mark is lifted while the
    jobs run."""
    import asyncio

    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        run_jobs()
    finally:
        asyncio._set_running_loop(loop)


def submit_and_wait(page, button_text):
    page.click(f"button:has-text('{button_text}')")
    page.wait_for_load_state("load")


def add_policy(page, customer_id, line, insurer_label, number, limits, endorsement=None, audit=None):
    page.goto(f"/customers/{customer_id}/policies/new")
    page.select_option("#policy-line", line)
    page.locator("#limit-" + next(iter(limits))).wait_for()  # htmx brought this line's limits
    if audit:
        audit.check(f"policy form, {line}")
    page.select_option("#policy-insurer", label=insurer_label)
    page.fill("#policy-policy_number", number)
    page.fill("#policy-effective_date", "2026-01-01")
    page.fill("#policy-expiry_date", "2027-01-01")
    for key, amount in limits.items():
        page.fill(f"#limit-{key}", amount)
    if endorsement:
        page.select_option("#e0-kind", endorsement[0])
        page.fill("#e0-form", endorsement[1])
    page.click("button:has-text('Add policy')")
    page.wait_for_url(f"**/customers/{customer_id}/policies")


def test_empty_instance_to_an_automatically_issued_coi(page, app, make, run_jobs, smtp):
    assert db.session.scalar(sa.select(sa.func.count(Customer.id))) == 0
    admin = make.user(Role.ADMIN, email="owner@agency.example.com")  # what `flask create-user` makes

    page.goto("/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto("/dashboard/")
    checklist = page.locator("#first-run")
    assert "Getting started" in checklist.inner_text()
    audit = Audit(page)
    audit.check("dashboard, first-run checklist")

    # Agency details, from the checklist's link.
    page.click("#first-run-agency a")
    page.fill("#agency-name", "Lone Star Risk Partners")
    page.fill("#agency-phone", "512-555-0142")
    submit_and_wait(page, "Save")

    # A program with automation, then two insurers.
    page.goto("/dashboard/")
    page.click("#first-run-program a")
    page.fill("#new-program-name", "Contractors Select")
    page.check("#programs form.card input[name=automation_enabled]")
    page.click("button:has-text('Add program')")
    page.locator("#programs-table input[value='Contractors Select']").wait_for()
    audit.check("programs")
    page.goto("/admin/insurers")
    for name, naic in (("Granite State Casualty Co", "10234"), ("Keystone Workers Comp Fund", "40012")):
        page.fill("#new-insurer-name", name)
        page.fill("#new-insurer-naic", naic)
        page.click("button:has-text('Add insurer')")
        page.locator(f"#insurers-table input[value='{naic}']").wait_for()
    audit.check("insurers")

    # The customer.
    page.goto("/dashboard/")
    page.click("#first-run-customer a")
    audit.check("new customer")
    for key, value in {"external_id": "CRM-1001", "name": "Orchard Masonry LLC", "contact_name": "Dana Orchard",
                       "contact_email": "office@orchard.example.com", "contact_phone": "512-555-0100",
                       "address": "9 Elm St", "city": "Austin", "state": "TX", "zip": "78702"}.items():
        page.fill(f"#customer-{key}", value)
    page.select_option("#customer-program_id", label="Contractors Select (automation)")
    page.click("button:has-text('Create customer')")
    page.wait_for_url(re.compile(r".*/customers/\d+$"))
    customer_id = int(page.url.rsplit("/", 1)[1])
    assert "CRM-1001" in page.inner_text("main")

    # GL and WC policies; the WC one with a blanket waiver of subrogation.
    add_policy(page, customer_id, "general_liability", "Granite State Casualty Co (NAIC 10234)", "GLX-2026-501",
               {"each_occurrence": "1,000,000", "general_aggregate": "2,000,000"}, audit=audit)
    add_policy(page, customer_id, "workers_comp", "Keystone Workers Comp Fund (NAIC 40012)", "WCX-2026-502",
               {"el_each_accident": "1,000,000"}, endorsement=("waiver_of_subrogation", "WC 00 03 13"))
    tab = page.inner_text("#policies")
    assert "GLX-2026-501" in tab and "WCX-2026-502" in tab and "Waiver of subrogation (WC 00 03 13), blanket" in tab
    audit.check("customer policies tab")
    page.goto(f"/customers/{customer_id}/edit")
    audit.check("edit customer and status")
    audit.assert_clean()

    # The customer user: invitation e-mail -> set password.
    page.goto(f"/customers/{customer_id}/users")
    page.fill("input[name=email]", "dana@orchard.example.com")
    page.click("button:has-text('Send invitation')")
    page.locator("text=dana@orchard.example.com").first.wait_for()
    work_off_jobs(run_jobs)  # the real worker delivers the e-mail over SMTP; only then does it carry the link
    body = smtp.to("dana@orchard.example.com")[-1].get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/invitations/\S+", body).group(0)
    page.goto("/dashboard/")
    assert page.locator("#first-run").count() == 0  # agency, program, insurer, customer and policy exist
    page.context.clear_cookies()
    page.goto(link)
    page.fill("input[name=password]", "orchard masonry 2026 password")
    page.fill("input[name=confirm]", "orchard masonry 2026 password")
    page.click("button[type=submit]")
    page.wait_for_url("**/login")

    # The customer signs in and requests a COI; the worker issues it.
    page.fill("input[name=email]", "dana@orchard.example.com")
    page.fill("input[name=password]", "orchard masonry 2026 password")
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/")
    page.goto("/portal/requests/new")
    page.check("input[name=type][value=coi]")
    for name, value in {"holder_name": "Riverside Development Corp", "holder_email": "certs@riverside.example.com",
                        "holder_phone": "512-555-0177", "holder_address": "9 River Rd", "holder_city": "Austin",
                        "holder_state": "TX", "holder_zip": "78702"}.items():
        page.fill(f"[name={name}]", value)
    page.click("button:has-text('Submit request')")
    page.locator("#request-confirmation").wait_for()
    work_off_jobs(run_jobs)

    req = db.session.scalar(sa.select(CertificateRequest).where(CertificateRequest.customer_id == customer_id))
    assert req.status is RequestStatus.COMPLETED and not req.needs_manual
    cert = db.session.scalar(sa.select(IssuedCertificate).where(IssuedCertificate.request_id == req.id))
    from app.storage import get_store

    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)
    for expected in ("GLX-2026-501", "WCX-2026-502", "Lone Star Risk Partners", "Orchard Masonry LLC",
                     "Riverside Development Corp"):
        assert expected in text, expected
    assert db.session.scalar(sa.select(sa.func.count(Policy.id))) == 2
    assert db.session.scalar(sa.select(Program.automation_enabled))
