"""In Chromium: axe-core finds no serious or critical WCAG 2.1 A/AA violation on any main page and state.

Each test walks one face of the product (public pages, staff by role, the customer portal) and checks every
page and state on the way, then fails once, listing every violation found (tests/browser/axe.py).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.cli import DEMO_PASSWORD, seed_demo
from app.enums import ExemptionCertificateStatus, RequestStatus
from app.extensions import db
from app.models import (
    CertificateRequest,
    Customer,
    CustomerHolder,
    ExemptionCertificate,
    ExemptionRequest,
    IssuedCertificate,
    OutboxMessage,
    Policy,
)
from tests.browser.axe import Audit, write_report
from tests.paths import EXEMPTION_FORMS


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    write_report()


@pytest.fixture
def audit(page):
    return Audit(page)


def login(page, email):
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def customer_named(prefix: str) -> Customer:
    return db.session.scalar(sa.select(Customer).where(Customer.name.like(f"{prefix}%")))


def test_public_pages(page, app, make, audit):
    seed_demo()
    page.goto("/login")
    audit.check("login")
    page.fill("input[name=email]", "admin@certdesk.demo")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Wrong e-mail or password.")
    audit.check("login, wrong password")

    _, token = make.exemption_request(customer_named("Acme"))
    page.goto(f"/portal/r/{token}")
    audit.check("link page, empty")
    page.click("button[type=submit]:has-text('Submit')")
    page.wait_for_selector(".error-summary")
    audit.check("link page, with errors")
    form = make.exemption_form()
    for name in ("tax_id_number", "purchaser_name", "purchaser_address", "signer_name", "signer_title"):
        page.fill(f"[name={name}]", form[name])
    page.fill("[name=effective_date]", form["effective_date"])
    page.fill("[name=signed_on]", form["signed_on"])
    page.select_option("[name=reason]", form["reason"])
    page.select_option("[name=form_type]", form["form_type"])
    page.select_option("[name='jurisdictions-0-state']", "TX")
    page.set_input_files("input[name=document]", str(EXEMPTION_FORMS / "tx_01-339_resale_cert.pdf"))
    page.click("button[type=submit]:has-text('Submit')")
    page.wait_for_url("**/portal/link-submitted**")
    audit.check("link page, submitted")
    page.goto("/portal/r/not-a-real-token")
    audit.check("link page, unavailable link")
    page.goto("/no-such-page")
    audit.check("error page (404)", error_page=True)

    page.goto("/verify")
    audit.check("verify, upload form")
    page.set_input_files("#verify-file", str(EXEMPTION_FORMS / "ma_st-4_resale_cert.pdf"))
    page.click("button:has-text('Check the file')")
    page.wait_for_selector("text=not a certificate CertDesk issued")
    audit.check("verify, unknown file")
    code = db.session.scalar(sa.select(IssuedCertificate.verification_code)
                             .where(IssuedCertificate.verification_code.is_not(None)))
    assert code, "seed-demo issues at least one certificate"
    page.goto(f"/verify/{code}")
    audit.check("verify, certificate by code")
    audit.assert_clean()


STAFF = [("admin@certdesk.demo", "admin"), ("reviewer@certdesk.demo", "reviewer"),
         ("processor@certdesk.demo", "processor"), ("advisor@certdesk.demo", "advisor")]


def test_dashboard_and_queue_of_each_staff_role(page, app, audit):
    seed_demo()
    for email, role in STAFF:
        login(page, email)
        page.goto("/dashboard/")
        audit.check(f"dashboard ({role})")
        page.goto("/dashboard/queue")
        audit.check(f"queue ({role})")
    audit.assert_clean()


def test_staff_pages_dialogs_and_states(page, app, make, audit, tmp_path):
    seed_demo()
    acme = customer_named("Acme")
    login(page, "admin@certdesk.demo")

    # the request page, with every action box open, then with the automation review form
    req = db.session.scalar(sa.select(CertificateRequest).where(
        CertificateRequest.status == RequestStatus.NEW).order_by(CertificateRequest.id))
    page.goto(f"/dashboard/queue/{req.id}")
    audit.check("request page")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    audit.check("request page, upload / reject / menus open")
    automate = page.locator("button:has-text('Attempt automation'):not([disabled])")
    if automate.count():
        automate.first.click()
        page.wait_for_selector("form:has(button:has-text('Submit'))")
        audit.check("request page, automation review form")
    page.goto("/dashboard/queue?status=completed")
    audit.check("queue, completed filter")

    # exemptions
    page.goto("/exemptions/")
    audit.check("exemptions list")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    audit.check("exemptions list, row menus open")
    for tab in ("action", "active", "expiring", "pending"):
        page.goto(f"/exemptions/?tab={tab}")
        audit.check(f"exemptions list, tab {tab}")
    pending = db.session.scalar(sa.select(ExemptionCertificate).where(
        ExemptionCertificate.status == ExemptionCertificateStatus.PENDING_REVIEW).order_by(ExemptionCertificate.id))
    page.goto(f"/exemptions/certificates/{pending.id}")
    audit.check("exemption review")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    audit.check("exemption review, boxes open")
    page.goto(f"/exemptions/certificates/{pending.id}/edit")
    audit.check("exemption edit")
    page.goto("/exemptions/requests/new")
    audit.check("exemption new request")
    page.click("button[type=submit]:has-text('Send')")
    page.wait_for_load_state("load")
    audit.check("exemption new request, with errors")
    page.goto("/exemptions/send-many")
    audit.check("exemption send to many")
    page.goto(f"/exemptions/customers/{acme.id}")
    audit.check("exemptions of one customer")

    # customers, their tabs, holders, generation
    page.goto("/customers/")
    audit.check("customers list")
    for tab, url in (("detail", f"/customers/{acme.id}"), ("certificates", f"/customers/{acme.id}/certificates"),
                     ("request form", f"/customers/{acme.id}/certificates/request"),
                     ("interests", f"/customers/{acme.id}/interests"),
                     ("sent certificates", f"/customers/{acme.id}/sent-certificates")):
        page.goto(url)
        audit.check(f"customer {tab}")
    link = db.session.scalar(sa.select(CustomerHolder).filter_by(customer_id=acme.id))
    page.goto(f"/customers/{acme.id}/interests/{link.id}/edit")
    audit.check("customer interest edit")
    page.goto(f"/customers/{acme.id}/interests")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    audit.check("customer interests, add holder open")
    page.click("text=Generate Certificates")
    page.wait_for_selector("#generate-dialog[open]")
    audit.check("generate dialog")
    page.locator("#generate-dialog button[type=submit]", has_text="Generate").click()
    page.wait_for_selector("#generate-dialog [data-status], #generation-result, .progress", timeout=15000)
    audit.check("generate dialog, progress")
    page.goto("/customers/sent-certificates")
    audit.check("all sent certificates")

    page.goto("/customers/holders/import")
    audit.check("holder import")
    csv_file = tmp_path / "holders.csv"
    csv_file.write_text("name,address,city,state,zip,email\nNorth Pier Holdings,1 Pier Rd,Austin,TX,78701,a@b.example\n"
                        "Broken Row,,Austin,QQ,1,\n")
    form = page.locator("form[action$='/holders/import/holders'], form[action$='/holders/import']").first
    form.locator("input[type=file]").set_input_files(str(csv_file))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("section[data-status]")
    audit.check("holder import preview")

    # the customer's own data: record, policies, users, card
    policy = db.session.scalar(sa.select(Policy).filter_by(customer_id=acme.id).order_by(Policy.id))
    for name, url in (("new customer", "/customers/new"), ("customer edit", f"/customers/{acme.id}/edit"),
                      ("customer policies", f"/customers/{acme.id}/policies"),
                      ("policy new", f"/customers/{acme.id}/policies/new"),
                      ("policy edit", f"/customers/{acme.id}/policies/{policy.id}/edit"),
                      ("policy renew", f"/customers/{acme.id}/policies/{policy.id}/renew"),
                      ("customer users", f"/customers/{acme.id}/users"),
                      ("customer card on file", f"/customers/{acme.id}/card")):
        page.goto(url)
        audit.check(name)
    page.goto(f"/customers/{acme.id}/policies")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    audit.check("customer policies, forms open")

    # exemption audit packs, one request's page, metrics, own password
    page.goto("/exemptions/audit-packs")
    audit.check("exemption audit packs")
    request_id = db.session.scalar(sa.select(ExemptionRequest.id).order_by(ExemptionRequest.id))
    page.goto(f"/exemptions/requests/{request_id}")
    audit.check("exemption request page")
    page.goto("/dashboard/metrics")
    audit.check("dashboard metrics")
    page.goto("/account/password")
    audit.check("change password")

    # admin
    for name, url in (("agency", "/admin/agency"), ("fees", "/admin/fees"), ("fee report", "/admin/fees/report"),
                      ("outbox", "/admin/outbox"), ("rejection reasons", "/admin/reasons"), ("users", "/admin/users"),
                      ("exemption rules", "/admin/exemption-rules"), ("exemption rule TX", "/admin/exemption-rules/TX"),
                      ("insurers", "/admin/insurers"), ("programs", "/admin/programs"),
                      ("webhooks", "/admin/webhooks")):
        page.goto(url)
        audit.check(f"admin {name}")
    message = db.session.scalar(sa.select(OutboxMessage).order_by(OutboxMessage.id))
    if message is not None:
        page.goto(f"/admin/outbox/{message.id}")
        audit.check("admin outbox message")
    audit.assert_clean()


def fill_wos_request(page):
    page.check("input[name=type][value=coi_wos]")
    for name, value in {
        "holder_name": "Riverside Mall LLC", "holder_email": "leasing@riverside.example.com",
        "holder_phone": "512-555-0177", "holder_address": "9 River Rd", "holder_city": "Austin",
        "holder_state": "TX", "holder_zip": "78702", "project_name": "Food court roof",
        "project_location": "9 River Rd, Austin TX", "project_duration": "3 weeks", "contract_details": "PO 4410",
    }.items():
        page.fill(f"[name={name}]", value)


def test_customer_portal(page, app, audit):
    seed_demo()
    login(page, "customer@acme.demo")
    page.goto("/portal/")
    audit.check("portal home")
    page.goto("/portal/requests/new")
    audit.check("portal request form")
    page.check("input[name=type][value=coi_wos]")
    audit.check("portal request form, WOS fields")
    page.click("button:has-text('Submit request')")
    page.wait_for_selector("#request-error")
    audit.check("portal request form, with errors")
    fill_wos_request(page)
    page.click("button:has-text('Submit request')")
    page.wait_for_selector("#request-confirmation")
    audit.check("portal request, confirmation")
    detail = page.locator("a[href*='/portal/requests/']").first
    if detail.count():
        page.goto(detail.get_attribute("href"))
        audit.check("portal request detail")

    page.goto("/portal/card")
    audit.check("portal card on file")
    page.goto("/account/password")
    audit.check("portal change password")

    login(page, "customer@copperline.demo")
    page.goto("/portal/requests/new")
    fill_wos_request(page)
    page.click("button:has-text('Submit request')")
    page.wait_for_selector("#request-error")
    assert re.search("Merchant payment failed", page.inner_text("#request-error"))
    audit.check("portal request form, after a declined card")
    audit.assert_clean()


def test_the_audit_fails_on_a_serious_violation(page, app):
    """The check itself can fail: an unlabelled field and pale text on a real page are caught."""
    audit = Audit(page)
    page.goto("/login")
    page.evaluate("""() => {
        const main = document.querySelector('main');
        main.insertAdjacentHTML('beforeend', '<input name="unlabelled"><p id="pale">pale text</p>');
        Object.assign(document.getElementById('pale').style, {color: '#b0b0b0', background: '#fff'});
    }""")
    audit.check("login with a broken field (self-test)")
    assert any("label" in f for f in audit.failures) and any("color-contrast" in f for f in audit.failures)
    with pytest.raises(AssertionError, match="serious/critical"):
        audit.assert_clean()
