"""Upload checks look at content, not names: real tax forms pass, disguised or broken files do not."""

import io

import pytest
from PIL import Image

from app.uploads import PDF, PNG, UploadRejected, check_upload
from tests.paths import EXEMPTION_FORMS as FORMS
from tests.paths import exemption_forms


@pytest.mark.parametrize("path", exemption_forms(), ids=lambda p: p.name)
def test_real_exemption_forms_are_accepted_as_uploaded(app, path):
    data = path.read_bytes()
    checked = check_upload(data, path.name)
    assert checked.content_type == PDF
    assert checked.data == data  # kept byte for byte: JavaScript, embedded files and all
    assert checked.page_count >= 1


def test_png_is_accepted(app):
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), "white").save(buf, "PNG")
    assert check_upload(buf.getvalue(), "scan.png").content_type == PNG


@pytest.mark.parametrize("data,name,message", [
    (b"", "empty.pdf", "empty"),
    (b"MZ\x90\x00 this is an exe", "invoice.pdf", "not a"),
    (b"<html><script>alert(1)</script></html>", "form.pdf", "not a"),
    (b"%PDF-1.7\n garbage without any objects", "broken.pdf", "damaged"),
    (b"\x89PNG\r\n\x1a\n truncated", "scan.png", "damaged"),
])
def test_bad_files_are_refused_with_a_message(app, data, name, message):
    with pytest.raises(UploadRejected) as err:
        check_upload(data, name)
    assert message in str(err.value)


def test_oversize_is_refused(app):
    app.config["MAX_UPLOAD_BYTES"] = 1024
    with pytest.raises(UploadRejected, match="larger than"):
        check_upload(b"%PDF-1.4" + b"0" * 2048, "big.pdf")


def test_filename_is_made_safe_and_extension_follows_content(app):
    data = (FORMS / "ma_st-4_resale_cert.pdf").read_bytes()
    assert check_upload(data, "../../etc/passwd.png").filename == "etc_passwd.pdf"
