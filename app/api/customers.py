"""JSON API: customers, their policies (with endorsements), insurers and programs.

For an agency or CRM system keeping CertDesk in sync. Field names are the public names of the pages
and the CSV files; the services in ``app.customers.records`` / ``app.customers.policies`` check every
value, and a refused body stores nothing (422 with ``fields`` naming each problem).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from flask import jsonify, request
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, WithJsonSchema
from sqlalchemy.exc import IntegrityError

from app.api import bp
from app.api.auth import api_requires, api_user, error
from app.api.contract import (
    STATE_CODE,
    UNAUTHORIZED,
    In,
    JsonInt,
    Out,
    QueryInt,
    Text,
    ValidationError_,
    extra_components,
    ok,
    operation,
    parse,
    path_id,
    query_dict,
    refuse,
    refused,
)
from app.customers import policies as policy_service
from app.customers import records
from app.customers.records import RecordInvalid
from app.enums import CoverageLine, CustomerStatus, EndorsementKind, Language, PaymentMethod, PolicyStatus
from app.extensions import db
from app.models import Customer, Insurer, Policy, Program
from app.models.base import utcnow

MAX_ID = 2**31 - 1
MAX_PER_PAGE = 100

# -- models ------------------------------------------------------------------------------------------
# The values (required, unique, formats, lengths, limits by line, dates in order) are checked by the
# services in ``app.customers`` that the pages and CSV imports share; the models refuse what is not JSON of
# the right type (the services also read CSV text) and publish the services' rules in the document.


def _text(max_length: int | None = None, *, required: bool = False, **schema) -> Any:
    rule = {"type": "string", **({"maxLength": max_length} if max_length else {}),
            **({"minLength": 1, "pattern": r"\S"} if required else {}), **schema}
    # null passes (the service reads it as empty: "Name is required." for a required one)
    return Annotated[Text | None, WithJsonSchema(rule if required else {"anyOf": [rule, {"type": "null"}]})]


def _choice(enum_cls) -> Any:
    return Annotated[Text | None, WithJsonSchema({"type": "string", "enum": [m.value for m in enum_cls]})]


def _labels(fields: dict[str, tuple[str, str]], kinds: dict[str, str] | None = None) -> dict[str, str]:
    """field -> the service's own message for a value of the wrong JSON type."""
    kinds = kinds or {}
    return {"*": "Unknown field.", **{key: kinds.get(key, f"{label} must be text.")
                                      for key, (_, label) in fields.items()}}


def _program(value):
    if value in (None, "") or (isinstance(value, int) and not isinstance(value, bool)):
        return value or None
    raise refuse(f"Unknown program {str(value)[:20]!r}: pick one from the program list.")


class CustomerPatch(In):
    model_config = ConfigDict(extra="forbid")
    external_id: _text(64, pattern=records.EXTERNAL_ID_RE.pattern, description="Your customer number (unique)") = None
    name: _text(200) = None
    contact_name: _text(120) = None
    contact_email: _text(254, format="email") = None
    contact_phone: _text(32) = None
    address: _text(200) = None
    city: _text(100) = None
    state: _text(40, pattern=STATE_CODE, description="Two-letter US state code") = None
    zip: _text(40, pattern=r"^[0-9]{5}(-[0-9]{4})?$") = None
    status: _choice(CustomerStatus) = None
    status_reason: _text(300, description="Required when status is inactive or suspended; shown in refusals") = None
    payment_method: _choice(PaymentMethod) = None
    program_id: Annotated[Any, BeforeValidator(_program),
                          WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]})] = None
    language: _choice(Language) = None
    messages = _labels(records.CUSTOMER_FIELDS)


class CustomerInput(CustomerPatch):
    model_config = ConfigDict(json_schema_extra={"required": ["external_id", "name"]})
    external_id: _text(64, required=True, pattern=records.EXTERNAL_ID_RE.pattern,
                       description="Your customer number (unique)") = None
    name: _text(200, required=True) = None


