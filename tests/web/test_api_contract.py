"""The API against its own OpenAPI document, as schemathesis sees it.

Schemathesis reads ``/api/v1/openapi.json`` (generated from the request and response models), generates
valid and invalid requests for every operation and sends them to the app through WSGI, with a valid admin
token, on a database seeded with a customer, a policy, an exemption request and a certificate request.
Every check runs (no 5xx, documented status codes, content types, headers and bodies, invalid data
refused, valid data accepted). Bounded: a few derandomized examples per operation and mode.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig

from app.cli import create_api_token
from app.enums import Role
from app.extensions import db

EXAMPLES = 6
BOUNDED = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))

# Operations whose valid-looking requests may still be refused with 422 by a rule JSON Schema cannot state.
# Each is a business rule of the service behind the operation, not a gap in the document.
RULES_BEYOND_THE_SCHEMA = {
    "POST /api/v1/audit-packs": "the last day on or after the first, at most ten years apart",
    "GET /api/v1/metrics": "to on or after from, at most ten years apart",
    "POST /api/v1/certificate-requests": "a staff token must name the customer; the holder e-mail's domain must "
                                         "be real (e-mail validation)",
    "POST /api/v1/exemption-requests": "the customer must exist (the field message names it); the e-mail's "
                                       "domain must be real",
    "POST /api/v1/customers/{id}/users": "the e-mail's domain must be real",
    "POST /api/v1/customers": "contact e-mail / phone must be real ones; a program id must exist",
    "PATCH /api/v1/customers/{id}": "a status other than active needs a reason; a program id must exist",
    "POST /api/v1/customers/{id}/policies": "the insurer must exist, dates in order, limits named for the line, "
                                            "no overlapping terms",
    "PATCH /api/v1/policies/{id}": "the insurer must exist, dates in order, limits named for the line",
    "POST /api/v1/webhook-endpoints": "the URL must be https and resolve to a public address",
    "PATCH /api/v1/webhook-endpoints/{id}": "the URL must be https and resolve to a public address",
}


def _config() -> SchemathesisConfig:
    # Unknown query parameters are ignored, not refused (a client's cache-busting "_=" must not break it),
    # so schemathesis is told not to expect their rejection.
    return SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}, "operations": [
        {"include-name": name, "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
        for name in RULES_BEYOND_THE_SCHEMA]})


@pytest.fixture
def seeded(app, make):
    admin = make.user(Role.ADMIN, email="contract-admin@example.com")
    customer = make.customer()
    make.exemption_request(customer=customer)
    token = create_api_token(admin)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_every_operation_conforms_to_the_document(app, seeded):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=_config())
    checks = CHECKS.get_all()
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 38
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                case.call_and_validate(headers=seeded, checks=checks)

            try:
                run()
            except BaseException as exc:  # noqa: BLE001 - every operation's findings are listed together
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _document(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def test_every_api_route_and_method_is_in_the_document(app, client):
    doc = _document(client)
    documented = {(m.upper(), re.sub(r"\{[^}]+\}", "{}", p)) for p, ops in doc["paths"].items() for m in ops}
    routes = {(method, re.sub(r"<[^>]+>", "{}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented


def test_the_document_is_as_strict_as_the_checks(client):
    """The findings that started this: each constraint the API enforces is in the document."""
    doc = _document(client)
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    listing = {p["name"]: p["schema"] for p in paths["/api/v1/certificate-requests"]["get"]["parameters"]}
    assert listing["page"]["minimum"] == 1 and listing["page"]["maximum"] == 1_000_000
    assert listing["per_page"]["maximum"] == 100 and listing["customer_id"]["minimum"] == 1
    assert schemas["CertificateRequestInput"]["properties"]["customer_id"]["minimum"] == 1
    lookup = {p["name"]: p for p in paths["/api/v1/customers/{customer_id}/exemptions"]["get"]["parameters"]}
    assert lookup["jurisdiction"]["required"] and re.fullmatch(lookup["jurisdiction"]["schema"]["pattern"], "tx")
    assert not re.fullmatch(lookup["jurisdiction"]["schema"]["pattern"], "QQ")
    holder = schemas["Holder"]
    assert all(holder["properties"][f].get("minLength") == 1 for f in holder["required"])
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op["security"] == [{"bearer": []}] and "401" in op["responses"], (method, path)
            for status, answer in op["responses"].items():
                if status.startswith("4"):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                        ("/Error", "/ValidationError")), (method, path, status)


def test_refusals_use_the_models_messages(client, make):
    from tests.web.test_api_certificate_requests import token_for

    headers, _ = token_for(make)
    answer = client.get("/api/v1/certificate-requests", query_string={"page": "0", "per_page": "²"}, headers=headers)
    assert answer.status_code == 422 and answer.get_json() == {"error": "Some fields are not valid.", "fields": {
        "page": "page must be a whole number from 1 to 1000000.",
        "per_page": "per_page must be a whole number from 1 to 100."}}
    answer = client.get("/api/v1/customers/1/exemptions", query_string={"jurisdiction": "QQ"}, headers=headers)
    assert answer.status_code in (404, 422)
    customer = make.customer()
    db.session.commit()
    answer = client.get(f"/api/v1/customers/{customer.id}/exemptions", query_string={"jurisdiction": "QQ"},
                        headers=headers)
    assert answer.get_json()["fields"] == {"jurisdiction": "Use a two-letter US state code (or DC)."}
    answer = client.post("/api/v1/programs", json={"name": 8183, "peo": "maybe", "colour": "red"}, headers=headers)
    assert answer.status_code == 422 and answer.get_json()["fields"] == {
        "name": "Name must be text.", "peo": "PEO-style must be yes or no.", "colour": "Unknown field."}
    assert client.patch("/api/v1/policies/99999999999", json={}, headers=headers).status_code == 404
