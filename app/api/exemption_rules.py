"""JSON API: the state exemption rules table and one exemption certificate with its checks."""

from __future__ import annotations

from typing import Literal

from flask import jsonify
from pydantic import ConfigDict, Field

from app.api import bp
from app.api.auth import api_requires, customer_visible, error
from app.api.contract import UNAUTHORIZED, Out, ok, operation, path_id, refused
from app.api.exemptions import ExemptionCertificateBase, Source, certificate_json
from app.exemptions import rules
from app.extensions import db
from app.models import ExemptionCertificate


class ExemptionRule(Out):
    state: str = Field(pattern="^[A-Z]{2}$")
    name: str = ""
    sales_tax: bool
    accepts_mtc: bool
    accepts_sst: bool
    reasons: list[str]
    state_id_required: bool
    validity: dict = Field(description="reason (or `default`) -> {years | inactive_months, text}")
    source: Source
    override: dict | None = Field(None, description="the admin override in force: changes, note, by, at, version")


class ExemptionRules(Out):
    version: str
    rules: list[ExemptionRule]


class ExemptionCheck(Out):
    rule: str
    state: str | None
    result: Literal["pass", "fail", "review"]
    evidence: str
    source: Source


class ExemptionCertificateOut(ExemptionCertificateBase):
    model_config = ConfigDict(title="ExemptionCertificate")
    customer_id: int
    checks: list[ExemptionCheck]


FORBIDDEN = {403: refused("The role may not see the dashboard")}


@bp.route("/exemption-rules")
@api_requires("view_dashboard")
@operation("GET", "/exemption-rules",
           summary="The state exemption rules table (every state and DC), with sources and admin overrides",
           replies={200: ok(ExemptionRules, "The table"), **UNAUTHORIZED, **FORBIDDEN})
def list_exemption_rules():
    table = rules.rules_table()
    return jsonify({"version": rules.repository_table()["version"],
                    "rules": [table[s].as_json() for s in sorted(table)]})


@bp.route("/exemption-rules/<string:state>")
@api_requires("view_dashboard")
@operation("GET", "/exemption-rules/{state}", summary="One state's exemption rules",
           params=[{"name": "state", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"}}],
           replies={200: ok(ExemptionRule, "The rule"), **UNAUTHORIZED, **FORBIDDEN, 404: refused("Unknown state")})
def get_exemption_rule(state: str):
    rule = rules.rule_for(state.strip().upper()) if len(state) <= 2 else None
    if rule is None:
        return error("No rules for this state: use a two-letter US state code (or DC).", 404)
    return jsonify(rule.as_json())


@bp.route("/exemption-certificates/<int(max=2147483647):certificate_id>")
@api_requires("view_dashboard")
@operation("GET", "/exemption-certificates/{id}", params=[path_id()],
           summary="One exemption certificate as the lookup shows it, with its status and state rule checks",
           replies={200: ok(ExemptionCertificateOut, "The certificate"), **UNAUTHORIZED, **FORBIDDEN,
                    404: refused("Not found (or another customer's)")})
def get_exemption_certificate(certificate_id: int):
    cert = db.session.get(ExemptionCertificate, certificate_id)
    if cert is None or not customer_visible(cert.customer_id):
        return error("Not found.", 404)
    return jsonify(certificate_detail_json(cert))


def certificate_detail_json(cert: ExemptionCertificate) -> dict:
    return {**certificate_json(cert), "customer_id": cert.customer_id,
            "checks": [{"rule": c["rule"], "state": c.get("state"), "result": c["result"],
                        "evidence": c["evidence"], "source": c.get("source") or {}} for c in (cert.checks or [])]}
