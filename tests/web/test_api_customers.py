"""JSON API for the business's own data: customers, policies with endorsements, insurers, programs.

The set-up test builds a working customer through the JSON API only (no factories), then requests a COI
that a real worker issues automatically, and switches the customer inactive and back.
"""

import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.cli import create_api_token
from app.enums import Role
from app.extensions import db
from app.models import Activity, Customer, IssuedCertificate, Policy

HOLDER = {"name": "Metro Transit Authority", "email": "risk@metro.example.gov", "phone": "512 555 0110",
          "address": "1 Transit Way", "city": "Austin", "state": "TX", "zip": "78701"}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def api(client, make):
    tokens = {}
    for role in (Role.ADMIN, Role.REVIEWER, Role.PROCESSOR):
        tokens[role] = {"Authorization": f"Bearer {create_api_token(make.user(role))}"}
    db.session.commit()

    class Api:
        def __call__(self, method, url, json=None, role=Role.ADMIN):
            response = client.open(f"/api/v1{url}", method=method, json=json, headers=tokens[role])
            return response.status_code, response.get_json()

    return Api()


def setup_book(api):
    status, program = api("POST", "/programs", {"name": "Contractors Select", "automation_enabled": True,
                                                "peo": False})
    assert status == 201 and program["automation_enabled"] is True and program["peo"] is False
    status, gl_insurer = api("POST", "/insurers", {"name": "Granite State Casualty Co", "naic": "10234"})
    assert status == 201 and gl_insurer["naic"] == "10234"
    status, wc_insurer = api("POST", "/insurers", {"name": "Keystone Workers Comp Fund", "naic": "40012"})
    assert status == 201
    status, customer = api("POST", "/customers", {
        "external_id": "CRM-4711", "name": "Orchard Masonry LLC", "contact_name": "Dana Orchard",
        "contact_email": "office@orchard.example.com", "contact_phone": "512-555-0100", "address": "9 Elm St",
        "city": "Austin", "state": "TX", "zip": "78702", "status": "active", "payment_method": "ach",
        "program_id": program["id"], "language": "en"})
    assert status == 201, customer
    status, gl = api("POST", f"/customers/{customer['id']}/policies", {
        "line": "general_liability", "insurer_id": gl_insurer["id"], "policy_number": "GLX-2026-77",
        "effective_date": "2026-01-01", "expiry_date": "2027-01-01", "status": "active",
        "limits": {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
        "coverage": {"form": "occurrence", "aggregate_basis": "project"},
        "endorsements": [{"kind": "additional_insured", "form_number": "CG 20 10", "holder_name": None}]})
    assert status == 201, gl
    status, wc = api("POST", f"/customers/{customer['id']}/policies", {
        "line": "workers_comp", "naic": "40012", "policy_number": "WCX-2026-78", "effective_date": "2026-01-01",
        "expiry_date": "2027-01-01", "limits": {"el_each_accident": 1_000_000},
        "endorsements": [{"kind": "waiver_of_subrogation", "form_number": "WC 00 03 13", "holder_name": None}]})
    assert status == 201, wc
    assert wc["insurer_id"] == wc_insurer["id"] and wc["endorsements"][0]["holder_name"] is None
    return customer, gl, wc


def coi(client, make, customer_id):
    headers = {"Authorization": f"Bearer {create_api_token(make.user(Role.ADVISOR))}"}
    db.session.commit()
    return client.post("/api/v1/certificate-requests", headers=headers,
                       json={"customer_id": customer_id, "type": "coi", "holder": HOLDER})


def test_set_up_through_the_api_then_status_decides_coi_requests(client, make, api, run_jobs):
    customer, gl, wc = setup_book(api)

    # Found by its customer number, with its policies.
    status, found = api("GET", "/customers?external_id=CRM-4711")
    assert status == 200 and [c["id"] for c in found["items"]] == [customer["id"]]
    status, listed = api("GET", f"/customers/{customer['id']}/policies", role=Role.PROCESSOR)
    assert status == 200 and [p["policy_number"] for p in listed["items"]] == ["GLX-2026-77", "WCX-2026-78"]

    # A COI is issued automatically, from the policies entered above.
    response = coi(client, make, customer["id"])
    assert response.status_code == 201, response.get_json()
    run_jobs()
    cert = db.session.scalar(sa.select(IssuedCertificate).where(IssuedCertificate.customer_id == customer["id"]))
    assert cert is not None
    from app.storage import get_store

    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)
    for expected in ("GLX-2026-77", "WCX-2026-78", "Granite State Casualty Co", "10234", "Orchard Masonry LLC",
                     "Metro Transit Authority"):
        assert expected in text, expected

    # Inactive with a reason: the next request is refused with that reason.
    status, changed = api("PATCH", f"/customers/{customer['id']}", {"status": "inactive"})
    assert status == 422 and "status_reason" in changed["fields"]
    status, changed = api("PATCH", f"/customers/{customer['id']}",
                          {"status": "inactive", "status_reason": "Policy premium unpaid since May"})
    assert status == 200 and changed["status"] == "inactive"
    response = coi(client, make, customer["id"])
    assert response.status_code == 403
    assert response.get_json()["error"].endswith("Reason: Policy premium unpaid since May.")

    # Back to active: accepted at once.
    status, changed = api("PATCH", f"/customers/{customer['id']}", {"status": "active"})
    assert status == 200 and changed["status_reason"] == ""
    response = coi(client, make, customer["id"])
    assert response.status_code == 201

    timeline = db.session.scalars(sa.select(Activity.message).where(
        Activity.customer_id == customer["id"], Activity.action == "customer_status_changed")).all()
    assert timeline == ["Status: active → inactive\nStatus reason: (empty) → Policy premium unpaid since May",
                        "Status: inactive → active\nStatus reason: Policy premium unpaid since May → (empty)"]


