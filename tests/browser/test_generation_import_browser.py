"""In Chromium: the import preview says what will change, the finished page has no stale toast and links on;
the generate dialog's sections; an advisor sees no download it cannot use. Set SCREENSHOT_DIR to keep pictures."""

import os
from datetime import timedelta

from app.customers import holders
from app.enums import GenerationMode, GenerationStatus, Role
from app.extensions import db
from app.models import GenerationRun
from app.models.base import utcnow
from tests.factories import PASSWORD


def _shot(page, name):
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def _login(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def test_links_import_preview_confirm_and_back_to_the_customer(page, app, make, tmp_path):
    customer = make.customer(name="Acme Roofing LLC")
    base = {"city": "Austin", "state": "TX", "zip_code": "78701"}
    holders.add_holder(customer, {**base, "name": "Northwind Builders Inc", "address": "1 Main St",
                                  "additional_insured": True}, actor=None, now=utcnow())
    holders.get_or_create_holder(holders.clean_holder({**base, "name": "Summit Tower LLC", "address": "2 Main St"}))
    user = make.user(Role.REVIEWER)
    db.session.commit()
    csv_file = tmp_path / "links.csv"
    csv_file.write_text("customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
                        "primary_noncontributory\n"
                        f"{customer.id},Northwind Builders Inc,1 Main St,Austin,TX,78701,yes,yes,no\n"
                        f"{customer.id},Summit Tower LLC,2 Main St,Austin,TX,78701,no,no,no\n"
                        f"{customer.id},Nobody Co,3 Main St,Austin,QQ,7870,no,no,no\n")
    _login(page, user)
    page.goto("/customers/holders/import")
    links_form = page.locator("form[action$='/holders/import/links']")
    links_form.locator("input[type=file]").set_input_files(str(csv_file))
    links_form.locator("button[type=submit]").click()
    page.wait_for_selector("section[data-status=preview]")
    text = page.locator("section[data-status=preview]").inner_text()
    assert "1 new, 1 will update flags, 0 unchanged" in text
    assert "Waiver of subrogation: no \u2192 yes" in text
    assert ".;" not in text and "(or DC). zip:" in text
    assert page.locator("#toasts .toast").count() == 0
    _shot(page, "import-preview")
    page.click("text=Import 2 valid rows")
    page.wait_for_selector("section[data-status=done]")
    done = page.locator("section[data-status=done]").inner_text()
    assert "Import finished: 1 created, 1 updated, 0 unchanged." in done and "1 with flag changes" in done
    assert "File uploaded" not in page.locator("#toasts").inner_text()  # no stale toast from the upload
    _shot(page, "import-done")
    page.click("text=Acme Roofing LLC: additional interests")
    page.wait_for_url(f"**/customers/{customer.id}/interests")
    assert page.locator("#interests-table tbody tr").count() == 2


def test_generate_dialog_sections_and_advisor_sees_no_download(page, app, make):
    customer = make.customer(name="Acme Roofing LLC")
    holders.add_holder(customer, {"name": "Northwind Builders Inc", "address": "1 Main St", "city": "Austin",
                                  "state": "TX", "zip_code": "78701"}, actor=None, now=utcnow())
    now = utcnow()
    db.session.add(GenerationRun(customer_id=customer.id, status=GenerationStatus.DONE, mode=GenerationMode.ZIP,
                                 total=1, done=1, filename="certificates.zip", file_key="missing", created_at=now,
                                 updated_at=now, finished_at=now, expires_at=now + timedelta(days=7)))
    reviewer, advisor = make.user(Role.REVIEWER), make.user(Role.ADVISOR)
    db.session.commit()
    _login(page, reviewer)
    page.goto(f"/customers/{customer.id}/interests")
    assert page.locator("a.download").count() == 1
    page.click("text=Generate Certificates")
    legend = page.locator("#generate-dialog fieldset.dialog-section").first
    assert legend.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"
    assert legend.evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "8px"
    _shot(page, "generate-dialog")
    page.goto("/logout")
    page.context.clear_cookies()
    _login(page, advisor)
    page.goto(f"/customers/{customer.id}/interests")
    assert "Recent generations" in page.content()
    assert page.locator("a.download").count() == 0 and "Generate Certificates" not in page.content()
    _shot(page, "interests-advisor")
