"""Findings 7 and 12 (uploads): an HTML page with a PDF behind it is not a PDF; a password-protected
PDF is called that; huge images are refused by their pixel count; an oversize file on the link page
is answered on the form with everything typed kept."""

import io

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ExemptionCertificate
from app.uploads import PDF, UploadRejected, check_upload


def _post_link(client, token, data, document):
    return client.post(f"/portal/r/{token}", data={**data, "document": document}, content_type="multipart/form-data")


def _encrypted_pdf(make, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make.tiny_pdf())))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_html_with_a_pdf_behind_it_is_refused_on_the_link_page(app, client, make):
    polyglot = b"<html><script>alert(document.cookie)</script></html>\n" + make.tiny_pdf()
    req, token = make.exemption_request()
    response = _post_link(client, token, make.exemption_form(), (io.BytesIO(polyglot), "cert.pdf"))
    assert response.status_code == 422
    assert "not a JPG, PDF, PNG document" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id))) == 0


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf", b"\r\n  \t"])
def test_a_pdf_may_start_after_a_bom_or_whitespace(app, make, prefix):
    assert check_upload(prefix + make.tiny_pdf(), "x.pdf").content_type == PDF


@pytest.mark.parametrize("prefix", [b"<html>", b"GIF89a", b"\x00", b"junk\n"])
def test_anything_else_before_the_pdf_header_is_refused(app, make, prefix):
    with pytest.raises(UploadRejected, match="not a"):
        check_upload(prefix + make.tiny_pdf(), "x.pdf")


def test_password_protected_pdf_is_called_password_protected(app, client, make):
    req, token = make.exemption_request()
    locked = _encrypted_pdf(make, user_password="open-sesame")
    response = _post_link(client, token, make.exemption_form(purchaser_name="Keep Me LLC"),
                          (io.BytesIO(locked), "locked.pdf"))
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "password-protected" in text and "damaged" not in text
    assert 'value="Keep Me LLC"' in text


def test_pdf_locked_only_against_editing_is_accepted(app, make):
    # Many official forms carry an owner password but open without one.
    assert check_upload(_encrypted_pdf(make, user_password=""), "form.pdf").page_count == 1


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def test_image_over_the_pixel_cap_is_refused_with_its_size(app):
    app.config["MAX_IMAGE_PIXELS"] = 2_000_000
    assert check_upload(_png(1000, 2000), "ok.png").content_type == "image/png"
    with pytest.raises(UploadRejected, match="2001 × 1000 pixels, more than the 2 megapixel limit"):
        check_upload(_png(2001, 1000), "big.png")


def test_decompression_bomb_is_refused_with_the_pixel_message(app):
    # 13,000 x 13,000 = 169 megapixels: beyond Pillow's own bomb limit, still our message
    with pytest.raises(UploadRejected, match="megapixel limit"):
        check_upload(_png(13_000, 13_000), "bomb.png")


def test_default_cap_is_forty_megapixels(app):
    assert app.config["MAX_IMAGE_PIXELS"] == 40_000_000


def test_oversize_file_on_the_link_page_answers_the_form_keeping_what_was_typed(app, client, make):
    app.config.update(MAX_UPLOAD_BYTES=1024 * 1024, MAX_CONTENT_LENGTH=2 * 1024 * 1024,
                      OVERSIZE_FORM_BYTES=8 * 1024 * 1024)
    req, token = make.exemption_request()
    big = b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024)
    response = _post_link(client, token, make.exemption_form(tax_id_number="KEEP-ME-123"), (io.BytesIO(big), "b.pdf"))
    text = response.get_data(as_text=True)
    assert response.status_code == 422, text[:300]
    assert "larger than the 1 MB limit" in text
    assert 'value="KEEP-ME-123"' in text
    # the page checks the size in the browser before sending
    assert 'data-max-bytes="1048576"' in text


def test_other_forms_keep_the_normal_request_cap(app, client, auth, make):
    from app.enums import Role

    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024)
    auth.login(make.user(Role.ADMIN))
    response = client.post("/admin/users", data={"email": "x@example.com", "name": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