class CardOnFile(Out):
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class CustomerOut(Out):
    model_config = ConfigDict(title="Customer")
    id: int
    external_id: str | None
    name: str
    contact_name: str
    contact_email: str
    contact_phone: str
    address: str
    city: str
    state: str
    zip: str
    status: _choice(CustomerStatus)
    status_reason: str
    payment_method: _choice(PaymentMethod)
    program_id: int | None
    language: _choice(Language)
    card_on_file: CardOnFile | None
    created_at: datetime


class EndorsementInput(In):
    kind: _choice(EndorsementKind)
    form_number: str = Field(None, max_length=40, description="e.g. CG 20 10, WC 00 03 13")
    holder_name: str | None = Field(None, max_length=200, description="null = blanket; a name = specific to that "
                                                                      "certificate holder")


class Endorsement(Out):
    id: int
    kind: _choice(EndorsementKind)
    form_number: str
    holder_name: str | None


_LIMITS = {
    "type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": policy_service.MAX_LIMIT},
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
_DATE = {"type": "string", "format": "date"}


def _doc(schema: dict) -> Any:
    """A part whose value checks (and per-item messages) are the policy service's; documented here."""
    return Annotated[Any, WithJsonSchema(schema)]


class PolicyPatch(In):
    model_config = ConfigDict(extra="forbid")
    line: _choice(CoverageLine) = None
    insurer_id: JsonInt | None = Field(None, description="From GET /api/v1/insurers (or give naic instead)")
    naic: _text(pattern="^[0-9]{5}$") = None
    policy_number: _text(60, required=True, description="Unique per insurer and line") = None
    effective_date: _doc(_DATE) = None
    expiry_date: _doc(_DATE) = None
    status: _choice(PolicyStatus) = None
    cancelled_on: _doc({"anyOf": [_DATE, {"type": "null"}], "description": "Required when cancelled"}) = None
    limits: _doc(_LIMITS) = None
    coverage: _doc(_COVERAGE) = None
    description: _text(200) = None
    endorsements: _doc({"type": "array", "items": {"$ref": "#/components/schemas/EndorsementInput"},
                        "maxItems": policy_service.MAX_ENDORSEMENTS,
                        "description": "On PATCH the list replaces the policy's endorsements"}) = None
    messages = {"*": "Unknown field.", "line": "Line must be text.", "insurer_id": "Pick the insurer from the list "
                "(insurer_id or naic).", "naic": "NAIC number must be text.",
                "policy_number": "Policy number must be text.", "status": "Status must be text.",
                "description": "Description must be text."}


class PolicyInput(PolicyPatch):
    model_config = ConfigDict(json_schema_extra={"required": ["line", "policy_number", "effective_date",
                                                              "expiry_date"]})
    supersedes_id: JsonInt | None = Field(None, description="Renew this earlier term: insurer, line, limits, "
                                          "coverage and endorsements carry over unless given")
    messages = {**PolicyPatch.messages, "supersedes_id": "Not a policy of this customer."}


class PolicyOut(Out):
    model_config = ConfigDict(title="Policy")
    id: int
    customer_id: int
    line: _choice(CoverageLine)
    insurer_id: int | None
    insurer_name: str
    naic: str
    policy_number: str
    effective_date: date
    expiry_date: date
    status: _choice(PolicyStatus)
    cancelled_on: date | None
    limits: dict[str, int]
    coverage: dict
    description: str
    endorsements: list[Endorsement]
    supersedes_id: int | None
    superseded_by_id: int | None


class InsurerInput(In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["name", "naic"]})
    name: _text(200, required=True) = None
    naic: _text(20, required=True, pattern="^[0-9]{5}$") = None
    messages = _labels(records.INSURER_FIELDS)


class InsurerOut(Out):
    model_config = ConfigDict(title="Insurer")
    id: int
    name: str
    naic: str


class ProgramInput(In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["name"]})
    name: _text(120, required=True) = None
    automation_enabled: StrictBool = False
    peo: StrictBool = Field(False, description="PEO-style: a POI shows only the workers' comp row")
    messages = _labels(records.PROGRAM_FIELDS, {k: f"{label} must be yes or no."
                                                for k, (_, label) in records.PROGRAM_FIELDS.items() if k != "name"})


class ProgramOut(Out):
    model_config = ConfigDict(title="Program")
    id: int
    name: str
    automation_enabled: bool
    peo: bool


