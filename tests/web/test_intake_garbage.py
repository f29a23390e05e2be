"""Every intake POST (portal, staff, API, fees) answers garbage with a 4xx and a clear message, never a 500,
and stores nothing. Runs on SQLite and PostgreSQL (NUL characters and ids beyond 32 bits are the usual traps)."""

import json

import pytest
import sqlalchemy as sa

from app.enums import PaymentMethod, Role
from app.extensions import db
from app.models import Activity, CertificateRequest, OutboxMessage, Payment, SandboxCharge, Setting
from tests.web.test_api_certificate_requests import token_for
from tests.web.test_portal_intake import FORM

HUGE = "9" * 30
GARBAGE = [
    {},
    {"type": ""},
    {"type": "poi"},  # not offered on the forms
    {"type": "coi_wos\x00"},
    {"type": ["coi", "coi_wos"]},
    {**FORM, "holder_email": "x@@example.com"},
    {**FORM, "holder_state": "\x00\x00"},
    {**FORM, "holder_zip": "7" * 5000},
    {**FORM, "holder_name": "a" * 100_000},
    {**FORM, "holder_phone": "１２３"},
    {**FORM, "holder_phone": "５１２５５５０１９９"},
    {**FORM, "project_name": ""},
    {**FORM, "type": "coi_wos", "contract_details": " \x00 "},
    {**FORM, "holder_zip": "٧٨٧٠١"},
]


def stored():
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m))
                 for m in (CertificateRequest, Payment, SandboxCharge, OutboxMessage))


def check(response, *, message=True):
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_data(as_text=True)
    if message:
        assert any(s in body for s in ("is required", "Choose", "not valid", "Not a valid", "Use ", "too long",
                                       "must be", "Pick", "Enter", "at most", "e-mail", "digit", "Send")), body[:2000]
    return body


@pytest.fixture
def card_customer_user(make, auth):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    auth.login(make.user(Role.CUSTOMER, customer=customer))
    return customer


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_portal_request_form_garbage(client, htmx, card_customer_user, data):
    before = stored()
    check(htmx.post("/portal/requests/new", data=data, target="request-form"))
    check(client.post("/portal/requests/new", data=data))
    assert stored() == before


def test_portal_request_form_garbage_idempotency_keys(client, card_customer_user):
    for key in ("\x00", "k\x00ey", "x" * 10_000, "\n\t"):
        response = client.post("/portal/requests/new", data={**FORM, "idempotency_key": key})
        assert response.status_code == 303, key  # a usable key is derived; the request goes through once
    assert db.session.scalar(sa.select(sa.func.count(CertificateRequest.id))) == 4


@pytest.mark.parametrize("data", [{}, {"email": ""}, {"email": "\x00"}, {"email": "a@b"}, {"email": "x" * 5000},
                                  {"email": ["b", "a@example.com"]}])
def test_portal_poi_garbage(client, card_customer_user, data):
    before = stored()
    check(client.post("/portal/poi", data=data))
    assert stored() == before


def test_portal_poi_name_with_nul_is_cleaned(client, card_customer_user):
    response = client.post("/portal/poi", data={"email": "ok@example.com", "name": "Ann\x00 Lee"})
    assert response.status_code == 303
    assert "\x00" not in db.session.scalars(sa.select(Activity.message)).all()[-1]


@pytest.fixture
def admin(make, auth):
    auth.login(make.user(Role.ADMIN))


@pytest.mark.parametrize("data", GARBAGE[:6], ids=range(6))
def test_staff_request_form_garbage(client, admin, make, data):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    before = stored()
    check(client.post(f"/customers/{customer.id}/certificates/request", data=data))
    assert stored() == before


