"""In Chromium at desktop and phone widths: the exemptions list stacks into cards on a phone, the link
form's date inputs fit, an active certificate cannot be edited, and toasts get out of the way.
Set EXEMPTION_SHOTS=/some/dir to keep screenshots of every page visited."""

import os
from pathlib import Path

from app.enums import ExemptionCertificateStatus as CS
from app.enums import Role
from app.extensions import db
from tests.browser.test_exemption_browser import login

SHOTS = os.environ.get("EXEMPTION_SHOTS")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def no_sideways_scroll(page, width):
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_exemption_list_stacks_into_cards_on_a_phone(page, app, make):
    admin = make.user(Role.ADMIN, email="admin@seller.example.com")
    for i in range(3):
        c = make.customer(name=f"Long Customer Name Wholesale Supply {i}",
                          contact_email=f"accounts-payable{i}@x.example.com")
        make.exemption_request(c, email=f"accounts-payable{i}@customer-domain.example.com")
        make.exemption_certificate(c, status=CS.ACTIVE, states=(("TX", "", None), ("OK", "", None), ("CA", "", None)))
    db.session.commit()
    login(page, admin)
    for tab in ("pending", "active"):
        page.set_viewport_size(DESKTOP)
        page.goto(f"/exemptions/?tab={tab}")
        shot(page, f"list-{tab}-1280")
        assert page.locator("#exemption-list thead").is_visible()
        page.set_viewport_size(PHONE)
        page.goto(f"/exemptions/?tab={tab}")
        shot(page, f"list-{tab}-390")
        assert no_sideways_scroll(page, 390)
        assert not page.locator("#exemption-list thead").is_visible()
        row = page.locator("#exemption-list tbody tr").first.bounding_box()
        assert row["width"] <= 390 - 8
        assert "Long Customer Name Wholesale Supply" in page.inner_text("#exemption-list tbody tr >> nth=0")
    # The top bar wraps inside the screen.
    nav = page.locator(".topbar").bounding_box()
    assert nav["width"] <= 390
    page.goto("/exemptions/?tab=pending")
    page.click("#exemption-list tbody tr >> nth=0 >> summary")  # the options menu opens inside the screen
    menu = page.locator("#exemption-list .row-menu[open] .menu").bounding_box()
    assert menu["x"] >= 0 and menu["x"] + menu["width"] <= 390
    shot(page, "list-pending-menu-390")


def test_link_form_date_inputs_fit_on_a_phone(page, app, make):
    customer = make.customer(name="Phone Buyer Co")
    req, token = make.exemption_request(customer)
    db.session.commit()
    for size, name in ((PHONE, "390"), (DESKTOP, "1280")):
        page.set_viewport_size(size)
        page.goto(f"/portal/r/{token}")
        shot(page, f"link-{name}")
        assert no_sideways_scroll(page, size["width"])
        date_input = page.locator("input[name='jurisdictions-0-expiration_date']")
        box = date_input.bounding_box()
        # Wide enough for "mm/dd/yyyy" plus the calendar button, and not clipped by its card.
        assert date_input.evaluate("el => el.scrollWidth <= el.clientWidth")
        assert box["width"] >= 150
        cell = page.locator("input[name='jurisdictions-0-expiration_date'] >> xpath=..").bounding_box()
        assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 1


def test_active_certificate_edit_redirects_and_toasts_fade(page, app, make):
    reviewer = make.user(Role.REVIEWER, email="rev@seller.example.com", name="Riley Reviewer")
    active = make.exemption_certificate(status=CS.PENDING_REVIEW)
    pending = make.exemption_certificate(status=CS.PENDING_REVIEW)
    db.session.commit()
    login(page, reviewer)
    page.set_viewport_size(DESKTOP)
    page.goto(f"/exemptions/certificates/{active.id}/edit")
    shot(page, "edit-pending-1280")
    page.goto(f"/exemptions/certificates/{active.id}")
    page.click("button:has-text('Approve')")
    page.wait_for_selector(".review .badge-active")
    assert page.locator("a:has-text('Edit submission')").count() == 0

    page.goto(f"/exemptions/certificates/{active.id}/edit")
    page.wait_for_url(f"**/exemptions/certificates/{active.id}")
    assert "This certificate is already active (reviewed by you" in page.inner_text("#toasts")
    assert page.locator("button:has-text('Save changes and approve')").count() == 0
    shot(page, "edit-active-redirect-1280")

    # Reject the other one; the toast must not sit over the details for good.
    for size, name in ((DESKTOP, "1280"), (PHONE, "390")):
        page.set_viewport_size(size)
        if name == "1280":
            page.goto(f"/exemptions/certificates/{pending.id}")
            page.fill("textarea[name=notes]", "The signature is missing.")
            page.click("button:has-text('Reject')")
            page.wait_for_selector(".review .badge-rejected")
        else:
            page.goto(f"/exemptions/certificates/{pending.id}/edit")
        toast = page.locator("#toasts .toast").first
        toast.wait_for()
        shot(page, f"after-reject-toast-{name}")
        # Not clickable-blocking while shown, and gone within seconds.
        assert toast.evaluate("el => getComputedStyle(el.parentElement).pointerEvents") == "none"
        page.wait_for_function("() => [...document.querySelectorAll('#toasts .toast')]"
                               ".every(t => getComputedStyle(t).visibility === 'hidden' || !t.isConnected)",
                               timeout=9000)
        shot(page, f"after-reject-faded-{name}")
        details = page.locator(".review h2:has-text('Certificate details')").bounding_box()
        assert details and details["width"] > 0


def test_edit_409_page_keeps_the_document_at_the_top_left(page, app, make):
    reviewer = make.user(Role.REVIEWER, email="rev@seller.example.com", name="Riley Reviewer")
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    db.session.commit()
    login(page, reviewer)
    page.set_viewport_size(DESKTOP)
    page.goto(f"/exemptions/certificates/{cert.id}/edit")
    page.fill("input[name=tax_id_number]", "EDITED-1")
    # Someone (here: the same reviewer, in another tab) approves it meanwhile.
    from app.exemptions.services import approve_certificate
    from app.models.base import utcnow

    db.session.expire_all()
    approve_certificate(db.session.get(type(cert), cert.id), reviewer=reviewer, now=utcnow())
    db.session.commit()
    page.click("button:has-text('Save changes and approve')")
    page.wait_for_selector(".alert-error")
    text = page.inner_text(".alert-error")
    assert "already active (reviewed by you" in text and "Riley Reviewer" not in text
    assert page.evaluate("window.scrollY") < 50  # the message is in view
    shot(page, "edit-409-1280")
    doc = page.locator(".edit-layout .document-preview").bounding_box()
    form = page.locator(".edit-layout > section.card:not(.document-preview)").bounding_box()
    assert abs(doc["y"] - form["y"]) < 5  # both columns start at the top
    page.set_viewport_size(PHONE)
    page.reload()
    shot(page, "edit-409-redirect-390")
    assert no_sideways_scroll(page, 390)