def _items(model: type[Out], name: str) -> type[Out]:
    return type(name, (Out,), {"__annotations__": {"items": list[model]}})


def _paged(model: type[Out], name: str) -> type[Out]:
    return type(name, (Out,), {"__annotations__": {"items": list[model], "page": int, "per_page": int, "total": int,
                                                   "next_page": int | None}})


CustomerPage = _paged(CustomerOut, "CustomerPage")
Policies = _items(PolicyOut, "Policies")
Insurers = _items(InsurerOut, "Insurers")
Programs = _items(ProgramOut, "Programs")
extra_components(EndorsementInput)

class PageQuery(In):
    page: QueryInt = Field(1, ge=1, le=1_000_000)
    per_page: QueryInt = Field(25, ge=1, le=MAX_PER_PAGE)
    messages = {"page": "page must be a whole number from 1 to 1000000.",
                "per_page": f"per_page must be a whole number from 1 to {MAX_PER_PAGE}."}


class CustomerQuery(PageQuery):
    external_id: str = Field(None, description="Your customer number: 0 or 1 customer")


class InsurerQuery(In):
    naic: str = Field(None, description="Only the insurer with this NAIC number")


ERR = {**UNAUTHORIZED, 403: refused("The token's role may not do this")}
BAD = {422: refused("Invalid body: `fields` names each problem; nothing was stored", ValidationError_)}
CONFLICT = {409: refused("A unique value (customer number, NAIC, policy number) is taken; for a customer number, "
                         "existing_id names that customer", ValidationError_)}
NOT_FOUND = {404: refused("No such record")}


def _body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _shape(model: type[In], body: dict):
    """A 422 for values of the wrong JSON type or unknown fields (None when the shape is right)."""
    _, errors = parse(model, body)
    return error("Some fields are not valid.", 422, fields=errors) if errors else None


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
    asked, problems = parse(PageQuery, query_dict(request.args))
    return (None, None, problems) if problems else (asked.page, asked.per_page, {})


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
@operation("GET", "/customers", query=CustomerQuery, summary="List customers, or find one by your customer number",
           replies={200: ok(CustomerPage, "Customers (0 or 1 with external_id)"), **ERR, **BAD})
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
@operation("POST", "/customers", body=CustomerInput, summary="Create a customer",
           replies={201: ok(CustomerOut, "Created"), **ERR, **BAD, **CONFLICT})
