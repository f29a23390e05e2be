"""Finding 12 (browser): on the link page a file over the upload limit is reported before sending, so
nothing is posted and everything typed stays on the page."""

import pytest

pytestmark = pytest.mark.browser


def test_too_large_file_is_reported_before_sending(page, app, make, tmp_path):
    app.config["MAX_UPLOAD_BYTES"] = 1024 * 1024
    _, token = make.exemption_request()
    page.goto(f"/portal/r/{token}")
    page.fill("input[name=tax_id_number]", "KEEP-ME-123")
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024))
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/portal/r/" in r.url
            and not r.url.endswith("/opened") else None)
    page.set_input_files("input[name=document]", str(big))
    message = page.eval_on_selector("input[name=document]", "el => el.validationMessage")
    assert "larger than the 1 MB limit" in message
    page.click("button:has-text('Submit certificate')")
    page.wait_for_timeout(500)
    assert posts == []
    assert page.input_value("input[name=tax_id_number]") == "KEEP-ME-123"
    # a file within the limit clears the message
    small = tmp_path / "ok.pdf"
    small.write_bytes(make.tiny_pdf())
    page.set_input_files("input[name=document]", str(small))
    assert page.eval_on_selector("input[name=document]", "el => el.validationMessage") == ""
