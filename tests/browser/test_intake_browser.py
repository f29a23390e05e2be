"""In Chromium: a customer submits a certificate of insurance with WOS, paid by card."""

import sqlalchemy as sa

from app.cli import DEMO_PASSWORD, seed_demo
from app.extensions import db
from app.models import CertificateRequest, SandboxCharge

NOT_DEMO = ~CertificateRequest.idempotency_key.like("%:demo-%")  # seed-demo adds its own requests


def login_and_fill(page, email):
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/")
    page.click("text=Submit certificate request")
    page.wait_for_url("**/portal/requests/new")
    page.check("input[name=type][value=coi_wos]")
    for name, value in {
        "holder_name": "Riverside Mall LLC", "holder_email": "leasing@riverside.example.com",
        "holder_phone": "512-555-0177", "holder_address": "9 River Rd", "holder_city": "Austin",
        "holder_state": "TX", "holder_zip": "78702", "project_name": "Food court roof",
        "project_location": "9 River Rd, Austin TX", "project_duration": "3 weeks", "contract_details": "PO 4410",
    }.items():
        page.fill(f"[name={name}]", value)
    page.click("button:has-text('Submit request')")


def test_customer_submits_coi_with_wos_by_card_and_sees_confirmation(page, app):
    seed_demo()
    login_and_fill(page, "customer@acme.demo")
    confirmation = page.locator("#request-confirmation")
    confirmation.wait_for()
    assert "received" in confirmation.inner_text() and "charged $25.75" in confirmation.inner_text()
    toast = page.locator(".toast-success")
    toast.first.wait_for()
    assert "Certificate of insurance with WOS" in toast.first.inner_text()
    db.session.expire_all()
    req = db.session.scalar(sa.select(CertificateRequest).where(NOT_DEMO))
    assert req.holder_name == "Riverside Mall LLC" and req.fee_cents == 2500
    assert db.session.scalar(sa.select(sa.func.count(SandboxCharge.id))
                             .where(~SandboxCharge.idempotency_key.like("%:demo-%"))) == 1


def test_declined_card_shows_merchant_payment_failed(page, app):
    seed_demo()
    login_and_fill(page, "customer@copperline.demo")
    error = page.locator("#request-error")
    error.wait_for()
    assert "Merchant payment failed" in error.inner_text()
    assert page.input_value("[name=holder_name]") == "Riverside Mall LLC"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(CertificateRequest.id)).where(NOT_DEMO)) == 0


def test_wos_project_fields_show_only_for_wos_and_the_fee_is_next_to_the_choice(page, app):
    seed_demo()
    page.goto("/login")
    page.fill("input[name=email]", "customer@acme.demo")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/")
    page.goto("/portal/requests/new")
    assert page.is_checked("input[name=type][value=coi]")
    assert not page.is_visible("[name=project_name]") and not page.is_visible("[name=contract_details]")
    wos_label = page.locator("label:has(input[name=type][value=coi_wos])")
    assert "$25.75" in wos_label.inner_text() and "card ending 4242" in wos_label.inner_text()
    page.check("input[name=type][value=coi_wos]")
    for name in ("project_name", "project_location", "project_duration", "contract_details"):
        assert page.is_visible(f"[name={name}]")
    page.check("input[name=type][value=coi]")
    assert not page.is_visible("[name=project_name]")
    # a 422 for a WOS request keeps the choice and so the project fields in view, errors beside them
    page.check("input[name=type][value=coi_wos]")
    page.click("button:has-text('Submit request')")
    page.locator("#project_name-error").wait_for()
    assert page.is_visible("[name=project_name]")
    assert "Project name is required" in page.locator("#request-error").inner_text()



def _login(page, email):
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_intake_pages_fit_a_phone_without_sideways_scrolling(page, app):
    from app.enums import RequestSource
    from app.insurance import intake
    from app.models import Customer
    from app.models.base import utcnow

    seed_demo()
    acme = db.session.scalar(sa.select(Customer).where(Customer.name.like("Acme%")))
    fields = {"holder_name": "Riverside Mall Leasing & Property Management LLC (North Campus)",
              "holder_email": "leasing.department@riverside-mall.example.com", "holder_phone": "5125550177",
              "holder_address": "9 River Rd", "holder_city": "Austin", "holder_state": "TX", "holder_zip": "78702",
              "project_name": "Roof", "project_location": "9 River Rd", "project_duration": "3 weeks",
              "contract_details": "PO 4410"}
    ids = [intake.submit_certificate_request(acme, type=kind, source=RequestSource.API, fields=fields, actor=None,
                                             now=utcnow(), idempotency_key=f"phone-{n}").id
           for n, kind in enumerate(("coi", "coi_wos"))]
    db.session.commit()
    page.set_viewport_size({"width": 390, "height": 800})
    _login(page, "customer@acme.demo")
    urls = ["/portal/", "/portal/requests/new?type=coi_wos", f"/portal/requests/{ids[0]}"]
    for url in urls:
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    assert page.is_visible("text=Riverside Mall Leasing")
    _login(page, "admin@certdesk.demo")
    for url in (f"/customers/{acme.id}/certificates", f"/customers/{acme.id}/certificates/request", "/admin/fees",
                "/admin/fees/report"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
