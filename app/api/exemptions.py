"""JSON API: exemption requests and the exemption lookup."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from flask import jsonify, request
from pydantic import BeforeValidator, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, OperationalError

from app.api import bp
from app.api.auth import api_requires, api_user, customer_visible, error
from app.api.contract import (
    UNAUTHORIZED,
    In,
    JsonInt,
    Out,
    QueryDate,
    RequiredText,
    StateCode,
    ValidationError_,
    header,
    ok,
    operation,
    parse,
    path_id,
    refused,
)
from app.exemptions import services
from app.exemptions.queries import db_id
from app.extensions import db
from app.models import Customer, ExemptionCertificate, ExemptionRequest
from app.models.base import utcnow
from app.models.idempotency import IdempotencyKey

# -- models ------------------------------------------------------------------------------------------

class ExemptionRequestInput(In):
    customer_id: JsonInt = Field(ge=1, le=2**31 - 1)
    email: RequiredText = Field(json_schema_extra={"format": "email"})
    messages = {"customer_id": {"greater_than_equal": "No customer with this id.",
                                "less_than_equal": "No customer with this id.", "*": "customer_id must be an integer."},
                "email": "An e-mail address is required."}


def _po(value):
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 60):
        raise ValueError("bad po")
    return value


class ExemptionLookupQuery(In):
    jurisdiction: StateCode = Field(examples=["TX"])
    on: QueryDate = Field(None, description="Defaults to today (UTC).")
    po: Annotated[str, BeforeValidator(_po), Field(min_length=1, max_length=60, pattern=r"\S")] = Field(
        None, description="A PO or invoice number: single-purchase certificates count only for their own PO. "
                          "Without it only blanket certificates answer.")
    messages = {"jurisdiction": "Use a two-letter US state code (or DC).",
                "on": "The date must be in the form YYYY-MM-DD.",
                "po": "Give the PO or invoice number (up to 60 characters), or leave po out."}


class ExemptionRequestOut(Out):
    model_config = ConfigDict(title="ExemptionRequest")
    id: int
    customer_id: int
    email: str
    status: Literal["sent", "opened", "completed", "expired", "cancelled"]
    sent_at: datetime
    opened_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime
    certificate_id: int | None


class Source(Out):
    title: str = ""
    url: str = ""


class Jurisdiction(Out):
    state: str
    state_id_number: str | None
    expiration_date: date | None
    expiration_source: Literal["printed", "state_rule"] | None


class ExemptionCertificateBase(Out):
    id: int
    status: Literal["pending_review", "active", "rejected", "expired"]
    reason: str
    form_type: str
    purchase_type: Literal["blanket", "single"]
    po_number: str | None
    tax_id_number: str
    effective_date: date
    expiration_date: date | None
    jurisdictions: list[Jurisdiction]


class ExemptionLookup(Out):
    customer_id: int
    jurisdiction: str
    on: date
    po: str | None
    exempt: bool
    certificates: list[ExemptionCertificateBase]


IDEMPOTENCY_KEY = header("Idempotency-Key", {"type": "string", "maxLength": 80})


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
@operation("POST", "/exemption-requests", body=ExemptionRequestInput, params=[IDEMPOTENCY_KEY],
           summary="Send an exemption certificate request link to a customer",
           description="Send an Idempotency-Key header to make retries safe: the same key with the same body "
                       "answers the first request again (200) and sends no second link.",
           replies={201: ok(ExemptionRequestOut, "Created; the link e-mail is on its way"),
                    200: ok(ExemptionRequestOut, "An exact replay of an earlier Idempotency-Key: the first request, "
                                              "nothing sent"),
                    **UNAUTHORIZED, 403: refused("The role may not send exemption requests"),
                    422: refused("Field errors in `fields` (an unknown customer too), or the Idempotency-Key was "
                                 "already used with a different body (`fields` names Idempotency-Key)",
                                 ValidationError_)})
def create_exemption_request():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with customer_id and email.", 422, fields={"body": "Expected a JSON object."})
    asked, errors = parse(ExemptionRequestInput, body)
    customer_id = body.get("customer_id")
    email = body.get("email")
    if "customer_id" not in errors:
        customer = db.session.get(Customer, customer_id)
        if customer is None:
            errors["customer_id"] = "No customer with this id."
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
@operation("GET", "/exemption-requests/{id}", params=[path_id()], summary="The status of an exemption request",
           replies={200: ok(ExemptionRequestOut, "The request"), **UNAUTHORIZED,
                    403: refused("The role may not send exemption requests"), 404: refused("Not found")})
def get_exemption_request(request_id: int):
    req = db.session.get(ExemptionRequest, request_id) if db_id(request_id) else None
    if req is None:
        return error("Not found.", 404)
    return jsonify(request_json(req))


@bp.route("/customers/<int:customer_id>/exemptions")
@api_requires("view_dashboard")
@operation("GET", "/customers/{customer_id}/exemptions", params=[path_id("customer_id")], query=ExemptionLookupQuery,
           summary="Is the customer exempt in a jurisdiction on a date?",
           description="Lists the active certificates covering the jurisdiction on that date "
                       "(effective date <= on <= that jurisdiction's expiration).",
           replies={200: ok(ExemptionLookup, "The answer"), **UNAUTHORIZED,
                    403: refused("The role may not see the dashboard"),
                    404: refused("Unknown customer (or another customer's)"),
                    422: refused("Bad jurisdiction, date or PO", ValidationError_)})
def customer_exemptions(customer_id: int):
    customer = db.session.get(Customer, customer_id) if db_id(customer_id) else None
    if customer is None or not customer_visible(customer_id):
        return error("Not found.", 404)
    asked, errors = parse(ExemptionLookupQuery, {k: request.args.get(k) for k in ("jurisdiction", "on", "po")
                                                 if k in request.args})
    if errors:
        return error("Some parameters are not valid.", 422, fields=errors)
    state, on, po = asked.jurisdiction.strip().upper(), asked.on or utcnow().date(), asked.po
    certs = services.lookup(customer_id, state, on, po=po.strip() if po else None)
    return jsonify({"customer_id": customer_id, "jurisdiction": state, "on": on.isoformat(),
                    "po": po.strip() if po else None,
                    "exempt": bool(certs), "certificates": [certificate_json(c) for c in certs]})