def test_patch_policy_cancels_renews_and_replaces_endorsements(api):
    customer, gl, wc = setup_book(api)
    status, renewed = api("POST", f"/customers/{customer['id']}/policies", {
        "supersedes_id": gl["id"], "policy_number": "GLX-2027-77", "effective_date": "2027-01-01",
        "expiry_date": "2028-01-01"})
    assert status == 201, renewed
    assert renewed["supersedes_id"] == gl["id"] and renewed["limits"] == gl["limits"]
    assert renewed["endorsements"][0]["form_number"] == "CG 20 10"
    status, old = api("GET", f"/policies/{gl['id']}")
    assert old["superseded_by_id"] == renewed["id"] and old["policy_number"] == "GLX-2026-77"

    status, patched = api("PATCH", f"/policies/{wc['id']}", {"status": "cancelled", "cancelled_on": "2026-09-01",
                                                             "endorsements": []})
    assert status == 200 and patched["status"] == "cancelled" and patched["cancelled_on"] == "2026-09-01"
    assert patched["endorsements"] == []
    assert not db.session.get(Policy, wc["id"]).is_in_force(__import__("datetime").date(2026, 9, 1))


@pytest.mark.parametrize("body,field,status_code", [
    ({"external_id": "CRM-4711", "name": "Dup"}, "external_id", 409),
    ({"name": "No number"}, "external_id", 422),
    ({"external_id": "N-1", "name": "X", "program_id": 424242}, "program_id", 422),
    ({"external_id": "N-1", "name": "X", "status": "closed"}, "status", 422),
    ({"external_id": "N-1", "name": "X", "zip_code": "78701"}, "zip_code", 422),
])
def test_bad_customer_bodies_store_nothing(api, body, field, status_code):
    setup_book(api)
    before = count(Customer)
    status, answer = api("POST", "/customers", body)
    assert status == status_code and field in answer["fields"], answer
    assert count(Customer) == before
    if status_code == 409:  # a retried create learns which customer has the number
        assert answer["existing_id"] == db.session.scalar(sa.select(Customer.id).where(
            Customer.external_id == "CRM-4711"))


