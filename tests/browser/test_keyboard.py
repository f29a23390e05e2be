"""In Chromium, with the keyboard alone (Tab, Shift+Tab, arrows, Space, Enter and typing; no clicks, no
fill()): a customer completes the exemption link form and the portal's COI request; errors move focus to
an error summary whose links lead to the fields; outcomes are announced in the aria-live toast region; a
declined card's "Merchant payment failed" is in view, focused and a toast."""

from __future__ import annotations

import sqlalchemy as sa

from app.cli import DEMO_PASSWORD, seed_demo
from app.enums import ExemptionCertificateStatus
from app.extensions import db
from app.models import CertificateRequest, Customer, CustomerHolder, ExemptionCertificate
from tests.paths import EXEMPTION_FORMS

NOT_DEMO = ~CertificateRequest.idempotency_key.like("%:demo-%")


def focused(page, selector: str) -> bool:
    return page.evaluate("(sel) => !!document.activeElement && document.activeElement.matches(sel)", selector)


def wait_focus(page, selector: str) -> None:
    """The focus lands on `selector` (after a page load or swap, the script that moves it runs a moment later)."""
    page.wait_for_function("(sel) => !!document.activeElement && document.activeElement.matches(sel)", arg=selector,
                           timeout=5000)


def tab_to(page, selector: str, limit: int = 150) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        if focused(page, selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def type_into(page, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def choose(page, selector: str, option_text: str) -> None:
    """A closed <select>: type the start of the option's text (type-ahead), as keyboard users do."""
    tab_to(page, selector)
    page.keyboard.type(option_text)
    label = page.evaluate("(sel) => { const s = document.querySelector(sel); return s.options[s.selectedIndex].text; }",
                          selector)
    assert label.startswith(option_text), (selector, label)


def in_viewport(page, selector: str) -> bool:
    return page.evaluate("""(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        return r.top >= 0 && r.top < window.innerHeight && r.bottom > 0; }""", selector)


def test_link_form_with_the_keyboard_alone(page, app, make):
    seed_demo()
    acme = db.session.scalar(sa.select(Customer).where(Customer.name.like("Acme%")))
    _, token = make.exemption_request(acme)
    page.goto(f"/portal/r/{token}")

    # submitting the empty form: the error summary gets the focus and its links lead to the fields
    tab_to(page, "#exemption-link-form form > .actions > button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    wait_focus(page, ".error-summary")
    assert in_viewport(page, ".error-summary")
    links = page.locator(".error-summary a").evaluate_all("(as) => as.map(a => a.getAttribute('href'))")
    assert "#reason" in links and "#document" in links
    page.keyboard.press("Tab")
    assert focused(page, ".error-summary a[href='#reason']")
    page.keyboard.press("Enter")
    wait_focus(page, "#reason")

    choose(page, "#reason", "Resale")
    choose(page, "select[name='jurisdictions-0-state']", "Texas")
    choose(page, "#form_type", "Uniform")
    type_into(page, "#tax_id_number", "TX-12345678")
    tab_to(page, "#effective_date")
    page.keyboard.type("01012026")
    type_into(page, "#purchaser_name", "Acme Buyer Inc")
    type_into(page, "#purchaser_address", "9 Elm St")
    page.keyboard.press("Enter")  # a new line in the address, not a submit
    page.keyboard.type("Dallas, TX 75201")
    type_into(page, "#signer_name", "Jo Signer")
    tab_to(page, "#signed_on")
    page.keyboard.type("01022026")
    tab_to(page, "#document")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(EXEMPTION_FORMS / "ny_st-120_resale_cert.pdf"))
    tab_to(page, "#exemption-link-form form > .actions > button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/link-submitted**")

    cert = db.session.scalar(sa.select(ExemptionCertificate).where(ExemptionCertificate.customer_id == acme.id)
                             .order_by(ExemptionCertificate.id.desc()))
    assert cert.purchaser_name == "Acme Buyer Inc"
    assert cert.purchaser_address.splitlines() == ["9 Elm St", "Dallas, TX 75201"]  # browsers send CRLF
    assert [j.state for j in cert.jurisdictions] == ["TX"]


def sign_in(page, email):
    page.goto("/login")
    type_into(page, "input[name=email]", email)
    type_into(page, "input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/")


def fill_wos_request(page):
    tab_to(page, "input[name=type]:checked")
    for _ in range(4):
        if focused(page, "input[name=type][value=coi_wos]"):
            break
        page.keyboard.press("ArrowDown")
    assert page.is_checked("input[name=type][value=coi_wos]")
    for name, value in {
        "holder_name": "Riverside Mall LLC", "holder_email": "leasing@riverside.example.com",
        "holder_phone": "512-555-0177", "holder_address": "9 River Rd", "holder_city": "Austin",
        "holder_state": "TX", "holder_zip": "78702", "project_name": "Food court roof",
        "project_location": "9 River Rd, Austin TX", "project_duration": "3 weeks",
    }.items():
        type_into(page, f"[name={name}]", value)
    type_into(page, "[name=contract_details]", "PO 4410")


def test_portal_coi_request_with_the_keyboard_alone(page, app):
    seed_demo()
    sign_in(page, "customer@acme.demo")
    tab_to(page, "a[href$='/portal/requests/new']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/requests/new")

    # an empty WOS request: the swapped-in error summary has the focus and links to each field
    tab_to(page, "input[name=type]:checked")
    page.keyboard.press("ArrowDown")
    assert page.is_checked("input[name=type][value=coi_wos]")
    tab_to(page, "#request-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#request-error.error-summary")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'request-error'")
    assert in_viewport(page, "#request-error")
    hrefs = page.locator("#request-error a").evaluate_all("(as) => as.map(a => a.getAttribute('href'))")
    assert "#holder_name" in hrefs and "#project_name" in hrefs
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    wait_focus(page, "#" + hrefs[0][1:])

    fill_wos_request(page)
    tab_to(page, "#request-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#request-confirmation")
    toast = page.locator("#toasts[aria-live] .toast-success[role=status]")
    toast.first.wait_for()
    assert "Riverside Mall LLC" in toast.first.inner_text()
    db.session.expire_all()
    req = db.session.scalar(sa.select(CertificateRequest).where(NOT_DEMO))
    assert req.holder_name == "Riverside Mall LLC" and req.contract_details == "PO 4410"


def test_declined_card_message_is_in_view_focused_and_a_toast(page, app):
    seed_demo()
    page.set_viewport_size({"width": 1280, "height": 700})
    sign_in(page, "customer@copperline.demo")
    page.goto("/portal/requests/new")
    fill_wos_request(page)
    tab_to(page, "#request-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#request-error")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'request-error'")
    assert "Merchant payment failed" in page.inner_text("#request-error")
    assert in_viewport(page, "#request-error")
    toast = page.locator("#toasts[aria-live] .toast-error[role=alert]")
    toast.first.wait_for()
    assert "Merchant payment failed" in toast.first.inner_text()
    assert page.input_value("[name=holder_name]") == "Riverside Mall LLC"  # nothing typed is lost


def test_staff_forms_with_errors_focus_an_error_summary_linking_each_field(page, app):
    seed_demo()
    acme = db.session.scalar(sa.select(Customer).where(Customer.name.like("Acme%")))
    link_id = db.session.scalar(sa.select(CustomerHolder.id).filter_by(customer_id=acme.id))
    pending = db.session.scalar(sa.select(ExemptionCertificate.id).where(
        ExemptionCertificate.status == ExemptionCertificateStatus.PENDING_REVIEW))
    page.goto("/login")
    type_into(page, "input[name=email]", "reviewer@certdesk.demo")
    type_into(page, "input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/")

    def clear_holder_name():
        tab_to(page, "#holder-name")
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")

    def single_purchase_without_po():
        tab_to(page, "input[name=purchase_type]:checked")
        page.keyboard.press("ArrowDown")
        assert page.is_checked("input[name=purchase_type][value=single]")

    cases = [
        ("/exemptions/requests/new", "#exemption-request-form form[method=post] button[type=submit]",
         None, "#customer-results"),
        (f"/customers/{acme.id}/interests/{link_id}/edit", f"#interest-{link_id}-form button[type=submit]",
         clear_holder_name, "#holder-name"),
        (f"/exemptions/certificates/{pending}/edit", "form button.btn-primary[type=submit]",
         single_purchase_without_po, "#po_number"),
    ]
    for url, submit, prepare, link in cases:
        page.goto(url)
        if prepare:
            prepare()
        tab_to(page, submit)
        page.keyboard.press("Enter")
        page.wait_for_selector(".error-summary")
        page.wait_for_function("() => document.activeElement && document.activeElement.matches('.error-summary')")
        assert in_viewport(page, ".error-summary"), url
        summary_link = page.locator(f".error-summary a[href='{link}']")
        assert summary_link.count() == 1, (url, page.inner_text(".error-summary"))


RECORD_TOAST_TEXT = """
window.__toastTexts = [];
let shown = false;  // only changes after the page is parsed: what a screen reader hears as live-region news
document.addEventListener("DOMContentLoaded", () => { shown = true; });
new MutationObserver((records) => records.forEach((r) => {
  const toast = r.target.classList && r.target.classList.contains("toast");
  if (shown && toast) window.__toastTexts.push(r.target.textContent);
})).observe(document, {subtree: true, childList: true});
"""


def test_a_flashed_toast_is_put_into_the_live_region_after_the_page_loads(page, app):
    """A message flashed before a redirect arrives with the new page; screen readers only read live-region
    changes, so the script re-sets its text once the page is shown."""
    seed_demo()
    page.add_init_script(RECORD_TOAST_TEXT)
    page.goto("/login")
    type_into(page, "input[name=email]", "reviewer@certdesk.demo")
    type_into(page, "input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/")
    page.goto("/exemptions/requests/new?q=Acme")
    tab_to(page, "input[name=customer_id]")
    page.keyboard.press("Space")
    type_into(page, "input[name=email]", "buyer@acme.example.com")
    page.keyboard.press("Enter")
    page.wait_for_url("**/exemptions/requests/*")
    page.wait_for_function("() => window.__toastTexts.some((t) => t.includes('Request sent to'))", timeout=5000)
    toast = page.locator("#toasts[aria-live] .toast[role=status]")
    assert "Request sent to buyer@acme.example.com." in toast.first.inner_text()
