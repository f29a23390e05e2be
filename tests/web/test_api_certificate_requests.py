"""JSON API for certificate requests: payments, eligibility, tenancy, validation and property-based tests
generated from the published OpenAPI document."""

from uuid import uuid4

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import create_api_token
from app.enums import CustomerStatus, PaymentMethod, RequestStatus, Role
from app.extensions import db
from app.models import Activity, CertificateRequest, OutboxMessage, SandboxCharge
from app.payments import DECLINE_CARD, ERROR_CARD

URL = "/api/v1/certificate-requests"
HOLDER = {"name": "Metro Transit Authority", "email": "risk@metro.example.gov", "phone": "+1 512 555 0110",
          "address": "1 Transit Way", "city": "Austin", "state": "TX", "zip": "78701"}
PROJECT = {"name": "Depot canopy", "location": "1 Transit Way", "duration": "90 days",
           "contract_details": "Contract MT-26-4"}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def token_for(make, role=Role.ADMIN, customer=None):
    user = make.user(role, customer=customer)
    token = create_api_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}, user


def body(customer, type_="coi_wos", **extra):
    return {"customer_id": customer.id, "type": type_, "holder": dict(HOLDER), "description": "Canopy work",
            "project": dict(PROJECT), "instructions": "", **extra}


def test_card_approved_201_then_get_status(client, make):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    headers, user = token_for(make, Role.CUSTOMER, customer)
    response = client.post(URL, json=body(customer), headers=headers)
    assert response.status_code == 201
    data = response.get_json()
    assert data == {"id": data["id"], "status": "new"}
    req = db.session.get(CertificateRequest, data["id"])
    assert req.source.value == "api" and req.fee_cents == 2500 and req.holder_state == "TX"
    got = client.get(f"{URL}/{data['id']}", headers=headers).get_json()
    assert got["status"] == "new" and got["type"] == "coi_wos" and got["holder"]["name"] == HOLDER["name"]
    assert count(SandboxCharge) == 1


def test_customer_token_may_omit_customer_id(client, make):
    customer = make.customer()
    headers, _ = token_for(make, Role.CUSTOMER, customer)
    payload = body(customer, "coi")
    del payload["customer_id"]
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201
    assert db.session.get(CertificateRequest, response.get_json()["id"]).customer_id == customer.id


