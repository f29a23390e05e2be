"""JSON API: create a request, read its status, and the exemption lookup at the edges of the range."""

from datetime import date

import pytest
import sqlalchemy as sa

from app.cli import create_api_token
from app.enums import ExemptionCertificateStatus as CS
from app.enums import Role
from app.extensions import db
from app.models import ExemptionRequest, OutboxMessage


@pytest.fixture
def bearer(make):
    token = create_api_token(make.user(Role.ADMIN))
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_create_request_and_read_status(app, client, make, bearer, smtp, run_jobs):
    customer = make.customer()
    response = client.post("/api/v1/exemption-requests", json={"customer_id": customer.id,
                                                                "email": "api@customer.example.com"},
                           headers=bearer)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "sent" and body["customer_id"] == customer.id and body["expires_at"]
    run_jobs()
    assert len(smtp.to("api@customer.example.com")) == 1
    status = client.get(f"/api/v1/exemption-requests/{body['id']}", headers=bearer).get_json()
    assert status["status"] == "sent" and status["id"] == body["id"]
    assert client.get("/api/v1/exemption-requests/99999", headers=bearer).status_code == 404


@pytest.mark.parametrize("payload, field", [
    ({}, "customer_id"),
    ({"customer_id": "1", "email": "a@example.com"}, "customer_id"),
    ({"customer_id": 99999, "email": "a@example.com"}, "customer_id"),
    ({"customer_id": None, "email": ""}, "email"),
    ("[1, 2]", "body"),
])
def test_create_request_422_with_field_errors(app, client, make, bearer, payload, field):
    kwargs = {"data": payload, "content_type": "application/json"} if isinstance(payload, str) else {"json": payload}
    response = client.post("/api/v1/exemption-requests", headers=bearer, **kwargs)
    assert response.status_code == 422
    assert field in response.get_json()["fields"]
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 0


def test_create_request_bad_email(app, client, make, bearer):
    customer = make.customer()
    response = client.post("/api/v1/exemption-requests", json={"customer_id": customer.id, "email": "nope"},
                           headers=bearer)
    assert response.status_code == 422
    assert "e-mail" in response.get_json()["fields"]["email"]
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_api_requires_a_token(app, client):
    assert client.post("/api/v1/exemption-requests", json={}).status_code == 401


def lookup(client, bearer, customer_id, state, on):
    return client.get(f"/api/v1/customers/{customer_id}/exemptions?jurisdiction={state}&on={on}", headers=bearer)


def test_lookup_at_the_edges_of_the_date_range(app, client, make, bearer):
    customer = make.customer()
    cert = make.exemption_certificate(customer, effective=date(2026, 3, 1), expiration=date(2026, 12, 31),
                                      states=(("TX", "TX-1", date(2026, 9, 30)), ("NY", "", None)))
    cases = [
        ("TX", "2026-02-28", False),  # the day before the effective date
        ("TX", "2026-03-01", True),   # effective == D
        ("TX", "2026-09-30", True),   # the jurisdiction's own expiration == D
        ("TX", "2026-10-01", False),  # a day after TX's own date
        ("NY", "2026-12-31", True),   # NY falls back to the certificate's expiration == D
        ("NY", "2027-01-01", False),
        ("CA", "2026-06-01", False),  # not covered
    ]
    for state, on, exempt in cases:
        body = lookup(client, bearer, customer.id, state, on).get_json()
        assert body["exempt"] is exempt, (state, on)
        assert [c["id"] for c in body["certificates"]] == ([cert.id] if exempt else [])
    tx = lookup(client, bearer, customer.id, "tx", "2026-05-05").get_json()["certificates"][0]
    assert {"state": "TX", "state_id_number": "TX-1", "expiration_date": "2026-09-30",
            "expiration_source": "printed"} in tx["jurisdictions"]


@pytest.mark.parametrize("status", [CS.PENDING_REVIEW, CS.REJECTED, CS.EXPIRED])
def test_lookup_counts_only_active_certificates(app, client, make, bearer, status):
    customer = make.customer()
    make.exemption_certificate(customer, status=status, effective=date(2026, 1, 1))
    assert lookup(client, bearer, customer.id, "TX", "2026-06-01").get_json()["exempt"] is False


def test_lookup_other_customers_certificate_does_not_count(app, client, make, bearer):
    mine, other = make.customer(), make.customer()
    make.exemption_certificate(other, effective=date(2026, 1, 1))
    assert lookup(client, bearer, mine.id, "TX", "2026-06-01").get_json()["exempt"] is False


def test_lookup_errors(app, client, make, bearer):
    customer = make.customer()
    assert lookup(client, bearer, 99999, "TX", "2026-01-01").status_code == 404
    bad_state = lookup(client, bearer, customer.id, "XX", "2026-01-01")
    assert bad_state.status_code == 422 and "jurisdiction" in bad_state.get_json()["fields"]
    bad_date = lookup(client, bearer, customer.id, "TX", "2026-02-30")
    assert bad_date.status_code == 422 and "on" in bad_date.get_json()["fields"]


def test_openapi_lists_the_three_paths(app, client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/exemption-requests"]
    assert "get" in paths["/api/v1/exemption-requests/{id}"]
    assert "get" in paths["/api/v1/customers/{customer_id}/exemptions"]
