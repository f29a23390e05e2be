"""In Chromium: Check All holders, generate one combined PDF, watch the progress bar finish, download it."""

import io

from pypdf import PdfReader

from app.customers import holders
from app.enums import Role
from app.extensions import db
from app.models.base import utcnow
from tests.factories import PASSWORD

NAMES = ["Northwind Builders Inc", "Lakeside Property Management", "Summit Tower LLC"]


def test_generate_combined_pdf_in_the_browser(page, app, make, run_jobs, tmp_path):
    customer = make.customer(name="Acme Roofing LLC")
    for i, name in enumerate(NAMES):
        holders.add_holder(customer, {"name": name, "address": f"{i + 1} Main St", "city": "Austin", "state": "TX",
                                      "zip_code": "78701"}, actor=None, now=utcnow())
    user = make.user(Role.REVIEWER)
    db.session.commit()

    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.goto(f"/customers/{customer.id}/interests")
    page.click("text=Generate Certificates")
    dialog = page.locator("#generate-dialog")
    assert dialog.is_visible()
    boxes = dialog.locator("#generate-holders input[type=checkbox]")
    assert boxes.count() == 3
    assert not any(boxes.nth(i).is_checked() for i in range(3))
    page.check("#check-all-holders")
    assert all(boxes.nth(i).is_checked() for i in range(3))
    dialog.locator("input[name=mode][value=merged]").check()
    dialog.locator("button[type=submit]", has_text="Generate").click()

    widget = dialog.locator("#generation-result .generation-status")
    widget.wait_for()
    assert widget.get_attribute("data-status") == "queued"
    assert run_jobs() == 1  # the worker runs while the page keeps polling
    page.wait_for_selector("#generation-result .generation-status[data-status=done]")
    bar = dialog.locator("#generation-result [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert "3 of 3 done" in dialog.locator("#generation-result").inner_text()

    with page.expect_download() as info:
        dialog.locator("#generation-result a.download").click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    reader = PdfReader(io.BytesIO(target.read_bytes()))
    assert len(reader.pages) == 3
    texts = [" ".join(p.extract_text().split()) for p in reader.pages]
    assert all(any(name in text for text in texts) for name in NAMES)
