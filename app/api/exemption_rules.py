"""JSON API: the state exemption rules table and one exemption certificate with its checks."""

from __future__ import annotations

from flask import jsonify

from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, customer_visible, error
from app.api.exemptions import certificate_json
from app.exemptions import rules
from app.extensions import db
from app.models import ExemptionCertificate


@bp.route("/exemption-rules")
@api_requires("view_dashboard")
def list_exemption_rules():
    table = rules.rules_table()
    return jsonify({"version": rules.repository_table()["version"],
                    "rules": [table[s].as_json() for s in sorted(table)]})


@bp.route("/exemption-rules/<string:state>")
@api_requires("view_dashboard")
def get_exemption_rule(state: str):
    rule = rules.rule_for(state.strip().upper()) if len(state) <= 2 else None
    if rule is None:
        return error("No rules for this state: use a two-letter US state code (or DC).", 404)
    return jsonify(rule.as_json())


@bp.route("/exemption-certificates/<int(max=2147483647):certificate_id>")
@api_requires("view_dashboard")
def get_exemption_certificate(certificate_id: int):
    cert = db.session.get(ExemptionCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return jsonify(certificate_detail_json(cert))


def certificate_detail_json(cert: ExemptionCertificate) -> dict:
    return {**certificate_json(cert), "customer_id": cert.customer_id,
            "checks": [{"rule": c["rule"], "state": c.get("state"), "result": c["result"],
                        "evidence": c["evidence"], "source": c.get("source") or {}} for c in (cert.checks or [])]}


_bearer = [{"bearer": []}]
_err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_source = {"type": "object", "properties": {"title": {"type": "string"}, "url": {"type": "string"}}}
OPENAPI_SCHEMAS["ExemptionRule"] = {
    "type": "object",
    "required": ["state", "sales_tax", "accepts_mtc", "accepts_sst", "reasons", "state_id_required", "validity",
                 "source"],
    "properties": {
        "state": {"type": "string", "pattern": "^[A-Z]{2}$"}, "name": {"type": "string"},
        "sales_tax": {"type": "boolean"}, "accepts_mtc": {"type": "boolean"}, "accepts_sst": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}}, "state_id_required": {"type": "boolean"},
        "validity": {"type": "object", "description": "reason (or `default`) -> {years | inactive_months, text}"},
        "source": _source,
        "override": {"type": ["object", "null"], "description": "the admin override in force: changes, note, by, "
                                                                 "at, version"},
    },
}
OPENAPI_SCHEMAS["ExemptionCheck"] = {
    "type": "object",
    "properties": {"rule": {"type": "string"}, "state": {"type": "string"},
                   "result": {"type": "string", "enum": ["pass", "fail", "review"]},
                   "evidence": {"type": "string"}, "source": _source},
}
OPENAPI_SCHEMAS["ExemptionCertificate"] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "customer_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["pending_review", "active", "rejected", "expired"]},
        "reason": {"type": "string"}, "form_type": {"type": "string"},
        "purchase_type": {"type": "string", "enum": ["blanket", "single"]},
        "po_number": {"type": ["string", "null"]}, "tax_id_number": {"type": "string"},
        "effective_date": {"type": "string", "format": "date"},
        "expiration_date": {"type": ["string", "null"], "format": "date"},
        "jurisdictions": {"type": "array", "items": {"type": "object"}},
        "checks": {"type": "array", "items": {"$ref": "#/components/schemas/ExemptionCheck"}},
    },
}
OPENAPI_PATHS["/api/v1/exemption-rules"] = {"get": {
    "summary": "The state exemption rules table (every state and DC), with sources and admin overrides",
    "security": _bearer,
    "responses": {"200": {"description": "The table", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"version": {"type": "string"}, "rules": {
            "type": "array", "items": {"$ref": "#/components/schemas/ExemptionRule"}}}}}}},
        "401": {"description": "Missing or invalid token", "content": _err}},
}}
OPENAPI_PATHS["/api/v1/exemption-rules/{state}"] = {"get": {
    "summary": "One state's exemption rules",
    "security": _bearer,
    "parameters": [{"name": "state", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"}}],
    "responses": {"200": {"description": "The rule", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ExemptionRule"}}}},
        "401": {"description": "Missing or invalid token", "content": _err},
        "404": {"description": "Unknown state", "content": _err}},
}}
OPENAPI_PATHS["/api/v1/exemption-certificates/{id}"] = {"get": {
    "summary": "One exemption certificate as the lookup shows it, with its status and state rule checks",
    "security": _bearer,
    "parameters": [{"name": "id", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}],
    "responses": {"200": {"description": "The certificate", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ExemptionCertificate"}}}},
        "401": {"description": "Missing or invalid token", "content": _err},
        "404": {"description": "Not found", "content": _err}},
}}
