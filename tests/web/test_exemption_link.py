"""The customer's link page: real forms accepted as uploaded; bad uploads and bad fields refused
with a message next to the field, nothing stored, nothing typed lost; unavailable links are neutral."""

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.enums import ExemptionRequestStatus as RS
from app.extensions import db
from app.models import ExemptionCertificate, ExemptionRequest
from tests.paths import EXEMPTION_FORMS, exemption_forms

FORMS = EXEMPTION_FORMS
REAL_FORMS = [p.name for p in exemption_forms()]


def post(client, token, data, document=None):
    body = dict(data)
    if document is not None:
        body["document"] = document
    return client.post(f"/portal/r/{token}", data=body, content_type="multipart/form-data")


def stored_files(app) -> list[Path]:
    root = Path(app.config["UPLOAD_DIR"])
    return [p for p in root.rglob("*") if p.is_file()]


def certificates() -> int:
    return db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id)))


@pytest.mark.parametrize("name", REAL_FORMS)
def test_real_forms_are_accepted_and_stored_as_uploaded(app, client, make, name):
    req, token = make.exemption_request()
    data = (FORMS / name).read_bytes()
    response = post(client, token, make.exemption_form(), (io.BytesIO(data), name))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    from app.storage import get_store

    assert get_store().read(cert.document_key) == data
    assert cert.document_content_type == "application/pdf" and cert.document_pages >= 1


def test_png_upload_accepted(app, client, make):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, format="PNG")
    req, token = make.exemption_request()
    assert post(client, token, make.exemption_form(), (io.BytesIO(buf.getvalue()), "scan.png")).status_code == 303


@pytest.mark.parametrize("content, filename, message", [
    (b"MZ\x90\x00 this is a windows program" * 10, "certificate.pdf", "not a JPG, PDF, PNG document"),
    (b"", "empty.pdf", "The file is empty."),
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref", "broken.pdf", "damaged or incomplete"),
    (b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024), "huge.pdf", "larger than the 1 MB limit"),
])
def test_bad_uploads_are_refused_with_a_message_and_nothing_stored(app, client, make, content, filename, message):
    app.config["MAX_UPLOAD_BYTES"] = 1024 * 1024
    req, token = make.exemption_request()
    before = stored_files(app)
    response = post(client, token, make.exemption_form(tax_id_number="KEEP-ME-123"), (io.BytesIO(content), filename))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    assert 'id="document-error"' in text
    assert 'value="KEEP-ME-123"' in text          # nothing typed is lost
    assert certificates() == 0
    assert stored_files(app) == before
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).status is RS.SENT


def test_missing_document_is_refused(app, client, make):
    req, token = make.exemption_request()
    response = post(client, token, make.exemption_form())
    assert response.status_code == 422
    assert "Attach the signed certificate" in response.get_data(as_text=True)
    assert certificates() == 0


@pytest.mark.parametrize("overrides, field_id, message", [
    ({"effective_date": "2026-13-45"}, "effective_date-error", "Use a date in the form YYYY-MM-DD."),
    ({"signed_on": "yesterday"}, "signed_on-error", "Use a date in the form YYYY-MM-DD."),
    ({"expiration_date": "2025-01-01"}, "expiration_date-error", "on or after the effective date"),
    ({"tax_id_number": ""}, "tax_id_number-error", "This field is required."),
    ({"purchase_type": "single", "po_number": ""}, "po_number-error", "needs the PO or invoice number"),
    ({"reason": "other"}, "reason_other-error", "Describe the exemption reason."),
])
def test_bad_fields_answer_422_next_to_the_field_and_keep_everything(app, client, make, overrides, field_id,
                                                                      message):
    req, token = make.exemption_request()
    data = make.exemption_form(purchaser_name="Keep This Name LLC", **overrides)
    pdf = make.tiny_pdf()
    response = post(client, token, data, (io.BytesIO(pdf), "mine.pdf"))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert f'id="{field_id}"' in text and message in text
    assert 'value="Keep This Name LLC"' in text
    assert 'value="32000000001"' in text
    # The good document is kept for the next attempt: resubmitting the fixed form without a file works.
    assert "mine.pdf" in text and "is kept" in text
    assert certificates() == 0
    import re

    kept = re.search(r'name="kept_document" type="hidden" value="([^"]+)"', text).group(1)
    fixed = post(client, token, {**make.exemption_form(purchaser_name="Keep This Name LLC"), "kept_document": kept})
    assert fixed.status_code == 303
    assert db.session.scalar(sa.select(ExemptionCertificate)).document_filename == "mine.pdf"