@pytest.mark.parametrize("body,field", [
    ({"insurer_id": 999999}, "insurer_id"),
    ({"naic": "12345"}, "naic"),
    ({"expiry_date": "2025-01-01"}, "expiry_date"),
    ({"limits": {"each_occurrence": -1}}, "limits.each_occurrence"),
    ({"limits": {"each_occurrence": 10.5}}, "limits.each_occurrence"),
    ({"policy_number": "GLX-2026-77", "effective_date": "2028-01-01", "expiry_date": "2029-01-01"},
     "policy_number"),
    ({"policy_number": "GL-OVERLAP"}, "effective_date"),
    ({"endorsements": [{"kind": "additional_insured", "holder_name": ["City"]}]}, "endorsements.0.holder_name"),
    ({"endorsements": "blanket"}, "endorsements"),
])
def test_bad_policy_bodies_get_a_message_per_field_and_store_nothing(api, body, field):
    customer, gl, wc = setup_book(api)
    before = count(Policy)
    payload = {"line": "general_liability", "insurer_id": gl["insurer_id"], "policy_number": "GL-NEW",
               "effective_date": "2026-03-01", "expiry_date": "2027-03-01"}
    if field not in ("effective_date", "policy_number"):
        payload.update(effective_date="2027-01-01", expiry_date="2028-01-01")
    payload.update(body)
    if "insurer_id" not in body and "naic" in body:
        payload.pop("insurer_id")
    status, answer = api("POST", f"/customers/{customer['id']}/policies", payload)
    assert status in (409, 422) and field in answer["fields"], answer
    assert count(Policy) == before


def test_roles_non_json_and_unknown_ids(api, client):
    customer, gl, wc = setup_book(api)
    status, _ = api("POST", "/customers", {"external_id": "P-1", "name": "Processor made"}, role=Role.PROCESSOR)
    assert status == 403
    status, _ = api("POST", "/insurers", {"name": "Reviewer Ins", "naic": "55555"}, role=Role.REVIEWER)
    assert status == 403
    status, made = api("POST", "/customers", {"external_id": "R-1", "name": "Reviewer made"}, role=Role.REVIEWER)
    assert status == 201 and made["language"] == "en" and made["status"] == "active"
    status, _ = api("GET", "/insurers", role=Role.PROCESSOR)
    assert status == 200
    assert api("PATCH", "/customers/999999", {"name": "x"})[0] == 404
    assert api("PATCH", "/policies/999999", {"policy_number": "x"})[0] == 404
    response = client.post("/api/v1/customers", data="not json", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    status, answer = api("PATCH", f"/customers/{customer['id']}", ["a list"])
    assert status == 422 and answer["fields"] == {"body": "Expected a JSON object."}


def test_openapi_publishes_the_contract(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    assert set(paths["/api/v1/customers"]) == {"get", "post"}
    assert set(paths["/api/v1/customers/{id}"]) >= {"get", "patch"}
    assert set(paths["/api/v1/customers/{id}/policies"]) == {"get", "post"}
    assert "patch" in paths["/api/v1/policies/{id}"]
    assert set(paths["/api/v1/insurers"]) == {"get", "post"} == set(paths["/api/v1/programs"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["CustomerInput"]["properties"]) == {
        "external_id", "name", "contact_name", "contact_email", "contact_phone", "address", "city", "state", "zip",
        "status", "status_reason", "payment_method", "program_id", "language"}
    assert set(schemas["PolicyInput"]["properties"]) >= {
        "line", "insurer_id", "naic", "policy_number", "effective_date", "expiry_date", "status", "cancelled_on",
        "limits", "coverage", "endorsements"}
    assert set(schemas["EndorsementInput"]["properties"]) == {"kind", "form_number", "holder_name"}
    assert set(schemas["InsurerInput"]["properties"]) == {"name", "naic"}
    assert set(schemas["ProgramInput"]["properties"]) == {"name", "automation_enabled", "peo"}
    assert schemas["PolicyInput"]["properties"]["line"]["enum"] == [
        "general_liability", "automobile", "umbrella", "workers_comp", "other"]