def test_declined_card_402_nothing_created_email_and_sms(client, make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    headers, _ = token_for(make)
    response = client.post(URL, json=body(customer), headers=headers)
    assert response.status_code == 402 and response.get_json() == {"error": "Merchant payment failed"}
    assert count(CertificateRequest) == 0
    assert sorted(m.channel.value for m in db.session.scalars(sa.select(OutboxMessage))) == ["email", "sms"]


def test_error_card_retried_once_and_idempotency_key_replays(client, make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=ERROR_CARD)
    headers, _ = token_for(make)
    headers = {**headers, "Idempotency-Key": "mobile-123"}
    first = client.post(URL, json=body(customer), headers=headers)
    second = client.post(URL, json=body(customer), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert count(SandboxCharge) == 1 and count(CertificateRequest) == 1
    assert count(Activity, Activity.action == "payment_retry") == 1


def test_idempotency_key_without_fee_also_replays(client, make):
    customer = make.customer(payment_method=PaymentMethod.ACH)
    headers, _ = token_for(make)
    headers = {**headers, "Idempotency-Key": "k-1"}
    ids = {client.post(URL, json=body(customer, "coi"), headers=headers).get_json()["id"] for _ in range(3)}
    assert len(ids) == 1 and count(CertificateRequest) == 1


@pytest.mark.parametrize("method", [PaymentMethod.ACH, PaymentMethod.WIRE])
def test_ach_wire_201_without_charge(client, make, method):
    customer = make.customer(payment_method=method)
    headers, _ = token_for(make)
    assert client.post(URL, json=body(customer), headers=headers).status_code == 201
    assert count(SandboxCharge) == 0


@pytest.mark.parametrize("status", [CustomerStatus.INACTIVE, CustomerStatus.SUSPENDED])
def test_inactive_customer_403_with_reason(client, make, status):
    customer = make.customer(status=status, payment_method=PaymentMethod.CARD)
    headers, _ = token_for(make)
    response = client.post(URL, json=body(customer), headers=headers)
    assert response.status_code == 403 and f"is {status.value}" in response.get_json()["error"]
    assert count(CertificateRequest) == 0 and count(SandboxCharge) == 0
    assert count(Activity, Activity.action == "request_refused") == 1


def test_customer_token_cannot_act_or_look_at_another_customer(client, make):
    mine, other = make.customer(), make.customer()
    headers, _ = token_for(make, Role.CUSTOMER, mine)
    assert client.post(URL, json=body(other), headers=headers).status_code == 404
    theirs = CertificateRequest(customer_id=other.id, type="coi", source="portal", holder_name="Hidden")
    db.session.add(theirs)
    db.session.commit()
    response = client.get(f"{URL}/{theirs.id}", headers=headers)
    assert response.status_code == 404 and "Hidden" not in response.get_data(as_text=True)
    assert client.get(f"{URL}/999999", headers=headers).status_code == 404
    assert count(CertificateRequest) == 1


def test_roles_and_tokens(client, make):
    customer = make.customer()
    headers, _ = token_for(make, Role.PROCESSOR)
    assert client.post(URL, json=body(customer), headers=headers).status_code == 403
    assert client.post(URL, json=body(customer)).status_code == 401
    assert client.post(URL, json=body(customer), headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("payload,field", [
    ({"holder": {**HOLDER, "zip": "1234"}}, "holder.zip"),
    ({"holder": {**HOLDER, "state": "QQ"}}, "holder.state"),
    ({"holder": {**HOLDER, "email": "x"}}, "holder.email"),
    ({"holder": {**HOLDER, "phone": 5125550110}}, "holder.phone"),
    ({"holder": "Metro"}, "holder"),
    ({"project": None}, "project.name"),
    ({"type": "acord"}, "type"),
    ({"customer_id": "1"}, "customer_id"),
    ({"customer_id": True}, "customer_id"),
])
def test_422_names_the_field(client, make, payload, field):
    customer = make.customer()
    headers, _ = token_for(make)
    response = client.post(URL, json={**body(customer), **payload}, headers=headers)
    assert response.status_code == 422, response.get_json()
    data = response.get_json()
    assert data["error"] and field in data["fields"]
    assert count(CertificateRequest) == 0


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", b"\xff\xfe"])
def test_non_object_bodies_are_422(client, make, raw):
    headers, _ = token_for(make)
    response = client.post(URL, data=raw, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 422 and "body" in response.get_json()["fields"]


def test_openapi_documents_the_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/certificate-requests"]["post"]
    assert set(post["responses"]) >= {"201", "402", "403", "404", "422"}
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert "/api/v1/certificate-requests/{id}" in doc["paths"]
    assert doc["components"]["schemas"]["CertificateRequestInput"]["properties"]["type"]["enum"] == [
        "coi", "coi_wos", "poi"]


# -- property-based: bodies generated from the OpenAPI schemas ------------------------------------------------

GARBAGE = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=300),
                    st.lists(st.integers(), max_size=3),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def strategy_for(schema: dict, schemas: dict, *, valid: bool = False):
    """A hypothesis strategy for one OpenAPI schema; unless ``valid``, any value may be swapped for garbage
    and optional keys come and go."""
    if "$ref" in schema:
        return strategy_for(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, valid=valid)
    kind = schema.get("type")
    if "enum" in schema:
        base = st.sampled_from(schema["enum"])
    elif kind == "object" and "properties" in schema:
        props = schema["properties"]
        required = set(schema.get("required", [])) if not valid else set(props)
        base = st.fixed_dictionaries(
            {k: strategy_for(v, schemas, valid=valid) for k, v in props.items() if k in required},
            optional={k: strategy_for(v, schemas, valid=valid) for k, v in props.items() if k not in required})
    elif kind == "string" and schema.get("format") == "email":
        base = st.emails() if valid else st.one_of(st.emails(), st.text(max_size=40))
    elif kind == "string" and "pattern" in schema:
        base = st.from_regex(schema["pattern"], fullmatch=True)
        if not valid:
            base = st.one_of(base, st.text(max_size=12))
    elif kind == "string":
        base = st.text(min_size=1 if valid else 0, max_size=schema.get("maxLength", 300) if not valid else 60)
    elif kind == "integer":
        base = st.integers()
    else:
        base = GARBAGE
    return base if valid else st.one_of(base, base, base, GARBAGE)


@pytest.fixture
def world(app, make):
    customers = {
        "ach": make.customer(payment_method=PaymentMethod.ACH),
        "card": make.customer(payment_method=PaymentMethod.CARD),
        "decline": make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD),
        "inactive": make.customer(status=CustomerStatus.INACTIVE),
        "other": make.customer(),
    }
    headers, user = token_for(make, Role.CUSTOMER, customers["ach"])
    staff_headers, _ = token_for(make, Role.REVIEWER)
    db.session.commit()
    return {"customers": customers, "headers": headers, "staff": staff_headers}


FAST = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def _schemas(client):
    return client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]


@FAST
@given(data=st.data())
def test_property_any_schema_shaped_body_gets_a_documented_answer(client, world, data):
    schemas = _schemas(client)
    payload = data.draw(strategy_for({"$ref": "#/components/schemas/CertificateRequestInput"}, schemas))
    if isinstance(payload, dict) and data.draw(st.booleans()):
        payload["customer_id"] = data.draw(st.sampled_from(
            [c.id for c in world["customers"].values()] + [0, -1, 2**40]))
    headers = data.draw(st.sampled_from([world["headers"], world["staff"]]))
    before = count(CertificateRequest)
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code in (201, 402, 403, 404, 422), response.get_data(as_text=True)
    result = response.get_json()
    if response.status_code == 201:
        assert set(result) == {"id", "status"} and result["status"] == RequestStatus.NEW.value
        assert count(CertificateRequest) == before + 1
    else:
        assert isinstance(result["error"], str) and result["error"]
        assert count(CertificateRequest) == before
        if response.status_code == 422:
            assert isinstance(result["fields"], dict) and result["fields"]
        if response.status_code == 402:
            assert result["error"] == "Merchant payment failed"


@FAST
@given(data=st.data())
def test_property_valid_bodies_are_accepted_and_read_back(client, world, data):
    schemas = _schemas(client)
    payload = data.draw(strategy_for({"$ref": "#/components/schemas/CertificateRequestInput"}, schemas, valid=True))
    payload["customer_id"] = world["customers"]["ach"].id
    phone = r"\(?[2-9][0-9]{2}\)? ?[2-9][0-9]{2}-[0-9]{4}"
    payload["holder"]["phone"] = data.draw(st.from_regex(phone, fullmatch=True))
    payload["holder"]["state"] = data.draw(st.sampled_from(["TX", "ny", "Dc", "ca"]))
    for part in ("holder", "project"):
        for key, value in list(payload[part].items()):
            if isinstance(value, str) and key not in ("email", "zip", "state", "phone"):
                payload[part][key] = data.draw(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1,
                                                       max_size=40))
    response = client.post(URL, json=payload, headers=world["headers"])
    assert response.status_code == 201, response.get_json()
    got = client.get(f"{URL}/{response.get_json()['id']}", headers=world["headers"]).get_json()
    assert got["type"] == payload["type"] and got["holder"]["state"] == payload["holder"]["state"].upper()
    assert got["holder"]["zip"] == payload["holder"]["zip"]