def test_unknown_state_is_refused_next_to_its_row(app, client, make):
    req, token = make.exemption_request()
    response = post(client, token, make.exemption_form(**{"jurisdictions-1-state": "ZZ"}),
                    (io.BytesIO(make.tiny_pdf()), "x.pdf"))
    assert response.status_code == 422
    assert "ZZ is not a US state code." in response.get_data(as_text=True)
    assert certificates() == 0


def test_no_state_at_all_is_refused(app, client, make):
    req, token = make.exemption_request()
    response = post(client, token, make.exemption_form(**{"jurisdictions-0-state": "", "jurisdictions-1-state": "",
                                                          "jurisdictions-0-state_id_number": "",
                                                          "jurisdictions-0-expiration_date": ""}),
                    (io.BytesIO(make.tiny_pdf()), "x.pdf"))
    assert response.status_code == 422
    assert "Add at least one state." in response.get_data(as_text=True)


def test_kept_document_reference_cannot_be_forged_or_reused_on_another_link(app, client, make):
    req, token = make.exemption_request()
    other, other_token = make.exemption_request()
    first = post(client, token, make.exemption_form(tax_id_number=""), (io.BytesIO(make.tiny_pdf()), "a.pdf"))
    import re

    kept = re.search(r'name="kept_document" type="hidden" value="([^"]+)"', first.get_data(as_text=True)).group(1)
    for value in (kept, "forged." + kept):
        response = post(client, other_token, {**make.exemption_form(), "kept_document": value})
        assert response.status_code == 422
        assert "Attach the signed certificate" in response.get_data(as_text=True)


def test_unavailable_links_all_show_the_same_neutral_page(app, client, make):
    from app.exemptions.services import cancel_request, resend_request
    from app.models.base import utcnow

    _, cancelled = make.exemption_request(email="a@x.example.com")
    req2, replaced = make.exemption_request(email="b@x.example.com")
    req3, completed = make.exemption_request(email="c@x.example.com")
    cancel_request(db.session.scalar(sa.select(ExemptionRequest).filter_by(email="a@x.example.com")), actor=None,
                   now=utcnow())
    resend_request(req2, actor=None, now=utcnow())
    db.session.commit()
    assert post(client, completed, make.exemption_form(), (io.BytesIO(make.tiny_pdf()), "x.pdf")).status_code == 303
    _, good = make.exemption_request(email="d@x.example.com")
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    pages = [client.get(f"/portal/r/{t}") for t in (cancelled, replaced, completed, tampered, "x" * 500)]
    assert {p.status_code for p in pages} == {404}
    bodies = {p.get_data(as_text=True) for p in pages}
    assert len(bodies) == 1
    body = bodies.pop()
    assert "This link is not available" in body
    for secret in ("x.example.com", "Customer", "cancel", "expired on"):
        assert secret not in body
    assert client.get(f"/portal/r/{good}").status_code == 200


def test_page_not_its_url_marks_opened_and_names_seller_and_customer(app, client, make):
    customer = make.customer(name="Opened Corp")
    req, token = make.exemption_request(customer)
    page = client.get(f"/portal/r/{token}").get_data(as_text=True)
    assert app.config["SELLER_NAME"] in page and "Opened Corp" in page
    # Fetching the URL (as a mail scanner does) opens nothing; the page itself calls back.
    assert f'hx-post="/portal/r/{token}/opened" hx-trigger="load"' in page
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).status is RS.SENT
    assert client.post(f"/portal/r/{token}/opened", csrf=False).status_code == 400
    assert client.post(f"/portal/r/{token}/opened").status_code == 204
    db.session.expire_all()
    opened = db.session.get(ExemptionRequest, req.id)
    assert opened.status is RS.OPENED and opened.opened_at is not None
    first_open = opened.opened_at
    client.get(f"/portal/r/{token}")
    client.post(f"/portal/r/{token}/opened")
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).opened_at == first_open
    assert client.post("/portal/r/not-a-token/opened").status_code == 404


