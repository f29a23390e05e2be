"""JSON API: customers, their policies (with endorsements), insurers and programs.

For an agency or CRM system keeping CertDesk in sync. Field names are the public names of the pages
and the CSV files; the services in ``app.customers.records`` / ``app.customers.policies`` check every
value, and a refused body stores nothing (422 with ``fields`` naming each problem).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request
from sqlalchemy.exc import IntegrityError

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, error
from app.customers import policies as policy_service
from app.customers import records
from app.customers.records import RecordInvalid
from app.extensions import db
from app.models import Customer, Insurer, Policy, Program
from app.models.base import utcnow

MAX_ID = 2**31 - 1
MAX_PER_PAGE = 100


def _body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _refused(exc: RecordInvalid, **extra):
    db.session.rollback()
    duplicate = {k: v for k, v in exc.errors.items() if "already" in v}
    status = 409 if duplicate and len(duplicate) == len(exc.errors) else 422
    return error("Some fields are not valid." if status == 422 else "It exists already.", status, fields=exc.errors,
                 **(extra if status == 409 else {}))


def _not_json():
    return error("Send a JSON object.", 422, fields={"body": "Expected a JSON object."})


def _commit_or_conflict():
    """Commit; a unique key taken by a simultaneous request is a 409, not a 500."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return error("Another request changed the same record at the same time; read it again and retry.", 409)
    return None


def _get(model, object_id: int):
    return db.session.get(model, object_id) if 0 < object_id <= MAX_ID else None


def _page_args():
    page, per_page = request.args.get("page", "1").strip(), request.args.get("per_page", "25").strip()
    problems = {}
    if not (page.isascii() and page.isdigit() and 1 <= int(page) <= 1_000_000):
        problems["page"] = "page must be a whole number from 1 to 1000000."
    if not (per_page.isascii() and per_page.isdigit() and 1 <= int(per_page) <= MAX_PER_PAGE):
        problems["per_page"] = f"per_page must be a whole number from 1 to {MAX_PER_PAGE}."
    return (None, None, problems) if problems else (int(page), int(per_page), {})


def _listing(stmt, page: int, per_page: int, dump):
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.offset((page - 1) * per_page).limit(per_page)).all()
    return jsonify({"items": [dump(r) for r in rows], "page": page, "per_page": per_page, "total": total,
                    "next_page": page + 1 if page * per_page < total else None})


def customer_json(customer: Customer) -> dict:
    values = records.customer_values(customer)
    values["external_id"] = customer.external_id
    values["card_on_file"] = ({"brand": customer.card_brand, "last4": customer.card_last4,
                               "exp_month": customer.card_exp_month, "exp_year": customer.card_exp_year}
                              if customer.card_token else None)
    values["created_at"] = customer.created_at.isoformat()
    return values


# -- customers ----------------------------------------------------------------------------------------

@bp.route("/customers", methods=["GET"])
@api_requires("view_dashboard")
def list_customers():
    """All customers by name, or the one with ``external_id`` (0 or 1 items)."""
    page, per_page, problems = _page_args()
    if problems:
        return error("Some fields are not valid.", 422, fields=problems)
    stmt = sa.select(Customer).order_by(Customer.name, Customer.id)
    if "external_id" in request.args:
        stmt = stmt.where(Customer.external_id == request.args["external_id"].strip())
    return _listing(stmt, page, per_page, customer_json)


