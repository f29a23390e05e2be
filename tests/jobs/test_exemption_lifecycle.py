"""The whole exemption lifecycle through a real RQ worker and a real SMTP server: the link is taken
from the e-mail the customer received."""

import io
import re

import sqlalchemy as sa

from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionRequestStatus as RS
from app.enums import Role
from app.extensions import db
from app.models import ExemptionCertificate, ExemptionRequest
from tests.paths import EXEMPTION_FORMS

FORMS = EXEMPTION_FORMS
LINK_RE = re.compile(r"http://certdesk\.test(/portal/r/[A-Za-z0-9_\-]+)")


def link_from(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = LINK_RE.search(body)
    assert match, body
    return match.group(1)


def upload(name="tx_01-339_resale_cert.pdf"):
    return (io.BytesIO((FORMS / name).read_bytes()), name)


def test_request_complete_review_approve_end_to_end(app, client, auth, make, smtp, run_jobs):
    reviewer = make.user(Role.REVIEWER, email="rita@seller.example.com")
    customer = make.customer(name="Acme Buyer Inc")
    auth.login(reviewer)

    response = client.post("/exemptions/requests/new",
                           data={"customer_id": customer.id, "email": "ap@acme.example.com"})
    assert response.status_code == 303
    req = db.session.scalar(sa.select(ExemptionRequest))
    assert req.status is RS.SENT
    assert len(req.token_hash) == 64

    run_jobs()
    [mail] = smtp.to("ap@acme.example.com")
    assert "exemption certificate" in mail["Subject"]
    path = link_from(mail)
    token = path.rsplit("/", 1)[1]
    assert token not in req.token_hash  # only the hash is stored

    auth.logout()
    page = client.get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Acme Buyer Inc" in text and "asks for your sales-tax exemption certificate" in text
    assert client.post(f"{path}/opened").status_code == 204  # the page's own call once a browser shows it
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).status is RS.OPENED

    response = client.post(path, data={**make.exemption_form(), "document": upload()},
                           content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    done = client.get(response.headers["Location"])
    assert "your certificate was received" in done.get_data(as_text=True)

    db.session.expire_all()
    req = db.session.get(ExemptionRequest, req.id)
    assert req.status is RS.COMPLETED
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    assert cert.status is CS.PENDING_REVIEW
    assert sorted(cert.states) == ["NY", "TX"]
    assert cert.document_filename == "tx_01-339_resale_cert.pdf"
    from app.storage import get_store
    assert get_store().read(cert.document_key) == (FORMS / "tx_01-339_resale_cert.pdf").read_bytes()  # as uploaded

    # The link is used up: the same neutral page as a made-up token.
    again = client.get(path)
    bogus = client.get("/portal/r/made-up-token")
    assert again.status_code == bogus.status_code == 404
    assert again.get_data(as_text=True) == bogus.get_data(as_text=True)

    run_jobs()
    [note] = smtp.to("rita@seller.example.com")
    assert "Acme Buyer Inc" in note["Subject"]
    assert f"/exemptions/certificates/{cert.id}" in note.get_body(preferencelist=("plain",)).get_content()

    auth.login(reviewer)
    review = client.get(f"/exemptions/certificates/{cert.id}")
    assert "tx_01-339_resale_cert.pdf" in review.get_data(as_text=True)
    response = client.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": cert.version})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.ACTIVE
    run_jobs()
    approved = [m for m in smtp.to("ap@acme.example.com") if "accepted" in m["Subject"]]
    assert len(approved) == 1
    assert "NY, TX" in approved[0].get_body(preferencelist=("plain",)).get_content()


def test_resend_kills_old_link_and_sends_a_fresh_one(app, client, auth, make, smtp, run_jobs):
    from datetime import timedelta

    reviewer = make.user(Role.ADMIN)
    req, _ = make.exemption_request(email="old@customer.example.com")
    run_jobs()
    old_path = link_from(smtp.to("old@customer.example.com")[0])
    first_expiry = req.expires_at
    auth.login(reviewer)

    response = client.post(f"/exemptions/requests/{req.id}/resend", data={"email": "new@customer.example.com"})
    assert response.status_code == 303
    # The old link is dead at once, before any job ran.
    auth.logout()
    assert client.get(old_path).status_code == 404
    run_jobs()
    [mail] = smtp.to("new@customer.example.com")
    new_path = link_from(mail)
    assert new_path != old_path
    assert client.get(new_path).status_code == 200
    db.session.expire_all()
    req = db.session.get(ExemptionRequest, req.id)
    assert req.email == "new@customer.example.com"
    assert req.expires_at > first_expiry + timedelta(seconds=0)
    assert req.link_version == 2


def test_reject_sends_notes_and_prefilled_link(app, client, auth, make, smtp, run_jobs):
    reviewer = make.user(Role.REVIEWER)
    req, token = make.exemption_request(email="buyer@x.example.com")
    client.post(f"/portal/r/{token}", data={**make.exemption_form(tax_id_number="WRONG-1"), "document": upload()},
                content_type="multipart/form-data")
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    run_jobs()
    auth.login(reviewer)

    empty = client.post(f"/exemptions/certificates/{cert.id}/reject", data={"notes": " ", "send_new_link": "y",
                                                                           "version": cert.version})
    assert empty.status_code == 422
    assert "Tell the customer why" in empty.get_data(as_text=True)

    response = client.post(f"/exemptions/certificates/{cert.id}/reject",
                           data={"notes": "The tax ID does not match the signed form.", "send_new_link": "y",
                                 "version": cert.version})
    assert response.status_code == 303
    run_jobs()
    rejected = [m for m in smtp.to("buyer@x.example.com") if "needs changes" in m["Subject"]]
    assert len(rejected) == 1
    body = rejected[0].get_body(preferencelist=("plain",)).get_content()
    assert "The tax ID does not match the signed form." in body
    path = link_from(rejected[0])
    auth.logout()
    form = client.get(path).get_data(as_text=True)
    assert 'value="WRONG-1"' in form          # pre-filled with what they sent
    assert 'value="32000000001"' in form
    assert "returned for changes" in form


def test_reject_without_new_link(app, client, auth, make, smtp, run_jobs):
    reviewer = make.user(Role.REVIEWER)
    req, token = make.exemption_request(email="buyer@y.example.com")
    client.post(f"/portal/r/{token}", data={**make.exemption_form(), "document": upload("ma_st-4_resale_cert.pdf")},
                content_type="multipart/form-data")
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    auth.login(reviewer)
    client.post(f"/exemptions/certificates/{cert.id}/reject", data={"notes": "Not our customer.",
                                                                   "version": cert.version})
    run_jobs()
    [mail] = [m for m in smtp.to("buyer@y.example.com") if "needs changes" in m["Subject"]]
    assert "Not our customer." in mail.get_body(preferencelist=("plain",)).get_content()
    assert LINK_RE.search(mail.get_body(preferencelist=("plain",)).get_content()) is None
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 1


def test_edit_and_approve(app, client, auth, make, smtp, run_jobs):
    reviewer = make.user(Role.REVIEWER)
    req, token = make.exemption_request(email="buyer@z.example.com")
    client.post(f"/portal/r/{token}", data={**make.exemption_form(), "document": upload("ny_st-120_resale_cert.pdf")},
                content_type="multipart/form-data")
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    auth.login(reviewer)
    form = client.get(f"/exemptions/certificates/{cert.id}/edit").get_data(as_text=True)
    assert 'value="TX-12345678"' in form
    data = make.exemption_form(tax_id_number="TX-99", **{"jurisdictions-1-state": "", "jurisdictions-2-state": "OK",
                                                        "jurisdictions-2-expiration_date": "2026-06-30"})
    response = client.post(f"/exemptions/certificates/{cert.id}/edit",
                           data={**data, "version": cert.version, "notes": "Fixed the ID from the PDF."})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    cert = db.session.get(ExemptionCertificate, cert.id)
    assert cert.status is CS.ACTIVE
    assert cert.tax_id_number == "TX-99"
    assert cert.states == ["OK", "TX"]
    assert cert.edited_on_review
    page = client.get(f"/exemptions/certificates/{cert.id}").get_data(as_text=True)
    assert "Fixed the ID from the PDF." in page and "Changed on review" in page
    run_jobs()
    assert [m for m in smtp.to("buyer@z.example.com") if "accepted" in m["Subject"]]
