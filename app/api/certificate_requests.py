"""JSON API: certificate-of-insurance requests (mobile app)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from flask import jsonify, request, url_for
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlalchemy.orm import selectinload

from app.api import bp
from app.api.auth import api_requires, api_user, customer_visible, error
from app.api.contract import (
    MAX_ID,
    STATE_CODE,
    UNAUTHORIZED,
    In,
    Out,
    QueryInt,
    Reply,
    ValidationError_,
    header,
    ok,
    operation,
    parse,
    path_id,
    query_dict,
    refused,
)
from app.enums import RequestSource, RequestStatus, RequestType, Role
from app.extensions import db
from app.insurance import intake, intake_errors
from app.models import CertificateRequest, Customer, IssuedCertificate
from app.models.base import utcnow
from app.storage import certificate_download

# API body name -> service field name
HOLDER_MAP = {"name": "holder_name", "email": "holder_email", "phone": "holder_phone", "address": "holder_address",
              "city": "holder_city", "state": "holder_state", "zip": "holder_zip"}
PROJECT_MAP = {"name": "project_name", "location": "project_location", "duration": "project_duration",
               "contract_details": "contract_details"}
MAX_PER_PAGE = 100

# -- models ------------------------------------------------------------------------------------------
# The values of a request (required holder fields, e-mail, phone, state, ZIP, lengths) are checked by
# ``intake.validate_fields``, the one check the portal, staff pages and API share; the models check the
# shape and publish those rules (from the service's own constants) in the document.


def _text(max_length: int, *, required: bool = True, **schema) -> Any:
    rule = {"type": "string", "maxLength": max_length, **({"minLength": 1, "pattern": r"\S"} if required else {}),
            **schema}
    return Annotated[Any, WithJsonSchema(rule)]


def _object_or_absent(value):
    return {} if value is None else value  # null is the same as leaving the part out


class Holder(In):
    model_config = ConfigDict(json_schema_extra={"required": ["name", "email", "phone", "address", "city", "state",
                                                            "zip"]})
    name: _text(intake.MAX_LENGTHS["holder_name"]) = None
    email: _text(intake.MAX_LENGTHS["holder_email"], format="email") = None
    phone: _text(intake.MAX_LENGTHS["holder_phone"], pattern=r"^[ +().-]*(1[ +().-]*)?([0-9][ +().-]*){10}$",
                 description="10-digit US number (ASCII digits)") = None
    address: _text(intake.MAX_LENGTHS["holder_address"]) = None
    city: _text(intake.MAX_LENGTHS["holder_city"]) = None
    state: _text(intake.MAX_LENGTHS["holder_state"], pattern=STATE_CODE, description="US state code or DC") = None
    zip: _text(intake.MAX_LENGTHS["holder_zip"], pattern=r"^[0-9]{5}(-[0-9]{4})?$") = None


class Project(In):
    model_config = ConfigDict(json_schema_extra={"description": "Required (all four fields) for type coi_wos."})
    name: _text(intake.MAX_LENGTHS["project_name"], required=False) = None
    location: _text(intake.MAX_LENGTHS["project_location"], required=False) = None
    duration: _text(intake.MAX_LENGTHS["project_duration"], required=False) = None
    contract_details: _text(intake.MAX_LENGTHS["contract_details"], required=False) = None


class CertificateRequestInput(In):
    model_config = ConfigDict(json_schema_extra={"required": ["type", "holder"]})
    customer_id: Annotated[Any, WithJsonSchema({
        "type": "integer", "minimum": 1, "maximum": MAX_ID,
        "description": "Optional for a customer user's token (its own customer)."})] = None
    type: Annotated[Any, WithJsonSchema({"type": "string", "enum": [t.value for t in RequestType]})] = None
    holder: Annotated[Holder, BeforeValidator(_object_or_absent)] = Field(default_factory=Holder)
    description: _text(intake.MAX_LENGTHS["description"], required=False,
                       description="Description of operations (optional).") = None
    project: Annotated[Project, BeforeValidator(_object_or_absent)] = Field(default_factory=Project)
    instructions: _text(intake.MAX_LENGTHS["instructions"], required=False,
                        description="Special instructions: the request goes to staff.") = None
    messages = {"holder": "holder must be an object.", "project": "project must be an object."}


class CertificateRequestQuery(In):
    customer_id: QueryInt = Field(None, ge=1, le=MAX_ID, description="Staff: only this customer's requests. A "
                                  "customer token: only its own id is allowed.")
    page: QueryInt = Field(1, ge=1, le=1_000_000)
    per_page: QueryInt = Field(25, ge=1, le=MAX_PER_PAGE)
    messages = {"customer_id": f"customer_id must be a whole number from 1 to {MAX_ID}.",
                "page": "page must be a whole number from 1 to 1000000.",
                "per_page": f"per_page must be a whole number from 1 to {MAX_PER_PAGE}."}


STATUSES = Literal[tuple(s.value for s in RequestStatus)]
KINDS = Literal[tuple(t.value for t in RequestType)]


class CertificateRequestCreated(Out):
    id: int
    status: STATUSES = Field(description="new when created; a replay answers the request's status now")


class IssuedCertificateOut(Out):
    model_config = ConfigDict(title="IssuedCertificate")
    id: int
    certificate_number: str
    kind: KINDS
    revision: int
    is_current: bool
    holder_name: str
    issued_at: datetime | None
    filename: str
    download_url: str = Field(json_schema_extra={"format": "uri"},
                              description="GET with the same bearer token: the PDF (attachment).")
    verification_url: str | None = Field(description="The public verify page printed on the certificate as a QR "
                                         "code (null for certificates issued before verification existed).")
    status: Literal["current", "superseded", "cancelled", "expired"] = Field(
        description="Its state now: current; superseded by a later revision; a policy on it cancelled; or a "
                    "policy on it expired.")


class HolderOut(Out):
    name: str
    email: str
    phone: str
    address: str
    city: str
    state: str
    zip: str


class CertificateRequestOut(Out):
    model_config = ConfigDict(title="CertificateRequest")
    id: int
    customer_id: int
    status: STATUSES
    type: KINDS
    source: Literal[tuple(s.value for s in RequestSource)]
    created_at: datetime
    fee_cents: int
    holder: HolderOut
    rejection_reason: str | None
    certificates: list[IssuedCertificateOut]


class CertificateRequestPage(Out):
    items: list[CertificateRequestOut]
    page: int
    per_page: int
    total: int
    next_page: int | None


API_NAMES = {**{v: f"holder.{k}" for k, v in HOLDER_MAP.items()},
             **{v: f"project.{k}" for k, v in PROJECT_MAP.items()},
             "description": "description", "instructions": "instructions", "type": "type"}

IDEMPOTENCY_KEY = header("Idempotency-Key", {"type": "string", "maxLength": 80})


def _invalid(fields: dict[str, str]):
    return error("Some fields are not valid.", 422, fields=fields)


def _parse_body(body) -> tuple[dict, dict[str, str]]:
    """Flatten the JSON body into service fields; shape errors (not values) are reported here."""
    if not isinstance(body, dict):
        return {}, {"body": "Send a JSON object."}
    asked, errors = parse(CertificateRequestInput, body)
    if errors:
        return {}, errors
    fields: dict = {}
    for part, mapping in ((asked.holder, HOLDER_MAP), (asked.project, PROJECT_MAP)):
        for name, field in mapping.items():
            fields[field] = getattr(part, name, None)
    for name in ("description", "instructions"):
        fields[name] = body.get(name)
    return fields, errors


def _request_json(req: CertificateRequest) -> dict:
    return {
        "id": req.id, "status": req.status.value, "type": req.type.value, "customer_id": req.customer_id,
        "source": req.source.value, "created_at": req.created_at.isoformat(), "fee_cents": req.fee_cents,
        "holder": {k: getattr(req, v) for k, v in HOLDER_MAP.items()},
        "rejection_reason": req.rejection_reason or None,
        "certificates": [_certificate_json(c) for c in req.certificates],
    }


def _certificate_json(cert: IssuedCertificate) -> dict:
    from app.insurance.issuing import state_of, verify_url

    return {"id": cert.id, "certificate_number": cert.certificate_number, "kind": cert.kind.value,
            "revision": cert.revision, "is_current": cert.is_current, "holder_name": cert.holder_name,
            "issued_at": cert.created_at.isoformat() if cert.created_at else None, "filename": cert.filename,
            "download_url": url_for("api.certificate_pdf", certificate_id=cert.id, _external=True),
            "verification_url": verify_url(cert.verification_code) if cert.verification_code else None,
            "status": state_of(cert, utcnow().date()).status}


@bp.route("/certificate-requests", methods=["GET"])
@api_requires("authenticated")
@operation("GET", "/certificate-requests", query=CertificateRequestQuery,
           summary="Certificate requests, newest first (a customer token: its own; staff: all or one customer's)",
           replies={200: ok(CertificateRequestPage, "One page of requests"), **UNAUTHORIZED,
                    404: refused("A customer token asked for another customer"),
                    422: refused("page, per_page or customer_id is not a valid number", ValidationError_)})
def list_certificate_requests():
    """A customer token: its own customer's requests; staff: all, or one customer's with ``customer_id``."""
    user = api_user()
    asked, problems = parse(CertificateRequestQuery, query_dict(request.args))
    if problems:
        return _invalid(problems)
    page, per_page, customer_id = asked.page, asked.per_page, asked.customer_id
    stmt = sa.select(CertificateRequest)
    if user.role is Role.CUSTOMER:
        if customer_id is not None and customer_id != user.customer_id:
            return error("Customer not found.", 404)
        stmt = stmt.where(CertificateRequest.customer_id == user.customer_id)
    elif customer_id is not None:
        stmt = stmt.where(CertificateRequest.customer_id == customer_id)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.options(selectinload(CertificateRequest.certificates))
                              .order_by(CertificateRequest.created_at.desc(), CertificateRequest.id.desc())
                              .offset((page - 1) * per_page).limit(per_page)).all()
    return jsonify({"items": [_request_json(r) for r in rows], "page": page, "per_page": per_page, "total": total,
                    "next_page": page + 1 if page * per_page < total else None})


@bp.route("/certificates/<int(max=2147483647):certificate_id>")
@api_requires("authenticated")
@operation("GET", "/certificates/{id}", params=[path_id()],
           summary="One issued certificate: number, revision, status now and its verification URL",
           replies={200: ok(IssuedCertificateOut, "The certificate"), **UNAUTHORIZED,
                    404: refused("Not found (or another customer's)")})
def get_certificate(certificate_id: int):
    """One issued certificate: number, revision, state now (current / superseded / cancelled / expired) and
    the public verification URL printed on it as a QR code."""
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return _certificate_json(cert)


@bp.route("/certificates/<int(max=2147483647):certificate_id>/pdf")
@api_requires("authenticated")
@operation("GET", "/certificates/{id}/pdf", params=[path_id()],
           summary="Download an issued certificate (PDF, as an attachment)",
           replies={200: Reply("The PDF", media="application/pdf"), **UNAUTHORIZED,
                    404: refused("Not found (or another customer's)")})
def certificate_pdf(certificate_id: int):
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return certificate_download(cert) or error("The certificate file is missing.", 404)


@bp.route("/certificate-requests", methods=["POST"])
@api_requires("submit_coi")
@operation("POST", "/certificate-requests", body=CertificateRequestInput, params=[IDEMPOTENCY_KEY],
           summary="Request a certificate of insurance (COI, COI with WOS, or proof of insurance)",
           description="Card / Amex customers are charged the WOS fee plus the card convenience fee before a "
                       "coi_wos request exists. Send an Idempotency-Key header to make retries safe: the same key "
                       "with the same body returns the first request (200) and never charges twice; the same key "
                       "with a different body is refused (422).",
           replies={201: ok(CertificateRequestCreated, "Created"),
                    200: ok(CertificateRequestCreated, "An exact replay of an earlier Idempotency-Key: the first "
                                                       "request, nothing new created or charged"),
                    **UNAUTHORIZED,
                    402: refused("Merchant payment failed (card declined); nothing was created"),
                    403: refused("The customer is not active (the message says why), or the role may not submit"),
                    404: refused("No such customer, or not this token's customer"),
                    422: refused("Invalid fields, or the Idempotency-Key was already used with a different body "
                                 "(fields names Idempotency-Key)", ValidationError_),
                    503: refused("The payment service did not answer; nothing was created, retry later")})
def create_certificate_request():
    user = api_user()
    body = request.get_json(silent=True)
    fields, errors = _parse_body(body)
    if errors:
        return _invalid(errors)
    raw_customer = body.get("customer_id")
    if raw_customer is None and user.role is Role.CUSTOMER:
        raw_customer = user.customer_id
    if isinstance(raw_customer, bool) or not isinstance(raw_customer, int):
        return _invalid({"customer_id": "customer_id must be an integer."})
    customer = db.session.get(Customer, raw_customer) if -(2**31) < raw_customer < 2**31 else None
    if customer is None or not customer_visible(customer.id):
        return error("Customer not found.", 404)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 80:
        return _invalid({"Idempotency-Key": "Use at most 80 characters."})
    kind = body.get("type") if isinstance(body.get("type"), str) else ""
    try:
        replay = intake.replayed_request(customer, key, type=kind, fields=fields)
    except intake_errors.IdempotencyMismatch as exc:
        return error(str(exc), 422, fields={"Idempotency-Key": "Already used for a different request."},
                     request_id=exc.request.id)
    if replay is not None:  # an exact retry: the first answer again, nothing created or charged
        return jsonify({"id": replay.id, "status": replay.status.value}), 200
    try:
        req = intake.submit_certificate_request(
            customer, type=kind, source=RequestSource.API, fields=fields, actor=user, now=utcnow(),
            idempotency_key=key or None)
    except intake_errors.RequestInvalid as exc:
        return _invalid({API_NAMES.get(k, k): v for k, v in exc.errors.items()})
    except intake_errors.NotEligible as exc:
        db.session.commit()
        return error(str(exc), 403)
    except intake_errors.PaymentDeclined:
        db.session.commit()
        return error(intake_errors.PAYMENT_FAILED, 402)
    except intake_errors.PaymentUnavailable as exc:
        db.session.commit()
        return error(str(exc), 503)
    db.session.commit()
    return jsonify({"id": req.id, "status": req.status.value}), 201


@bp.route("/certificate-requests/<int(max=2147483647):request_id>")
@api_requires("authenticated")
@operation("GET", "/certificate-requests/{id}", params=[path_id()], summary="A certificate request and its status",
           replies={200: ok(CertificateRequestOut, "The request"), **UNAUTHORIZED,
                    404: refused("Not found (or another customer's)")})
def get_certificate_request(request_id: int):
    req = db.session.get(CertificateRequest, request_id)
    if req is None or not customer_visible(req.customer_id):
        return error("Not found.", 404)
    return jsonify(_request_json(req))
