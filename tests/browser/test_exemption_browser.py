"""In Chromium: a customer completes a link with an upload, a reviewer approves it, and the
certificate shows as active."""

import re

from playwright.sync_api import expect

from app.enums import Role
from tests.factories import PASSWORD
from tests.paths import EXEMPTION_FORMS

FORMS = EXEMPTION_FORMS
FORM = FORMS / "tx_01-339_resale_cert.pdf"


def test_customer_completes_link_and_reviewer_approves(page, app, make, run_jobs):
    reviewer = make.user(Role.REVIEWER, email="rev@seller.example.com", name="Robin Reviewer")
    customer = make.customer(name="Browser Buyer LLC")
    req, token = make.exemption_request(customer, email="buyer@browser.example.com")

    # The customer, no login.
    page.goto(f"/portal/r/{token}")
    assert "Browser Buyer LLC" in page.inner_text("main")
    page.select_option("select[name=reason]", "resale")
    page.select_option("select[name='jurisdictions-0-state']", "TX")
    page.fill("input[name='jurisdictions-0-state_id_number']", "32011112222")
    page.fill("input[name='jurisdictions-0-expiration_date']", "2028-06-30")
    page.select_option("select[name='jurisdictions-1-state']", "OK")
    page.select_option("select[name=form_type]", "state_specific")
    page.fill("input[name=tax_id_number]", "TX-555")
    page.fill("input[name=effective_date]", "2026-01-01")
    page.fill("input[name=purchaser_name]", "Browser Buyer LLC")
    page.fill("textarea[name=purchaser_address]", "5 Oak Ave\nAustin, TX 78701")
    page.fill("input[name=signer_name]", "Casey Customer")
    page.fill("input[name=signer_title]", "Owner")
    page.fill("input[name=signed_on]", "2026-01-02")
    page.set_input_files("input[name=document]", str(FORM))
    page.click("button:has-text('Submit certificate')")
    page.wait_for_url("**/portal/link-submitted")
    assert "your certificate was received" in page.inner_text("main")

    # The reviewer.
    page.goto("/login")
    page.fill("input[name=email]", reviewer.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.goto("/exemptions/?tab=action")
    assert page.inner_text("[data-tab=action] .count") == "1"
    page.click("#exemption-list a:has-text('Review')")
    page.wait_for_selector("img[alt^='Page 1']")
    assert page.evaluate("document.querySelector(\"img[alt^='Page 1']\").naturalWidth") > 100  # rendered PNG
    assert "TX-555" in page.inner_text("main")
    page.click("button:has-text('Approve')")
    page.wait_for_selector(".review .badge-active")
    assert "Certificate approved" in page.inner_text("#toasts")

    page.goto("/exemptions/?tab=active")
    assert page.inner_text("[data-tab=active] .count") == "1"
    row = page.inner_text("#exemption-list tbody")
    assert "Browser Buyer LLC" in row and "OK, TX" in row and "active" in row


def login(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def test_picking_a_customer_fills_its_contact_email_which_stays_editable(page, app, make):
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import ExemptionRequest

    admin = make.user(Role.ADMIN, email="admin@seller.example.com")
    make.customer(name="Pickme Hardware", contact_email="ap@pickme.example.com")
    make.customer(name="Pickme Lumber", contact_email="ap@lumber.example.com")
    db.session.commit()
    email = page.locator("input[name=email]")
    login(page, admin)
    page.goto("/exemptions/requests/new")
    page.fill("#customer-q", "pickme")
    page.wait_for_selector("#customer-results input[type=radio]")
    assert page.input_value("input[name=email]") == ""
    page.check("#customer-results label:has-text('Pickme Hardware') input")
    expect(email).to_have_value("ap@pickme.example.com")
    page.check("#customer-results label:has-text('Pickme Lumber') input")
    expect(email).to_have_value("ap@lumber.example.com")
    # Still editable; an address the user typed is not overwritten by another pick.
    page.fill("input[name=email]", "tax@lumber.example.com")
    page.check("#customer-results label:has-text('Pickme Hardware') input")
    page.wait_for_timeout(400)
    assert page.input_value("input[name=email]") == "tax@lumber.example.com"
    page.check("#customer-results label:has-text('Pickme Lumber') input")
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/exemptions/requests/\d+$"))
    assert "Request sent to tax@lumber.example.com" in page.inner_text("body")
    db.session.expire_all()
    req = db.session.scalar(sa.select(ExemptionRequest))
    assert req.email == "tax@lumber.example.com" and req.customer.name == "Pickme Lumber"

    # A single match is picked and filled as soon as it appears.
    page.goto("/exemptions/requests/new")
    page.fill("#customer-q", "hardware")
    expect(email).to_have_value("ap@pickme.example.com")
    assert page.is_checked("#customer-results input[type=radio]")


def test_link_form_fits_a_phone_screen(page, app, make):
    customer = make.customer(name="Phone Buyer Co")
    req, token = make.exemption_request(customer)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/portal/r/{token}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    state = page.locator("select[name='jurisdictions-0-state']").bounding_box()
    number = page.locator("input[name='jurisdictions-0-state_id_number']").bounding_box()
    assert state["width"] > 250 and number["width"] > 120  # each row stacks into a readable card
    page.click("button:has-text('Submit certificate')")
    page.wait_for_selector(".error-summary")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert "Add at least one state." in page.inner_text(".error-summary")