# -- idempotency replays, listing, certificates ---------------------------------------------------------------

def test_same_key_same_body_200_original_different_body_422(client, make):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    headers, _ = token_for(make)
    headers = {**headers, "Idempotency-Key": "phone-42"}
    first = client.post(URL, json=body(customer), headers=headers)
    assert first.status_code == 201
    again = client.post(URL, json=body(customer, holder={**HOLDER, "state": "tx"}), headers=headers)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    changed = client.post(URL, json=body(customer, holder={**HOLDER, "name": "Someone Else LLC"}), headers=headers)
    assert changed.status_code == 422
    result = changed.get_json()
    assert "already used for request" in result["error"] and "different body" in result["error"]
    assert result["fields"] == {"Idempotency-Key": "Already used for a different request."}
    assert result["request_id"] == first.get_json()["id"]
    other_type = client.post(URL, json=body(customer, "coi"), headers=headers)
    assert other_type.status_code == 422
    garbage = client.post(URL, json=body(customer, holder={**HOLDER, "zip": "nope"}), headers=headers)
    assert garbage.status_code == 422 and "Idempotency-Key" in garbage.get_json()["fields"]
    assert count(CertificateRequest) == 1 and count(SandboxCharge) == 1
    assert db.session.get(CertificateRequest, first.get_json()["id"]).holder_name == HOLDER["name"]


