"""At phone width (390px) the portal's certificate number and issue date do not run together."""

import sqlalchemy as sa

from app.cli import DEMO_PASSWORD, seed_demo
from app.enums import RequestType
from app.extensions import db
from app.insurance.documents import issue_certificate
from app.insurance.layout import HolderInfo
from app.models import Customer
from app.models.base import utcnow
from tests.factories import tiny_pdf


def _login(page, email):
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _apart(page, scope):
    number = page.locator(f"{scope} .cert-number").first.bounding_box()
    issued = page.locator(f"{scope} td[data-label=Issued] time").first.bounding_box()
    overlaps_x = number["x"] < issued["x"] + issued["width"] and issued["x"] < number["x"] + number["width"]
    overlaps_y = number["y"] < issued["y"] + issued["height"] and issued["y"] < number["y"] + number["height"]
    return not (overlaps_x and overlaps_y), number, issued


def test_certificate_number_and_date_apart_at_390px(page, app):
    seed_demo()
    acme = db.session.scalar(sa.select(Customer).where(Customer.name.like("Acme%")))
    issue_certificate(acme, kind=RequestType.COI, holder=HolderInfo(name="Riverside Mall Leasing LLC"), actor=None,
                      now=utcnow(), uploaded_pdf=tiny_pdf("Certificate of insurance"))
    db.session.commit()
    page.set_viewport_size({"width": 390, "height": 844})
    _login(page, "customer@acme.demo")
    page.goto("/portal/")
    ok, number, issued = _apart(page, "#portal-certificates")
    assert ok and issued["y"] >= number["y"] + number["height"] - 1, (number, issued)
    cell = page.locator("#portal-certificates td[data-label=Issued]").first.inner_text()
    assert cell.startswith("Issued ")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the demo's paid WOS request: its fee and the parts stay inside the card
    fee = page.locator("#portal-requests td[data-label=Fee]:has(.fee-parts)").first
    assert "$25.75" in fee.inner_text() and "$0.75 card fee" in fee.inner_text()
    for box in (fee.bounding_box(), fee.locator(".fee-parts").bounding_box()):
        assert box["x"] + box["width"] <= 380, box
    page.screenshot(path="/tmp/intake-portal-390.png", full_page=True)

    _login(page, "admin@certdesk.demo")
    page.goto(f"/customers/{acme.id}/certificates")
    ok, number, issued = _apart(page, "#customer-certificates")
    assert ok, (number, issued)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path="/tmp/intake-customer-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/customers/{acme.id}/certificates")
    assert "pays by card ending 4242" in page.inner_text("body")
    assert not page.locator("#customer-certificates .issued-label").first.is_visible()
    page.screenshot(path="/tmp/intake-customer-desktop.png", full_page=True)