def create_customer():
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(CustomerInput, body)
    if refusal:
        return refusal
    try:
        customer = records.create_customer(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        taken = db.session.scalar(sa.select(Customer.id).where(Customer.external_id == str(body.get("external_id")
                                                                                          or "").strip()))
        return _refused(exc, **({"existing_id": taken} if taken else {}))
    return _commit_or_conflict() or (jsonify(customer_json(customer)), 201)


@bp.route("/customers/<int:customer_id>", methods=["GET"])
@api_requires("view_dashboard")
@operation("GET", "/customers/{id}", params=[path_id()], summary="One customer",
           replies={200: ok(CustomerOut, "The customer"), **ERR, **NOT_FOUND})
def get_customer(customer_id: int):
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    return jsonify(customer_json(customer))


@bp.route("/customers/<int:customer_id>", methods=["PATCH"])
@api_requires("manage_customers")
@operation("PATCH", "/customers/{id}", params=[path_id()], body=CustomerPatch,
           summary="Change a customer (only the fields given), including its status",
           replies={200: ok(CustomerOut, "Changed"), **ERR, **NOT_FOUND, **BAD, **CONFLICT})
def update_customer(customer_id: int):
    """Only the fields given change; ``status`` inactive / suspended needs ``status_reason``."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(CustomerPatch, body)
    if refusal:
        return refusal
    try:
        records.update_customer(customer, body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or jsonify(customer_json(customer))


# -- policies -----------------------------------------------------------------------------------------

@bp.route("/customers/<int:customer_id>/policies", methods=["GET"])
@api_requires("view_dashboard")
@operation("GET", "/customers/{id}/policies", params=[path_id()],
           summary="The customer's policies on file (every term)",
           replies={200: ok(Policies, "Policies"), **ERR, **NOT_FOUND})
def list_policies(customer_id: int):
    """Every term on file, renewed and cancelled ones included (``superseded_by_id``, ``status``)."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    return jsonify({"items": [policy_service.policy_values(p) for p in customer.policies]})


@bp.route("/customers/<int:customer_id>/policies", methods=["POST"])
@api_requires("manage_customers")
@operation("POST", "/customers/{id}/policies", params=[path_id()], body=PolicyInput,
           summary="Add a policy (or, with supersedes_id, a renewal term)",
           replies={201: ok(PolicyOut, "Created"), **ERR, **NOT_FOUND, **BAD, **CONFLICT})
def create_policy(customer_id: int):
    """A new policy; with ``supersedes_id`` it is the renewal of that term (the old one stays on file)."""
    customer = _get(Customer, customer_id)
    if customer is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(PolicyInput, body)
    if refusal:
        return refusal
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
@operation("GET", "/policies/{id}", params=[path_id()], summary="One policy",
           replies={200: ok(PolicyOut, "The policy"), **ERR, **NOT_FOUND})
def get_policy(policy_id: int):
    policy = _get(Policy, policy_id)
    if policy is None:
        return error("Not found.", 404)
    return jsonify(policy_service.policy_values(policy))


@bp.route("/policies/<int:policy_id>", methods=["PATCH"])
@api_requires("manage_customers")
@operation("PATCH", "/policies/{id}", params=[path_id()], body=PolicyPatch,
           summary="Change a policy (only the fields given); cancel with status + cancelled_on",
           replies={200: ok(PolicyOut, "Changed"), **ERR, **NOT_FOUND, **BAD, **CONFLICT})
def update_policy(policy_id: int):
    """Only the fields given change; ``endorsements`` replaces the list; cancel with ``status`` +
    ``cancelled_on``."""
    policy = _get(Policy, policy_id)
    if policy is None:
        return error("Not found.", 404)
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(PolicyPatch, body)
    if refusal:
        return refusal
    try:
        policy_service.update_policy(policy, body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or jsonify(policy_service.policy_values(policy))


# -- insurers and programs ------------------------------------------------------------------------------

@bp.route("/insurers", methods=["GET"])
@api_requires("view_dashboard")
@operation("GET", "/insurers", query=InsurerQuery, summary="The insurer list",
           replies={200: ok(Insurers, "Insurers"), **ERR})
def list_insurers():
    stmt = sa.select(Insurer).order_by(Insurer.name, Insurer.id)
    if "naic" in request.args:
        stmt = stmt.where(Insurer.naic == request.args["naic"].strip())
    return jsonify({"items": [records.insurer_values(i) for i in db.session.scalars(stmt)]})


@bp.route("/insurers", methods=["POST"])
@api_requires("manage_programs")
@operation("POST", "/insurers", body=InsurerInput, summary="Add an insurer (admin)",
           replies={201: ok(InsurerOut, "Created"), **ERR, **BAD, **CONFLICT})
def create_insurer():
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(InsurerInput, body)
    if refusal:
        return refusal
    try:
        insurer = records.create_insurer(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or (jsonify(records.insurer_values(insurer)), 201)


@bp.route("/programs", methods=["GET"])
@api_requires("view_dashboard")
@operation("GET", "/programs", summary="The programs", replies={200: ok(Programs, "Programs"), **ERR})
def list_programs():
    programs = db.session.scalars(sa.select(Program).order_by(Program.name, Program.id))
    return jsonify({"items": [records.program_values(p) for p in programs]})


@bp.route("/programs", methods=["POST"])
@api_requires("manage_programs")
@operation("POST", "/programs", body=ProgramInput, summary="Add a program (admin)",
           replies={201: ok(ProgramOut, "Created"), **ERR, **BAD, **CONFLICT})
def create_program():
    body = _body()
    if body is None:
        return _not_json()
    refusal = _shape(ProgramInput, body)
    if refusal:
        return refusal
    try:
        program = records.create_program(body, actor=api_user(), now=utcnow())
    except RecordInvalid as exc:
        return _refused(exc)
    return _commit_or_conflict() or (jsonify(records.program_values(program)), 201)