def test_link_pages_are_rate_limited(app, client, make):
    app.config["LINK_RATE_LIMIT"] = "3 per minute"
    codes = [client.get("/portal/r/guessing-tokens").status_code for _ in range(5)]
    assert codes[:3] == [404, 404, 404]
    assert codes[3:] == [429, 429]


def test_link_post_without_csrf_is_refused(app, client, make):
    req, token = make.exemption_request()
    response = client.post(f"/portal/r/{token}", data=make.exemption_form(), csrf=False)
    assert response.status_code == 400
    assert certificates() == 0


def test_more_state_rows_keeps_what_was_typed_and_saves_nothing(app, client, make):
    req, token = make.exemption_request()
    response = post(client, token, {**make.exemption_form(tax_id_number="TYPED-9"), "add_rows": "1"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'name="jurisdictions-9-state"' in text and 'name="jurisdictions-10-state"' not in text
    assert 'value="TYPED-9"' in text and 'value="32000000001"' in text
    assert certificates() == 0
    data = make.exemption_form(**{f"jurisdictions-{i}-state": s for i, s in enumerate(
        ["TX", "NY", "CA", "FL", "GA", "OH", "PA", "WA"])})
    assert post(client, token, data, (io.BytesIO(make.tiny_pdf()), "x.pdf")).status_code == 303
    assert len(db.session.scalar(sa.select(ExemptionCertificate)).states) == 8


def test_an_empty_submission_lists_every_problem_at_once_with_links_to_the_fields(app, client, make):
    req, token = make.exemption_request()
    response = post(client, token, {})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    summary = text[text.index("error-summary"):text.index("</ul>")]
    for label in ("Exemption reason", "Certificate form", "Certificate / tax ID number", "Effective date",
                  "Purchaser name", "Signer name", "Date signed"):
        assert f">{label}</a>: This field is required." in summary
    assert '<a href="#jurisdictions">Where it applies</a>: Add at least one state.' in summary
    assert '<a href="#document">Signed certificate document</a>' in summary
    # The reason and the form are chosen on purpose: no pre-selected value.
    reason = text[text.index('name="reason"'):]
    reason = reason[:reason.index("</select>")]
    assert '<option value="">Choose the reason…</option>' in reason and "selected" not in reason
    assert certificates() == 0


def test_a_returned_submission_shows_the_reviewers_notes_on_the_new_link(app, client, make, auth):
    from app.enums import Role
    from app.exemptions.services import reject_certificate
    from app.models.base import utcnow

    req, token = make.exemption_request()
    assert post(client, token, make.exemption_form(), (io.BytesIO(make.tiny_pdf()), "x.pdf")).status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    new_req = reject_certificate(cert, reviewer=make.user(Role.REVIEWER), now=utcnow(),
                                 notes="The signature is missing on page 1.")
    db.session.commit()
    from app.exemptions.services import request_token

    page = client.get(f"/portal/r/{request_token(new_req)}").get_data(as_text=True)
    assert "returned for changes" in page and "The signature is missing on page 1." in page


def test_more_state_rows_keeps_a_chosen_document_too(app, client, make):
    import re

    req, token = make.exemption_request()
    response = post(client, token, {**make.exemption_form(), "add_rows": "1"},
                    (io.BytesIO(make.tiny_pdf()), "chosen-first.pdf"))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Your file <strong>chosen-first.pdf</strong> is kept" in text
    kept = re.search(r'name="kept_document" type="hidden" value="([^"]+)"', text).group(1)
    data = make.exemption_form(**{"jurisdictions-5-state": "CA", "jurisdictions-9-state": "WA"})
    done = post(client, token, {**data, "kept_document": kept})
    assert done.status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    assert cert.document_filename == "chosen-first.pdf" and sorted(cert.states) == ["CA", "NY", "TX", "WA"]
    bad = post(client, make.exemption_request()[1], {**make.exemption_form(), "add_rows": "1"},
               (io.BytesIO(b"not a pdf at all"), "fake.pdf"))
    assert bad.status_code == 200 and 'id="document-error"' in bad.get_data(as_text=True)
