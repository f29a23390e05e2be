"""JSON API: audit packs (ask for one -> 202 with its id; poll it; download the ZIP)."""

from __future__ import annotations

from datetime import date

from flask import abort, jsonify, request, url_for

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, error
from app.exemptions import audit
from app.exemptions.services import InvalidData
from app.extensions import db
from app.models import AuditPack
from app.models.base import utcnow
from app.storage import attachment_response


def pack_json(pack: AuditPack) -> dict:
    return {
        "id": pack.id, "status": str(pack.status), "from": pack.date_from.isoformat(),
        "to": pack.date_to.isoformat(), "jurisdictions": list(pack.jurisdictions), "total": pack.total,
        "done": pack.done_count, "progress": pack.percent, "error": pack.error or None,
        "download_url": url_for("api.download_audit_pack_api", pack_id=pack.id, _external=True)
        if pack.is_ready else None,
    }


def _date(body: dict, key: str, errors: dict) -> date | None:
    value = body.get(key)
    if not isinstance(value, str):
        errors[key] = f"{key} must be a date string YYYY-MM-DD."
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[key] = f"{key} must be a date in the form YYYY-MM-DD."
        return None


@bp.route("/audit-packs", methods=["POST"])
@api_requires("review_exemptions")
def create_audit_pack():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with from, to and jurisdictions.", 422,
                     fields={"body": "Expected a JSON object."})
    errors: dict[str, str] = {}
    date_from, date_to = _date(body, "from", errors), _date(body, "to", errors)
    states = body.get("jurisdictions")
    if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
        errors["jurisdictions"] = "jurisdictions must be a list of two-letter state codes."
    if errors:
        return error("Some fields are not valid.", 422, fields=errors)
    try:
        pack = audit.start_audit_pack(date_from, date_to, states, actor=api_user(), now=utcnow())
    except InvalidData as exc:
        db.session.rollback()
        return error("Some fields are not valid.", 422, fields=exc.errors)
    db.session.commit()
    return jsonify(pack_json(pack)), 202


def _pack(pack_id: int) -> AuditPack | None:
    return db.session.get(AuditPack, pack_id)


@bp.route("/audit-packs/<int(max=2147483647):pack_id>")
@api_requires("review_exemptions")
def get_audit_pack(pack_id: int):
    pack = _pack(pack_id)
    if pack is None:
        return error("Not found.", 404)
    return jsonify(pack_json(pack))


@bp.route("/audit-packs/<int(max=2147483647):pack_id>/download")
@api_requires("review_exemptions")
def download_audit_pack_api(pack_id: int):
    pack = _pack(pack_id)
    response = attachment_response(pack.file_key, pack.filename, "application/zip") if pack and pack.is_ready else None
    if response is None:
        abort(404)
    return response


_bearer = [{"bearer": []}]
_err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1,
                                                                   "maximum": 2147483647}}]
OPENAPI_SCHEMAS["AuditPack"] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "jurisdictions": {"type": "array", "items": {"type": "string"}}, "total": {"type": "integer"},
        "done": {"type": "integer"}, "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "error": {"type": ["string", "null"]}, "download_url": {"type": ["string", "null"]},
    },
}
OPENAPI_PATHS["/api/v1/audit-packs"] = {"post": {
    "summary": "Build an audit pack: every exemption certificate active in a date range in the given states",
    "security": _bearer,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["from", "to", "jurisdictions"],
        "properties": {"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
                       "jurisdictions": {"type": "array", "minItems": 1,
                                         "items": {"type": "string", "pattern": "^[A-Za-z]{2}$"}}}}}}},
    "responses": {
        "202": {"description": "Accepted; poll the pack", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/AuditPack"}}}},
        "401": {"description": "Missing or invalid token", "content": _err},
        "403": {"description": "The token's user may not review exemptions", "content": _err},
        "422": {"description": "Dates out of order, a range over 10 years, an unknown state", "content": _err}},
}}
OPENAPI_PATHS["/api/v1/audit-packs/{id}"] = {"get": {
    "summary": "An audit pack's status and progress, with download_url once done",
    "security": _bearer, "parameters": _id,
    "responses": {"200": {"description": "The pack", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/AuditPack"}}}},
        "401": {"description": "Missing or invalid token", "content": _err},
        "404": {"description": "Not found", "content": _err}},
}}
OPENAPI_PATHS["/api/v1/audit-packs/{id}/download"] = {"get": {
    "summary": "The finished audit pack (ZIP, as an attachment)",
    "security": _bearer, "parameters": _id,
    "responses": {"200": {"description": "The ZIP", "content": {"application/zip": {}}},
                  "401": {"description": "Missing or invalid token", "content": _err},
                  "404": {"description": "Not found or not ready", "content": _err}},
}}
