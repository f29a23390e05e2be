"""JSON API: certificate-of-insurance requests (mobile app)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request, url_for
from sqlalchemy.orm import selectinload

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, customer_visible, error
from app.enums import RequestSource, RequestType, Role
from app.extensions import db
from app.insurance import intake
from app.models import CertificateRequest, Customer, IssuedCertificate
from app.models.base import utcnow
from app.storage import certificate_download

# API body name -> service field name
HOLDER_MAP = {"name": "holder_name", "email": "holder_email", "phone": "holder_phone", "address": "holder_address",
              "city": "holder_city", "state": "holder_state", "zip": "holder_zip"}
PROJECT_MAP = {"name": "project_name", "location": "project_location", "duration": "project_duration",
               "contract_details": "contract_details"}
API_NAMES = {**{v: f"holder.{k}" for k, v in HOLDER_MAP.items()},
             **{v: f"project.{k}" for k, v in PROJECT_MAP.items()},
             "description": "description", "instructions": "instructions", "type": "type"}


def _invalid(fields: dict[str, str]):
    return error("Some fields are not valid.", 422, fields=fields)


def _parse_body(body) -> tuple[dict, dict[str, str]]:
    """Flatten the JSON body into service fields; shape errors (not values) are reported here."""
    errors: dict[str, str] = {}
    fields: dict = {}
    if not isinstance(body, dict):
        return {}, {"body": "Send a JSON object."}
    for key, mapping in (("holder", HOLDER_MAP), ("project", PROJECT_MAP)):
        part = body.get(key)
        if part is None:
            part = {}
        if not isinstance(part, dict):
            errors[key] = f"{key} must be an object."
            continue
        for name, field in mapping.items():
            fields[field] = part.get(name)
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


MAX_PER_PAGE = 100


def _int_arg(name: str, default: int | None, low: int, high: int) -> tuple[int | None, str | None]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default, None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        return None, f"{name} must be a whole number from {low} to {high}."
    return int(raw), None


@bp.route("/certificate-requests", methods=["GET"])
@api_requires("authenticated")
def list_certificate_requests():
    """A customer token: its own customer's requests; staff: all, or one customer's with ``customer_id``."""
    user = api_user()
    page, bad_page = _int_arg("page", 1, 1, 1_000_000)
    per_page, bad_size = _int_arg("per_page", 25, 1, MAX_PER_PAGE)
    customer_id, bad_customer = _int_arg("customer_id", None, 1, 2**31 - 1)
    problems = {k: v for k, v in (("page", bad_page), ("per_page", bad_size), ("customer_id", bad_customer)) if v}
    if problems:
        return _invalid(problems)
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
def get_certificate(certificate_id: int):
    """One issued certificate: number, revision, state now (current / superseded / cancelled / expired) and
    the public verification URL printed on it as a QR code."""
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return _certificate_json(cert)


@bp.route("/certificates/<int(max=2147483647):certificate_id>/pdf")
@api_requires("authenticated")
def certificate_pdf(certificate_id: int):
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return certificate_download(cert) or error("The certificate file is missing.", 404)


@bp.route("/certificate-requests", methods=["POST"])
@api_requires("submit_coi")
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
    except intake.IdempotencyMismatch as exc:
        return error(str(exc), 422, fields={"Idempotency-Key": "Already used for a different request."},
                     request_id=exc.request.id)
    if replay is not None:  # an exact retry: the first answer again, nothing created or charged
        return jsonify({"id": replay.id, "status": replay.status.value}), 200
    try:
        req = intake.submit_certificate_request(
            customer, type=kind, source=RequestSource.API, fields=fields, actor=user, now=utcnow(),
            idempotency_key=key or None)
    except intake.RequestInvalid as exc:
        return _invalid({API_NAMES.get(k, k): v for k, v in exc.errors.items()})
    except intake.NotEligible as exc:
        db.session.commit()
        return error(str(exc), 403)
    except intake.PaymentDeclined:
        db.session.commit()
        return error(intake.PAYMENT_FAILED, 402)
    except intake.PaymentUnavailable as exc:
        db.session.commit()
        return error(str(exc), 503)
    db.session.commit()
    return jsonify({"id": req.id, "status": req.status.value}), 201


@bp.route("/certificate-requests/<int(max=2147483647):request_id>")
@api_requires("authenticated")
def get_certificate_request(request_id: int):
    req = db.session.get(CertificateRequest, request_id)
    if req is None or not customer_visible(req.customer_id):
        return error("Not found.", 404)
    return jsonify(_request_json(req))


# -- OpenAPI ---------------------------------------------------------------------------------------

_STR = {"type": "string"}
OPENAPI_SCHEMAS["Holder"] = {
    "type": "object",
    "required": ["name", "email", "phone", "address", "city", "state", "zip"],
    "properties": {
        "name": {"type": "string", "maxLength": 200}, "email": {"type": "string", "format": "email"},
        "phone": {"type": "string", "description": "10-digit US number (ASCII digits)"},
        "address": {"type": "string", "maxLength": 200},
        "city": {"type": "string", "maxLength": 100},
        "state": {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "US state code or DC"},
        "zip": {"type": "string", "pattern": r"^[0-9]{5}(-[0-9]{4})?$"},
    },
}
OPENAPI_SCHEMAS["Project"] = {
    "type": "object",
    "description": "Required (all four fields) for type coi_wos.",
    "properties": {"name": {"type": "string", "maxLength": 200}, "location": {"type": "string", "maxLength": 300},
                   "duration": {"type": "string", "maxLength": 120}, "contract_details": {"type": "string"}},
}
OPENAPI_SCHEMAS["CertificateRequestInput"] = {
    "type": "object",
    "required": ["type", "holder"],
    "properties": {
        "customer_id": {"type": "integer", "description": "Optional for a customer user's token (its own customer)."},
        "type": {"type": "string", "enum": [t.value for t in RequestType]},
        "holder": {"$ref": "#/components/schemas/Holder"},
        "description": {"type": "string", "description": "Description of operations (optional)."},
        "project": {"$ref": "#/components/schemas/Project"},
        "instructions": {"type": "string", "description": "Special instructions: the request goes to staff."},
    },
}
OPENAPI_SCHEMAS["CertificateRequestCreated"] = {
    "type": "object", "required": ["id", "status"],
    "properties": {"id": {"type": "integer"}, "status": {"type": "string", "enum": ["new"]}},
}
OPENAPI_SCHEMAS["CertificateRequest"] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "customer_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["new", "in_progress", "completed", "rejected", "cancelled"]},
        "type": {"type": "string", "enum": [t.value for t in RequestType]},
        "source": {"type": "string", "enum": ["portal", "api", "internal"]},
        "created_at": {"type": "string", "format": "date-time"}, "fee_cents": {"type": "integer"},
        "holder": {"type": "object"}, "rejection_reason": {"type": ["string", "null"]},
        "certificates": {"type": "array", "items": {"$ref": "#/components/schemas/IssuedCertificate"}},
    },
}
OPENAPI_SCHEMAS["IssuedCertificate"] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "certificate_number": _STR, "kind": {"type": "string",
                                                                       "enum": [t.value for t in RequestType]},
        "revision": {"type": "integer"}, "is_current": {"type": "boolean"}, "holder_name": _STR,
        "issued_at": {"type": ["string", "null"], "format": "date-time"}, "filename": _STR,
        "download_url": {"type": "string", "format": "uri",
                         "description": "GET with the same bearer token: the PDF (attachment)."},
        "verification_url": {"type": ["string", "null"], "format": "uri",
                             "description": "The public verify page printed on the certificate as a QR code "
                                            "(null for certificates issued before verification existed)."},
        "status": {"type": "string", "enum": ["current", "superseded", "cancelled", "expired"],
                   "description": "Its state now: current; superseded by a later revision; a policy on it "
                                  "cancelled; or a policy on it expired."},
    },
}
OPENAPI_SCHEMAS["CertificateRequestPage"] = {
    "type": "object", "required": ["items", "page", "per_page", "total", "next_page"],
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/CertificateRequest"}},
                   "page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"},
                   "next_page": {"type": ["integer", "null"]}},
}
OPENAPI_SCHEMAS["ValidationError"] = {
    "type": "object", "required": ["error", "fields"],
    "properties": {"error": _STR, "fields": {"type": "object", "additionalProperties": _STR,
                                             "description": "Field path (e.g. holder.zip) -> message"}},
}


def _json(ref: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


OPENAPI_PATHS["/api/v1/certificate-requests"] = {
    "post": {
        "summary": "Request a certificate of insurance (COI, COI with WOS, or proof of insurance)",
        "description": "Card / Amex customers are charged the WOS fee plus the card convenience fee before a "
                       "coi_wos request exists. Send an Idempotency-Key header to make retries safe: the same "
                       "key with the same body returns the first request (200) and never charges twice; the same key "
                       "with a different body is refused (422).",
        "security": [{"bearer": []}],
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "maxLength": 80}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CertificateRequestInput"}}}},
        "responses": {
            "201": _json("CertificateRequestCreated", "Created"),
            "200": _json("CertificateRequestCreated", "An exact replay of an earlier Idempotency-Key: the first "
                                                      "request, nothing new created or charged"),
            "401": _json("Error", "Missing or invalid token"),
            "402": _json("Error", "Merchant payment failed (card declined); nothing was created"),
            "403": _json("Error", "The customer is not active (the message says why), or the role may not submit"),
            "404": _json("Error", "No such customer, or not this token's customer"),
            "422": _json("ValidationError", "Invalid fields, or the Idempotency-Key was already used with a "
                                            "different body (fields names Idempotency-Key)"),
            "503": _json("Error", "The payment service did not answer; nothing was created, retry later"),
        },
    },
    "get": {
        "summary": "Certificate requests, newest first (a customer token: its own; staff: all or one customer's)",
        "security": [{"bearer": []}],
        "parameters": [
            {"name": "customer_id", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
             "description": "Staff: only this customer's requests. A customer token: only its own id is allowed."},
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
            {"name": "per_page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 25}},
        ],
        "responses": {"200": _json("CertificateRequestPage", "One page of requests"),
                      "401": _json("Error", "Missing or invalid token"),
                      "404": _json("Error", "A customer token asked for another customer"),
                      "422": _json("ValidationError", "page, per_page or customer_id is not a valid number")},
    },
}
OPENAPI_PATHS["/api/v1/certificates/{id}"] = {
    "get": {
        "summary": "One issued certificate: number, revision, status now and its verification URL",
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("IssuedCertificate", "The certificate"),
                      "401": _json("Error", "Missing token"),
                      "404": _json("Error", "Not found (or another customer's)")},
    }
}
OPENAPI_PATHS["/api/v1/certificates/{id}/pdf"] = {
    "get": {
        "summary": "Download an issued certificate (PDF, as an attachment)",
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "The PDF", "content": {"application/pdf": {
                          "schema": {"type": "string", "format": "binary"}}}},
                      "401": _json("Error", "Missing token"),
                      "404": _json("Error", "Not found (or another customer's)")},
    }
}
OPENAPI_PATHS["/api/v1/certificate-requests/{id}"] = {
    "get": {
        "summary": "A certificate request and its status",
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("CertificateRequest", "The request"), "401": _json("Error", "Missing token"),
                      "404": _json("Error", "Not found (or another customer's)")},
    }
}
