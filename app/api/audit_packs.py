"""JSON API: audit packs (ask for one -> 202 with its id; poll it; download the ZIP)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from flask import abort, jsonify, request, url_for
from pydantic import AfterValidator, ConfigDict, Field

from app.api import bp
from app.api.auth import api_requires, api_user, error
from app.api.contract import (
    STATE_CODE,
    UNAUTHORIZED,
    In,
    JsonDate,
    Out,
    Reply,
    Text,
    ValidationError_,
    ok,
    operation,
    parse,
    path_id,
    refuse,
    refused,
)
from app.exemptions import audit
from app.exemptions.services import InvalidData
from app.extensions import db
from app.models import AuditPack
from app.models.base import utcnow
from app.storage import attachment_response
from app.validation import US_STATES


def _known_state(value: str) -> str:
    if value.strip().upper() not in US_STATES:
        raise refuse(f"{value[:10]!r} is not a US state code (or DC).")
    return value


class AuditPackInput(In):
    from_: JsonDate = Field(alias="from")
    to: JsonDate
    jurisdictions: list[Annotated[Text, AfterValidator(_known_state),
                                  Field(json_schema_extra={"pattern": STATE_CODE})]] = Field(min_length=1)
    messages = {
        "from": {"not_text": "from must be a date string YYYY-MM-DD.", "missing": "from must be a date string "
                 "YYYY-MM-DD.", "*": "from must be a date in the form YYYY-MM-DD."},
        "to": {"not_text": "to must be a date string YYYY-MM-DD.", "missing": "to must be a date string YYYY-MM-DD.",
               "*": "to must be a date in the form YYYY-MM-DD."},
        "jurisdictions": {"too_short": "Choose at least one state.",
                          "*": "jurisdictions must be a list of two-letter state codes."},
    }


class AuditPackOut(Out):
    model_config = ConfigDict(title="AuditPack")
    id: int
    status: Literal["queued", "running", "done", "failed"]
    from_: date = Field(alias="from")
    to: date
    jurisdictions: list[str]
    total: int
    done: int
    progress: int = Field(ge=0, le=100)
    error: str | None
    download_url: str | None


def pack_json(pack: AuditPack) -> dict:
    return {
        "id": pack.id, "status": str(pack.status), "from": pack.date_from.isoformat(),
        "to": pack.date_to.isoformat(), "jurisdictions": list(pack.jurisdictions), "total": pack.total,
        "done": pack.done_count, "progress": pack.percent, "error": pack.error or None,
        "download_url": url_for("api.download_audit_pack_api", pack_id=pack.id, _external=True)
        if pack.is_ready else None,
    }


@bp.route("/audit-packs", methods=["POST"])
@api_requires("review_exemptions")
@operation("POST", "/audit-packs", body=AuditPackInput,
           summary="Build an audit pack: every exemption certificate active in a date range in the given states",
           replies={202: ok(AuditPackOut, "Accepted; poll the pack"), **UNAUTHORIZED,
                    403: refused("The token's user may not review exemptions"),
                    422: refused("Dates out of order, a range over 10 years, an unknown state", ValidationError_)})
def create_audit_pack():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error("Send a JSON object with from, to and jurisdictions.", 422,
                     fields={"body": "Expected a JSON object."})
    asked, errors = parse(AuditPackInput, body)
    if errors:
        return error("Some fields are not valid.", 422, fields=errors)
    try:
        pack = audit.start_audit_pack(asked.from_, asked.to, asked.jurisdictions, actor=api_user(), now=utcnow())
    except InvalidData as exc:
        db.session.rollback()
        return error("Some fields are not valid.", 422, fields=exc.errors)
    db.session.commit()
    return jsonify(pack_json(pack)), 202


def _pack(pack_id: int) -> AuditPack | None:
    return db.session.get(AuditPack, pack_id)


@bp.route("/audit-packs/<int(max=2147483647):pack_id>")
@api_requires("review_exemptions")
@operation("GET", "/audit-packs/{id}", params=[path_id()],
           summary="An audit pack's status and progress, with download_url once done",
           replies={200: ok(AuditPackOut, "The pack"), **UNAUTHORIZED, 403: refused("The token's user may not review "
                    "exemptions"), 404: refused("Not found")})
def get_audit_pack(pack_id: int):
    pack = _pack(pack_id)
    if pack is None:
        return error("Not found.", 404)
    return jsonify(pack_json(pack))


@bp.route("/audit-packs/<int(max=2147483647):pack_id>/download")
@api_requires("review_exemptions")
@operation("GET", "/audit-packs/{id}/download", params=[path_id()],
           summary="The finished audit pack (ZIP, as an attachment)",
           replies={200: Reply("The ZIP", media="application/zip"), **UNAUTHORIZED,
                    403: refused("The token's user may not review exemptions"), 404: refused("Not found or not ready")})
def download_audit_pack_api(pack_id: int):
    pack = _pack(pack_id)
    response = attachment_response(pack.file_key, pack.filename, "application/zip") if pack and pack.is_ready else None
    if response is None:
        abort(404)
    return response