def _issue(req, customer):
    from app.insurance.documents import issue_certificate
    from app.insurance.layout import HolderInfo
    from app.models.base import utcnow
    from tests.factories import tiny_pdf

    cert = issue_certificate(customer, kind=req.type, holder=HolderInfo(name=req.holder_name), actor=None,
                             now=utcnow(), request=req, uploaded_pdf=tiny_pdf("Certificate of insurance"))
    db.session.commit()
    return cert


def test_list_is_scoped_paginated_and_detail_links_the_pdf(client, make):
    mine, other = make.customer(name="Mine Co"), make.customer(name="Other Co")
    for i in range(3):
        make.queue_request(customer=mine, holder_name=f"Mine {i}")
    theirs = make.queue_request(customer=other, holder_name="Theirs")
    db.session.commit()
    cert = _issue(theirs, other)
    customer_headers, _ = token_for(make, Role.CUSTOMER, mine)
    staff_headers, _ = token_for(make, Role.PROCESSOR)

    page1 = client.get(f"{URL}?per_page=2", headers=customer_headers).get_json()
    assert (page1["total"], page1["page"], page1["per_page"], page1["next_page"]) == (3, 1, 2, 2)
    page2 = client.get(f"{URL}?per_page=2&page=2", headers=customer_headers).get_json()
    names = [r["holder"]["name"] for r in page1["items"] + page2["items"]]
    assert sorted(names) == ["Mine 0", "Mine 1", "Mine 2"] and page2["next_page"] is None
    assert client.get(f"{URL}?customer_id={other.id}", headers=customer_headers).status_code == 404
    for bad in ("page=0", "per_page=500", "customer_id=abc", "page=%D9%A1"):
        response = client.get(f"{URL}?{bad}", headers=customer_headers)
        assert response.status_code == 422 and response.get_json()["fields"], bad

    everything = client.get(URL, headers=staff_headers).get_json()
    assert everything["total"] == 4
    only_other = client.get(f"{URL}?customer_id={other.id}", headers=staff_headers).get_json()
    assert [r["holder"]["name"] for r in only_other["items"]] == ["Theirs"]
    assert client.get(URL).status_code == 401

    detail = client.get(f"{URL}/{theirs.id}", headers=staff_headers).get_json()
    [listed] = detail["certificates"]
    assert listed["certificate_number"] == cert.certificate_number
    assert listed["download_url"].endswith(f"/api/v1/certificates/{cert.id}/pdf")
    pdf = client.get(listed["download_url"].split("localhost", 1)[-1], headers=staff_headers)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"] and pdf.headers["X-Content-Type-Options"] == "nosniff"
    # a customer token: another customer's certificate does not exist, its own does
    assert client.get(f"/api/v1/certificates/{cert.id}/pdf", headers=customer_headers).status_code == 404
    assert client.get(f"/api/v1/certificates/{cert.id}/pdf").status_code == 401
    assert client.get("/api/v1/certificates/999999/pdf", headers=staff_headers).status_code == 404
    own_cert = _issue(db.session.get(CertificateRequest, page1["items"][0]["id"]), mine)
    own = client.get(f"/api/v1/certificates/{own_cert.id}/pdf", headers=customer_headers)
    assert own.status_code == 200 and own.data.startswith(b"%PDF")


