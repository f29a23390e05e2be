"""Every exemption POST (and the GETs that take parameters) with empty or garbage data answers 4xx
with a message a person can act on, never 500, and stores nothing."""

import io

import pytest
import sqlalchemy as sa

from app.enums import ExemptionCertificateStatus as CS
from app.enums import Role
from app.extensions import db
from app.models import Activity, ExemptionCertificate, ExemptionRequest, ExemptionSendRun, OutboxMessage

NUL = "a\x00b"
HUGE = "9" * 30
LONG = "x" * 20_000

GARBAGE = [
    {},
    {"customer_id": HUGE, "email": NUL, "version": HUGE, "notes": NUL, "send_new_link": NUL},
    {"customer_id": "-1", "email": LONG, "version": "-5", "notes": LONG, "q": NUL},
    {"customer_id": "1e9", "email": "a@b", "customer_ids": ["x", HUGE, "-3", NUL], "state": NUL},
    {"reason": "bogus", "purchase_type": "bogus", "form_type": NUL, "tax_id_number": NUL,
     "effective_date": "2026-02-30", "expiration_date": "99999-01-01", "signed_on": NUL,
     "purchaser_name": LONG, "purchaser_address": NUL, "signer_name": NUL,
     "jurisdictions-0-state": "ZZ", "jurisdictions-1-state": NUL, "jurisdictions-2-expiration_date": "soon",
     "jurisdictions-99999-state": "TX", "kept_document": NUL},
]


def counts():
    return [db.session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (ExemptionRequest, ExemptionCertificate, ExemptionSendRun, OutboxMessage, Activity)]


def assert_refused(response, *messages):
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:1500])
    text = response.get_data(as_text=True)
    assert any(m in text for m in messages), text[:3000]


@pytest.fixture
def staff(make, auth):
    auth.login(make.user(Role.ADMIN, name="Ada Admin"))


@pytest.mark.parametrize("data", GARBAGE)
def test_staff_posts_refuse_garbage(app, client, htmx, make, staff, data):
    req, _ = make.exemption_request(email="keep@customer.example.com")
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    db.session.commit()
    before = counts()
    for send in (client.post, htmx.post):
        assert_refused(send("/exemptions/requests/new", data=data), "Choose a customer", "Not a valid e-mail",
                       "Field cannot be longer")
        assert_refused(send("/exemptions/send-many", data=data), "Select at least one customer")
        assert_refused(send(f"/exemptions/certificates/{cert.id}/reject", data=data),
                       "Tell the customer why", "already reviewed", "changed by", "cannot be longer")
        assert_refused(send(f"/exemptions/certificates/{cert.id}/edit", data=data), "This field is required",
                       "Not a valid choice", "changed by")
        if data.get("email") not in (None, ""):
            assert_refused(send(f"/exemptions/requests/{req.id}/resend", data=data), "Not a valid e-mail",
                           "cannot be longer")
        for url in (f"/exemptions/requests/{HUGE}/resend", f"/exemptions/requests/{HUGE}/cancel",
                    f"/exemptions/certificates/{HUGE}/approve", f"/exemptions/certificates/{HUGE}/reject"):
            assert_refused(send(url, data=data), "Not found")
    db.session.expire_all()
    assert counts() == before
    assert db.session.get(ExemptionRequest, req.id).email == "keep@customer.example.com"
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.PENDING_REVIEW


def test_approve_with_a_stale_or_garbage_version_is_a_conflict_or_ignored(app, client, make, staff):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    db.session.commit()
    stale = client.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": str(cert.version + 7)})
    assert_refused(stale, "changed by")
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.PENDING_REVIEW


@pytest.mark.parametrize("query", [
    {"q": NUL}, {"q": HUGE}, {"q": LONG}, {"page": HUGE}, {"page": "-4"}, {"tab": NUL},
    {"customer_id": HUGE}, {"state": NUL}, {"zoom": "nan"}, {"zoom": HUGE},
])
def test_staff_gets_with_garbage_parameters_answer(app, client, make, staff, query):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    db.session.commit()
    for url in ("/exemptions/", "/exemptions/counts", "/exemptions/customers/search", "/exemptions/requests/new",
                "/exemptions/requests/email-field", "/exemptions/send-many", f"/exemptions/certificates/{cert.id}"):
        response = client.get(url, query_string=query)
        assert response.status_code in (200, 422), (url, query, response.status_code)
    page = client.get(f"/exemptions/certificates/{cert.id}/pages/{HUGE}.png")
    assert page.status_code == 404


@pytest.mark.parametrize("data", GARBAGE)
def test_link_post_refuses_garbage(app, client, make, data):
    req, token = make.exemption_request()
    before = counts()
    body = {k: v for k, v in data.items()}
    response = client.post(f"/portal/r/{token}", data=body, content_type="multipart/form-data")
    assert_refused(response, "Some fields need your attention")
    with_file = client.post(f"/portal/r/{token}", data={**body, "document": (io.BytesIO(b"\x00" * 10), NUL + ".pdf")},
                            content_type="multipart/form-data")
    assert_refused(with_file, "Some fields need your attention")
    db.session.expire_all()
    assert counts()[:2] == before[:2]


def test_link_tokens_that_are_garbage_get_the_neutral_page(app, client):
    for token in (NUL, "%00", HUGE, LONG[:300], "..%5C..%5Cetc"):
        response = client.get(f"/portal/r/{token}")
        assert response.status_code == 404
        assert "This link is not available" in response.get_data(as_text=True)
        posted = client.post(f"/portal/r/{token}", data={"tax_id_number": NUL})
        assert posted.status_code == 404


def test_api_post_refuses_garbage(app, client, make):
    from app.cli import create_api_token

    headers = {"Authorization": f"Bearer {create_api_token(make.user(Role.ADMIN))}"}
    customer = make.customer()
    db.session.commit()
    before = counts()
    for body in (None, [], "x", {"customer_id": HUGE}, {"customer_id": 10**30, "email": "a@example.com"},
                 {"customer_id": customer.id, "email": NUL}, {"customer_id": customer.id, "email": LONG},
                 {"customer_id": True, "email": 5}):
        response = client.post("/api/v1/exemption-requests", json=body, headers=headers)
        assert response.status_code == 422, (body, response.get_data(as_text=True))
        assert response.get_json()["error"]
    for url in (f"/api/v1/exemption-requests/{HUGE}", f"/api/v1/customers/{HUGE}/exemptions?jurisdiction=TX"):
        assert client.get(url, headers=headers).status_code == 404
    bad = client.get(f"/api/v1/customers/{customer.id}/exemptions",
                     query_string={"jurisdiction": NUL, "on": "99999-99-99"}, headers=headers)
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"jurisdiction", "on"}
    assert counts() == before


def test_nul_characters_are_dropped_from_text_fields(app, client, make):
    req, token = make.exemption_request()
    response = client.post(f"/portal/r/{token}", data={**make.exemption_form(tax_id_number=NUL, signer_title=NUL),
                                                       "document": (io.BytesIO(make.tiny_pdf()), "x.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    assert cert.tax_id_number == "ab" and cert.signer_title == "ab"
