"""JSON API: exemption requests and the exemption lookup."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import sqlalchemy as sa
from flask import jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, customer_visible, error
from app.exemptions import services
from app.exemptions.queries import db_id
from app.extensions import db
from app.models import Customer, ExemptionCertificate, ExemptionRequest
from app.models.base import utcnow
from app.models.idempotency import IdempotencyKey
from app.validation import US_STATES


def request_json(req: ExemptionRequest) -> dict:
    return {
        "id": req.id, "customer_id": req.customer_id, "email": req.email, "status": str(req.status),
        "sent_at": req.sent_at.isoformat(), "opened_at": req.opened_at.isoformat() if req.opened_at else None,
        "completed_at": req.completed_at.isoformat() if req.completed_at else None,
        "expires_at": req.expires_at.isoformat(),
        "certificate_id": req.certificate.id if req.certificate else None,
    }


def certificate_json(cert: ExemptionCertificate) -> dict:
    return {
        "id": cert.id, "status": str(cert.status), "reason": str(cert.reason), "form_type": str(cert.form_type),
        "purchase_type": str(cert.purchase_type), "po_number": cert.po_number or None,
        "tax_id_number": cert.tax_id_number, "effective_date": cert.effective_date.isoformat(),
        "expiration_date": cert.expiration_date.isoformat() if cert.expiration_date else None,
        "jurisdictions": [
            {"state": j.state, "state_id_number": j.state_id_number or None,
             "expiration_date": j.expires_on.isoformat() if j.expires_on else None,
             "expiration_source": "printed" if (j.expiration_date or cert.expiration_date)
             else ("state_rule" if j.rule_expiration else None)}
            for j in cert.jurisdictions
        ],
    }


@bp.route("/exemption-requests", methods=["POST"])
@api_requires("manage_exemption_requests")
def create_exemption_request():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with customer_id and email.", 422, fields={"body": "Expected a JSON object."})
    errors = {}
    customer_id = body.get("customer_id")
    customer = None
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        errors["customer_id"] = "customer_id must be an integer."
    else:
        customer = db.session.get(Customer, customer_id) if db_id(customer_id) else None
        if customer is None:
            errors["customer_id"] = "No customer with this id."
    email = body.get("email")
    if not isinstance(email, str) or not email.strip():
        errors["email"] = "An e-mail address is required."
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 80:
        errors["Idempotency-Key"] = "Use at most 80 characters."
    if errors:
        return error("Some fields are not valid.", 422, fields=errors)
    user = api_user()
    scope = f"exemption-requests:user:{user.id}"
    body_hash = hashlib.sha256(json.dumps({"customer_id": customer_id, "email": email.strip()},
                                          sort_keys=True).encode()).hexdigest()
    for attempt in range(3):
        answer = _replay(scope, key, body_hash) if key else None
        if answer is not None:
            return answer
        try:
            if key:
                # First, so a simultaneous twin with the same key collides here and waits for this one.
                marker = IdempotencyKey(scope=scope, key=key, body_hash=body_hash)
                db.session.add(marker)
                db.session.flush()
            req, _ = services.send_request(customer, email, actor=user, now=utcnow(), source="api")
            if key:
                marker.resource_id = req.id
            db.session.commit()
            return jsonify(request_json(req)), 201
        except services.InvalidData as exc:
            db.session.rollback()
            return error("Some fields are not valid.", 422, fields=exc.errors)
        except (IntegrityError, OperationalError):
            # The twin with this key committed first (a unique violation; SQLite may answer "locked"):
            # look again and answer as its replay.
            db.session.rollback()
            if not key or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _replay(scope: str, key: str, body_hash: str):
    """The answer to a retried Idempotency-Key: the first request again (200), or 422 when the key
    was used with another body. None when the key is new."""
    marker = db.session.scalar(sa.select(IdempotencyKey).filter_by(scope=scope, key=key))
    if marker is None:
        return None
    if marker.body_hash != body_hash:
        return error("This Idempotency-Key was already used for a different request.", 422,
                     fields={"Idempotency-Key": "Already used for a different request."})
    req = db.session.get(ExemptionRequest, marker.resource_id)
    return jsonify(request_json(req)), 200


@bp.route("/exemption-requests/<int:request_id>")
@api_requires("manage_exemption_requests")
def get_exemption_request(request_id: int):
    req = db.session.get(ExemptionRequest, request_id) if db_id(request_id) else None
    if req is None:
        return error("Not found.", 404)
    return jsonify(request_json(req))


@bp.route("/customers/<int:customer_id>/exemptions")
@api_requires("view_dashboard")
def customer_exemptions(customer_id: int):
    customer = db.session.get(Customer, customer_id) if db_id(customer_id) else None
    if customer is None or not customer_visible(customer_id):
        return error("Not found.", 404)
    errors = {}
    state = (request.args.get("jurisdiction") or "").strip().upper()
    if state not in US_STATES:
        errors["jurisdiction"] = "Use a two-letter US state code (or DC)."
    on_text = request.args.get("on")
    on = utcnow().date()
    if on_text:
        try:
            on = date.fromisoformat(on_text.strip())
        except ValueError:
            errors["on"] = "The date must be in the form YYYY-MM-DD."
    po = request.args.get("po")
    if po is not None and (not po.strip() or len(po) > 60):
        errors["po"] = "Give the PO or invoice number (up to 60 characters), or leave po out."
    if errors:
        return error("Some parameters are not valid.", 422, fields=errors)
    certs = services.lookup(customer_id, state, on, po=po.strip() if po else None)
    return jsonify({"customer_id": customer_id, "jurisdiction": state, "on": on.isoformat(),
                    "po": po.strip() if po else None,
                    "exempt": bool(certs), "certificates": [certificate_json(c) for c in certs]})


_bearer = [{"bearer": []}]
_err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
OPENAPI_SCHEMAS["ExemptionRequest"] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "customer_id": {"type": "integer"}, "email": {"type": "string"},
                   "status": {"type": "string", "enum": ["sent", "opened", "completed", "expired", "cancelled"]},
                   "sent_at": {"type": "string", "format": "date-time"},
                   "opened_at": {"type": ["string", "null"], "format": "date-time"},
                   "completed_at": {"type": ["string", "null"], "format": "date-time"},
                   "expires_at": {"type": "string", "format": "date-time"},
                   "certificate_id": {"type": ["integer", "null"]}},
}
OPENAPI_SCHEMAS["ExemptionLookup"] = {
    "type": "object",
    "properties": {"customer_id": {"type": "integer"}, "jurisdiction": {"type": "string"},
                   "on": {"type": "string", "format": "date"}, "exempt": {"type": "boolean"},
                   "certificates": {"type": "array", "items": {"type": "object"}}},
}
OPENAPI_PATHS["/api/v1/exemption-requests"] = {
    "post": {
        "summary": "Send an exemption certificate request link to a customer",
        "security": _bearer,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["customer_id", "email"],
            "properties": {"customer_id": {"type": "integer"}, "email": {"type": "string", "format": "email"}}}}}},
        "description": "Send an Idempotency-Key header to make retries safe: the same key with the same body "
                       "answers the first request again (200) and sends no second link.",
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "maxLength": 80}}],
        "responses": {
            "201": {"description": "Created; the link e-mail is on its way",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExemptionRequest"}}}},
            "200": {"description": "An exact replay of an earlier Idempotency-Key: the first request, nothing sent",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExemptionRequest"}}}},
            "401": {"description": "Missing or invalid token"},
            "422": {"description": "Field errors in `fields`, or the Idempotency-Key was already used with a "
                                   "different body (`fields` names Idempotency-Key)", "content": _err},
        },
    }
}
OPENAPI_PATHS["/api/v1/exemption-requests/{id}"] = {
    "get": {
        "summary": "The status of an exemption request",
        "security": _bearer,
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "The request", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ExemptionRequest"}}}},
            "404": {"description": "Not found", "content": _err}},
    }
}
OPENAPI_PATHS["/api/v1/customers/{customer_id}/exemptions"] = {
    "get": {
        "summary": "Is the customer exempt in a jurisdiction on a date?",
        "description": "Lists the active certificates covering the jurisdiction on that date "
                       "(effective date <= on <= that jurisdiction's expiration).",
        "security": _bearer,
        "parameters": [
            {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "jurisdiction", "in": "query", "required": True, "schema": {"type": "string", "example": "TX"}},
            {"name": "on", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
             "description": "Defaults to today (UTC)."},
            {"name": "po", "in": "query", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": 60},
             "description": "A PO or invoice number: single-purchase certificates count only for their own PO. "
                            "Without it only blanket certificates answer."},
        ],
        "responses": {"200": {"description": "The answer", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ExemptionLookup"}}}},
            "404": {"description": "Unknown customer", "content": _err},
            "422": {"description": "Bad jurisdiction or date", "content": _err}},
    }
}