@bp.route("/customers", methods=["POST"])
@api_requires("manage_customers")
def create_customer():
    body = _body()
    if body is None:
        return _not_json()
    try:
        customer = records.create_customer(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        taken = db.session.scalar(sa.select(Customer.id).where(Customer.external_id == str(body.get("external_id")
                                                                                          or "").strip()))
        return _refused(exc, **({"existing_id": taken} if taken else {}))
    return _commit_or_conflict() or (jsonify(customer_json(customer)), 201)


@bp.route("/customers/<int:customer_id>", methods=["GET"])
@api_requires("view_dashboard")
def get_customer(customer_id: int):
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    return jsonify(customer_json(customer))


@bp.route("/customers/<int:customer_id>", methods=["PATCH"])
@api_requires("manage_customers")
def update_customer(customer_id: int):
    """Only the fields given change; ``status`` inactive / suspended needs ``status_reason``."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    try:
        records.update_customer(customer, body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or jsonify(customer_json(customer))


# -- policies -----------------------------------------------------------------------------------------

@bp.route("/customers/<int:customer_id>/policies", methods=["GET"])
@api_requires("view_dashboard")
def list_policies(customer_id: int):
    """Every term on file, renewed and cancelled ones included (``superseded_by_id``, ``status``)."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    return jsonify({"items": [policy_service.policy_values(p) for p in customer.policies]})


@bp.route("/customers/<int:customer_id>/policies", methods=["POST"])
@api_requires("manage_customers")
def create_policy(customer_id: int):
    """A new policy; with ``supersedes_id`` it is the renewal of that term (the old one stays on file)."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    body = dict(body)
    renews = body.pop("supersedes_id", None)
    try:
        if renews is not None:
            old = _get(Policy, renews) if isinstance(renews, int) and not isinstance(renews, bool) else None
            if old is None or old.customer_id != customer.id:
                raise RecordInvalid({"supersedes_id": "Not a policy of this customer."})
            policy = policy_service.renew_policy(old, body, actor=api_user(), now=utcnow())
        else:
            policy = policy_service.create_policy(customer, body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or (jsonify(policy_service.policy_values(policy)), 201)


@bp.route("/policies/<int:policy_id>", methods=["GET"])
@api_requires("view_dashboard")
def get_policy(policy_id: int):
    policy = _get(Policy, policy_id)
    if policy is None:
        return error("Not found.", 404)
    return jsonify(policy_service.policy_values(policy))


@bp.route("/policies/<int:policy_id>", methods=["PATCH"])
@api_requires("manage_customers")
def update_policy(policy_id: int):
    """Only the fields given change; ``endorsements`` replaces the list; cancel with ``status`` +
    ``cancelled_on``."""
    policy = _get(Policy, policy_id)
    if policy is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    try:
        policy_service.update_policy(policy, body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or jsonify(policy_service.policy_values(policy))


# -- insurers and programs ------------------------------------------------------------------------------

@bp.route("/insurers", methods=["GET"])
@api_requires("view_dashboard")
def list_insurers():
    stmt = sa.select(Insurer).order_by(Insurer.name, Insurer.id)
    if "naic" in request.args:
        stmt = stmt.where(Insurer.naic == request.args["naic"].strip())
    return jsonify({"items": [records.insurer_values(i) for i in db.session.scalars(stmt)]})


@bp.route("/insurers", methods=["POST"])
@api_requires("manage_programs")
def create_insurer():
    body = _body()
    if body is None:
        return _not_json()
    try:
        insurer = records.create_insurer(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or (jsonify(records.insurer_values(insurer)), 201)


@bp.route("/programs", methods=["GET"])
@api_requires("view_dashboard")
def list_programs():
    programs = db.session.scalars(sa.select(Program).order_by(Program.name, Program.id))
    return jsonify({"items": [records.program_values(p) for p in programs]})


@bp.route("/programs", methods=["POST"])
@api_requires("manage_programs")
def create_program():
    body = _body()
    if body is None:
        return _not_json()
    try:
        program = records.create_program(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or (jsonify(records.program_values(program)), 201)


# -- OpenAPI ------------------------------------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict | str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema) if isinstance(schema, str) else schema}}}


def _list_of(name: str) -> dict:
    return {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}


def _paged(name: str) -> dict:
    return {"type": "object", "properties": {
        "items": {"type": "array", "items": _ref(name)}, "page": {"type": "integer"},
        "per_page": {"type": "integer"}, "total": {"type": "integer"},
        "next_page": {"type": ["integer", "null"]}}}


ID = {"type": "integer"}
TEXT = {"type": "string"}
DATE = {"type": "string", "format": "date"}
ERR = {"401": _json("Error", "Missing or invalid token"),
       "403": _json("Error", "The token's role may not do this")}
BAD = {"422": _json("ValidationError", "Invalid body: `fields` names each problem; nothing was stored")}
CONFLICT = {"409": _json("ValidationError", "A unique value (customer number, NAIC, policy number) is taken; "
                                            "for a customer number, existing_id names that customer")}
NOT_FOUND = {"404": _json("Error", "No such record")}


def _path_id(name: str = "id") -> list:
    return [{"name": name, "in": "path", "required": True, "schema": ID}]


def _body_of(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


OPENAPI_SCHEMAS["ValidationError"] = {
    "type": "object",
    "properties": {"error": TEXT, "fields": {"type": "object", "additionalProperties": TEXT,
                                             "description": "field name -> message, e.g. limits.each_occurrence"},
                   "existing_id": {"type": "integer", "description": "409 on a taken customer number: its id"}},
}
_CUSTOMER_PROPS = {
    "external_id": {"type": "string", "maxLength": 64, "description": "Your customer number (unique)"},
    "name": {"type": "string", "maxLength": 200}, "contact_name": {"type": "string", "maxLength": 120},
    "contact_email": {"type": "string", "format": "email"}, "contact_phone": TEXT,
    "address": {"type": "string", "maxLength": 200}, "city": {"type": "string", "maxLength": 100},
    "state": {"type": "string", "description": "Two-letter US state code"}, "zip": TEXT,
    "status": {"type": "string", "enum": ["active", "inactive", "suspended"]},
    "status_reason": {"type": "string", "maxLength": 300,
                      "description": "Required when status is inactive or suspended; shown in refusals"},
    "payment_method": {"type": "string", "enum": ["card", "amex", "ach", "wire"]},
    "program_id": {"type": ["integer", "null"]}, "language": {"type": "string", "enum": ["en", "es"]},
}
OPENAPI_SCHEMAS["CustomerInput"] = {"type": "object", "required": ["external_id", "name"],
                                    "additionalProperties": False, "properties": _CUSTOMER_PROPS}
OPENAPI_SCHEMAS["CustomerPatch"] = {"type": "object", "additionalProperties": False, "properties": _CUSTOMER_PROPS}
OPENAPI_SCHEMAS["Customer"] = {"type": "object", "properties": {
    "id": ID, **_CUSTOMER_PROPS, "external_id": {"type": ["string", "null"]},
    "card_on_file": {"type": ["object", "null"], "properties": {
        "brand": TEXT, "last4": TEXT, "exp_month": ID, "exp_year": ID}},
    "created_at": {"type": "string", "format": "date-time"}}}
OPENAPI_SCHEMAS["EndorsementInput"] = {
    "type": "object", "required": ["kind"], "properties": {
        "kind": {"type": "string", "enum": ["additional_insured", "waiver_of_subrogation", "primary_noncontributory",
                                            "notice_of_cancellation"]},
        "form_number": {"type": "string", "maxLength": 40, "description": "e.g. CG 20 10, WC 00 03 13"},
        "holder_name": {"type": ["string", "null"], "maxLength": 200,
                        "description": "null = blanket; a name = specific to that certificate holder"}}}
OPENAPI_SCHEMAS["Endorsement"] = {"allOf": [{"type": "object", "properties": {"id": ID}},
                                            _ref("EndorsementInput")]}
_LIMITS = {
    "type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
    "description": "Whole dollars by the names the certificate prints. general_liability: each_occurrence, "
                   "damage_to_rented_premises, medical_expense, personal_adv_injury, general_aggregate, "
                   "products_completed_ops; automobile: combined_single_limit, bodily_injury_per_person, "
                   "bodily_injury_per_accident, property_damage; umbrella: each_occurrence, aggregate, "
                   "retention; workers_comp: el_each_accident, el_disease_each_employee, "
                   "el_disease_policy_limit; other: any lower-case name.",
}
_COVERAGE = {
    "type": "object",
    "description": "The type boxes of the line. general_liability: form (occurrence|claims_made), "
                   "aggregate_basis (policy|project|location); automobile: any_auto, owned, hired, non_owned, "
                   "scheduled (booleans); umbrella: kind (umbrella|excess), form (occurrence|claims_made); "
                   "workers_comp: per_statute, proprietor_excluded (booleans).",
}
_POLICY_PROPS = {
    "line": {"type": "string", "enum": ["general_liability", "automobile", "umbrella", "workers_comp", "other"]},
    "insurer_id": {"type": "integer", "description": "From GET /api/v1/insurers (or give naic instead)"},
    "naic": {"type": "string", "pattern": "^[0-9]{5}$"},
    "policy_number": {"type": "string", "maxLength": 60,
                      "description": "Unique per insurer and line"},
    "effective_date": DATE, "expiry_date": DATE,
    "status": {"type": "string", "enum": ["active", "cancelled"]},
    "cancelled_on": {"type": ["string", "null"], "format": "date", "description": "Required when cancelled"},
    "limits": _LIMITS, "coverage": _COVERAGE, "description": {"type": "string", "maxLength": 200},
    "endorsements": {"type": "array", "items": _ref("EndorsementInput"),
                     "description": "On PATCH the list replaces the policy's endorsements"},
}
OPENAPI_SCHEMAS["PolicyInput"] = {
    "type": "object", "required": ["line", "policy_number", "effective_date", "expiry_date"],
    "additionalProperties": False,
    "properties": {**_POLICY_PROPS, "supersedes_id": {
        "type": "integer", "description": "Renew this earlier term: insurer, line, limits, coverage and "
                                         "endorsements carry over unless given"}}}
OPENAPI_SCHEMAS["PolicyPatch"] = {"type": "object", "additionalProperties": False, "properties": _POLICY_PROPS}
OPENAPI_SCHEMAS["Policy"] = {"type": "object", "properties": {
    "id": ID, "customer_id": ID, **_POLICY_PROPS, "insurer_name": TEXT,
    "endorsements": {"type": "array", "items": _ref("Endorsement")},
    "supersedes_id": {"type": ["integer", "null"]}, "superseded_by_id": {"type": ["integer", "null"]}}}
OPENAPI_SCHEMAS["InsurerInput"] = {"type": "object", "required": ["name", "naic"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string", "maxLength": 200},
                                                  "naic": {"type": "string", "pattern": "^[0-9]{5}$"}}}
OPENAPI_SCHEMAS["Insurer"] = {"type": "object", "properties": {"id": ID, "name": TEXT, "naic": TEXT}}
OPENAPI_SCHEMAS["ProgramInput"] = {"type": "object", "required": ["name"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string", "maxLength": 120},
                                                  "automation_enabled": {"type": "boolean"},
                                                  "peo": {"type": "boolean", "description":
                                                          "PEO-style: a POI shows only the workers' comp row"}}}
OPENAPI_SCHEMAS["Program"] = {"type": "object", "properties": {
    "id": ID, "name": TEXT, "automation_enabled": {"type": "boolean"}, "peo": {"type": "boolean"}}}

_PAGE_PARAMS = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]
_SECURE = {"security": [{"bearer": []}]}

OPENAPI_PATHS["/api/v1/customers"] = {
    "get": {**_SECURE, "summary": "List customers, or find one by your customer number",
            "parameters": [{"name": "external_id", "in": "query", "schema": TEXT}, *_PAGE_PARAMS],
            "responses": {"200": _json(_paged("Customer"), "Customers (0 or 1 with external_id)"), **ERR, **BAD}},
    "post": {**_SECURE, "summary": "Create a customer", "requestBody": _body_of("CustomerInput"),
             "responses": {"201": _json("Customer", "Created"), **ERR, **BAD, **CONFLICT}},
}
OPENAPI_PATHS["/api/v1/customers/{id}"] = {
    "get": {**_SECURE, "summary": "One customer", "parameters": _path_id(),
            "responses": {"200": _json("Customer", "The customer"), **ERR, **NOT_FOUND}},
    "patch": {**_SECURE, "summary": "Change a customer (only the fields given), including its status",
              "parameters": _path_id(), "requestBody": _body_of("CustomerPatch"),
              "responses": {"200": _json("Customer", "Changed"), **ERR, **NOT_FOUND, **BAD, **CONFLICT}},
}
OPENAPI_PATHS["/api/v1/customers/{id}/policies"] = {
    "get": {**_SECURE, "summary": "The customer's policies on file (every term)", "parameters": _path_id(),
            "responses": {"200": _json(_list_of("Policy"), "Policies"), **ERR, **NOT_FOUND}},
    "post": {**_SECURE, "summary": "Add a policy (or, with supersedes_id, a renewal term)",
             "parameters": _path_id(), "requestBody": _body_of("PolicyInput"),
             "responses": {"201": _json("Policy", "Created"), **ERR, **NOT_FOUND, **BAD, **CONFLICT}},
}
OPENAPI_PATHS["/api/v1/policies/{id}"] = {
    "get": {**_SECURE, "summary": "One policy", "parameters": _path_id(),
            "responses": {"200": _json("Policy", "The policy"), **ERR, **NOT_FOUND}},
    "patch": {**_SECURE, "summary": "Change a policy (only the fields given); cancel with status + cancelled_on",
              "parameters": _path_id(), "requestBody": _body_of("PolicyPatch"),
              "responses": {"200": _json("Policy", "Changed"), **ERR, **NOT_FOUND, **BAD, **CONFLICT}},
}
OPENAPI_PATHS["/api/v1/insurers"] = {
    "get": {**_SECURE, "summary": "The insurer list", "parameters": [{"name": "naic", "in": "query", "schema": TEXT}],
            "responses": {"200": _json(_list_of("Insurer"), "Insurers"), **ERR}},
    "post": {**_SECURE, "summary": "Add an insurer (admin)", "requestBody": _body_of("InsurerInput"),
             "responses": {"201": _json("Insurer", "Created"), **ERR, **BAD, **CONFLICT}},
}
OPENAPI_PATHS["/api/v1/programs"] = {
    "get": {**_SECURE, "summary": "The programs",
            "responses": {"200": _json(_list_of("Program"), "Programs"), **ERR}},
    "post": {**_SECURE, "summary": "Add a program (admin)", "requestBody": _body_of("ProgramInput"),
             "responses": {"201": _json("Program", "Created"), **ERR, **BAD, **CONFLICT}},
}
