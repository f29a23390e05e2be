"""In Chromium: a customer completes a link with an upload, a reviewer approves it, and the
certificate shows as active."""

from pathlib import Path

from app.enums import Role
from tests.factories import PASSWORD

FORMS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "exemption-forms"
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