@pytest.mark.parametrize("data", [
    {}, {"certificate_ids": ""}, {"certificate_ids": "abc"}, {"certificate_ids": HUGE}, {"certificate_ids": "-1"},
    {"certificate_ids": "1\x00"}, {"certificate_ids": "1", "extra_emails": "\x00"},
    {"certificate_ids": "1", "extra_emails": ",".join(f"a{i}@example.com" for i in range(30))},
])
def test_staff_resend_garbage(client, admin, make, data):
    customer = make.customer()
    before = stored()
    check(client.post(f"/customers/{customer.id}/certificates/resend", data=data))
    assert stored() == before


@pytest.mark.parametrize("data", [{}, {"email": "nope"}, {"email": "\x00"}])
def test_staff_poi_garbage(client, admin, make, data):
    customer = make.customer()
    check(client.post(f"/customers/{customer.id}/certificates/poi", data=data))


def test_staff_posts_to_huge_or_missing_customers_are_404(client, admin):
    for path in ("request", "resend", "poi"):
        assert client.post(f"/customers/{HUGE}/certificates/{path}", data=FORM).status_code == 404
        assert client.post(f"/customers/2147483647/certificates/{path}", data=FORM).status_code == 404


FEES = [{}, {"wos_fee": "", "card_fee_percent": ""}, {"wos_fee": "NaN", "card_fee_percent": "3"},
        {"wos_fee": "sNaN", "card_fee_percent": "Infinity"}, {"wos_fee": "1e999", "card_fee_percent": "3"},
        {"wos_fee": "25.001", "card_fee_percent": "-1"},
        {"wos_fee": "9" * 5000, "card_fee_percent": "3"}, {"wos_fee": "=1+1", "card_fee_percent": "3%%"}]


@pytest.mark.parametrize("data", FEES)
def test_fees_garbage(client, admin, data):
    check(client.post("/admin/fees", data=data))
    assert db.session.get(Setting, "fees") is None


def test_nul_characters_are_dropped_before_any_check(client, admin):
    """Every form value loses its NUL characters on the way in (app/__init__.py), so "25\\x00" is the fee 25."""
    assert client.post("/admin/fees", data={"wos_fee": "25\x00", "card_fee_percent": "3"}).status_code == 303
    assert db.session.get(Setting, "fees").value["wos_fee_cents"] == 2500


def test_posts_without_csrf_are_refused(client, card_customer_user):
    response = client.post("/portal/requests/new", data=FORM, csrf=False)
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(CertificateRequest.id))) == 0


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b"\"x\"", b"{", b"\xff\xfe", json.dumps({"type": "coi", "holder": "x"}).encode(),
    json.dumps({"type": "coi", "holder": {"name": "\u0000"}}).encode(),
    json.dumps({"type": "coi", "customer_id": 10 ** 30, "holder": {}}).encode(),
    json.dumps({"type": {"a": 1}, "holder": {"name": ["x"], "zip": 78701}, "project": []}).encode(),
])
def test_api_garbage(client, make, body):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    headers, user = token_for(make, Role.CUSTOMER, customer)
    before = stored()
    response = client.post("/api/v1/certificate-requests", data=body, csrf=False,
                           headers={**headers, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and response.is_json and response.json["error"], response.data[:300]
    assert stored() == before


def test_api_garbage_idempotency_key_and_huge_id(client, make):
    customer = make.customer(payment_method=PaymentMethod.ACH)
    headers, user = token_for(make, Role.CUSTOMER, customer)
    body = {"type": "coi", "holder": {"name": "H", "email": "h@example.com", "phone": "5125550100", "address": "1 A",
                                      "city": "Austin", "state": "TX", "zip": "78701"}}
    response = client.post("/api/v1/certificate-requests", json=body, csrf=False,
                           headers={**headers, "Idempotency-Key": "k" * 81})
    assert response.status_code == 422 and "Idempotency-Key" in response.json["fields"]
    response = client.post("/api/v1/certificate-requests", json=body, csrf=False,
                           headers={**headers, "Idempotency-Key": "a\tb"})
    assert response.status_code == 201
    assert client.get(f"/api/v1/certificate-requests/{HUGE}", headers=headers).status_code == 404