def test_openapi_publishes_list_replay_and_pdf(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    requests = doc["paths"]["/api/v1/certificate-requests"]
    assert {"200", "201", "422"} <= set(requests["post"]["responses"])
    assert {p["name"] for p in requests["get"]["parameters"]} == {"customer_id", "page", "per_page"}
    assert "application/pdf" in doc["paths"]["/api/v1/certificates/{id}/pdf"]["get"]["responses"]["200"]["content"]
    assert "download_url" in doc["components"]["schemas"]["IssuedCertificate"]["properties"]


@FAST
@given(data=st.data())
def test_property_idempotency_key_replays_or_refuses(client, world, data):
    """Any key + any valid body: a replay of the same body is 200 with the same id; any change is 422."""
    schemas = _schemas(client)
    payload = data.draw(strategy_for({"$ref": "#/components/schemas/CertificateRequestInput"}, schemas, valid=True))
    payload["customer_id"] = world["customers"]["ach"].id
    payload["holder"].update(phone="512 555 0100", state="TX", email="a@example.com")
    for part in ("holder", "project"):
        for key, value in list(payload[part].items()):
            if isinstance(value, str) and key not in ("email", "zip", "state", "phone"):
                payload[part][key] = data.draw(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1,
                                                       max_size=30))
    # examples share the database: a fresh suffix keeps each example's key its own
    key = data.draw(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=40)) + uuid4().hex[:8]
    headers = {**world["headers"], "Idempotency-Key": key}
    first = client.post(URL, json=payload, headers=headers)
    assert first.status_code == 201, first.get_json()
    before = count(CertificateRequest)
    assert client.post(URL, json=payload, headers=headers).get_json() == first.get_json()
    changed = {**payload, "holder": {**payload["holder"], "name": payload["holder"]["name"] + "X"}}
    response = client.post(URL, json=changed, headers=headers)
    assert response.status_code == 422 and response.get_json()["request_id"] == first.get_json()["id"]
    assert count(CertificateRequest) == before


@FAST
@given(data=st.data())
def test_property_list_query_strings_get_a_documented_answer(client, world, data):
    doc = client.get("/api/v1/openapi.json").get_json()
    params = doc["paths"]["/api/v1/certificate-requests"]["get"]["parameters"]
    query = {p["name"]: data.draw(st.one_of(st.integers(-5, 300).map(str), st.text(max_size=6)))
             for p in params if data.draw(st.booleans())}
    headers = data.draw(st.sampled_from([world["headers"], world["staff"]]))
    response = client.get(URL, query_string=query, headers=headers)
    assert response.status_code in (200, 404, 422), response.get_data(as_text=True)
    result = response.get_json()
    if response.status_code == 200:
        assert set(result) == {"items", "page", "per_page", "total", "next_page"}
        assert len(result["items"]) <= result["per_page"] <= 100
        if headers is world["headers"]:
            assert {r["customer_id"] for r in result["items"]} <= {world["customers"]["ach"].id}
    else:
        assert isinstance(result["error"], str) and result["error"]
