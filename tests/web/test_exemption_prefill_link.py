"""The link page fills itself in from a certificate the customer already filled in on a computer:
nothing is saved until they submit, what they typed wins, and the same document goes with the submission."""

import io
import re

import sqlalchemy as sa
from PIL import Image

from app.extensions import db
from app.models import ExemptionCertificate
from tests.unit.test_exemption_prefill import _fill

TX_TYPED = {"Purchaser": "Lone Star Resale LLC", "Purchaser address": "500 Congress Ave",
            "Purchaser city, state, ZIP": "Austin, TX 78701", "Permit number": "32012345678",
            "Purchaser title": "Controller", "Purchaser sig date": "11/20/2026"}


def post(client, token, data, document=None):
    body = dict(data)
    if document is not None:
        body["document"] = document
    return client.post(f"/portal/r/{token}", data=body, content_type="multipart/form-data")


def test_fill_in_from_a_filled_texas_form_then_submit(app, client, make):
    req, token = make.exemption_request()
    pdf = _fill("tx_01-339_resale_cert.pdf", TX_TYPED)
    page = post(client, token, {"signer_name": "Typed By Hand", "prefill": "1"}, (io.BytesIO(pdf), "tx-filled.pdf"))
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "We copied" in text and "from tx-filled.pdf (Texas 01-339). Check them before you submit." in text
    assert 'value="Lone Star Resale LLC"' in text and "500 Congress Ave, Austin, TX 78701" in text
    assert 'value="32012345678"' in text and 'value="2026-11-20"' in text
    assert 'value="Typed By Hand"' in text  # what the customer typed wins
    assert db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id))) == 0  # nothing saved yet

    kept = re.search(r'name="kept_document" type="hidden" value="([^"]+)"', text) or re.search(
        r'name="kept_document" value="([^"]+)"', text)
    assert kept, "the document is kept for the submission"
    form = make.exemption_form(purchaser_name="Lone Star Resale LLC", form_type="state_specific")
    done = post(client, token, {**form, "kept_document": kept.group(1)})
    assert done.status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    assert cert.purchaser_name == "Lone Star Resale LLC" and cert.document_filename == "tx-filled.pdf"


def test_prefill_without_a_file_or_from_an_image_or_a_locked_pdf_says_why(app, client, make):
    _, token = make.exemption_request()
    none = post(client, token, {"prefill": "1"}).get_data(as_text=True)
    assert "Choose your filled-in certificate (a PDF) first" in none
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, format="PNG")
    png = post(client, token, {"prefill": "1"}, (io.BytesIO(buf.getvalue()), "scan.png")).get_data(as_text=True)
    assert "Only a PDF that was filled in on a computer can fill in the form" in png
    blank = post(client, token, {"prefill": "1"}, (io.BytesIO(make.tiny_pdf()), "plain.pdf")).get_data(as_text=True)
    assert "We found nothing to copy from plain.pdf" in blank
    assert db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id))) == 0


def test_prefill_page_is_spanish_for_a_spanish_browser(app, client, make):
    _, token = make.exemption_request()
    pdf = _fill("tx_01-339_resale_cert.pdf", TX_TYPED)
    text = client.post(f"/portal/r/{token}", data={"prefill": "1", "document": (io.BytesIO(pdf), "tx.pdf")},
                       content_type="multipart/form-data",
                       headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Copiamos" in text and "Revíselos antes de enviar." in text
    assert "Completar el formulario con este documento" in text
