"""Staff pages for audit packs: ask for one, watch it build, download it. Thin: parse -> service -> commit."""

from __future__ import annotations

from datetime import date

from flask import abort, request, url_for
from flask_login import current_user

from app.auth.access import requires
from app.exemptions import audit, bp, queries
from app.exemptions.services import InvalidData
from app.extensions import db
from app.htmx import hx_redirect, render_page_or_partial, stop_polling, wants_partial
from app.models import AuditPack
from app.models.base import utcnow
from app.storage import attachment_response
from app.validation import STATE_CHOICES


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip()) if text and text.strip() else None
    except ValueError:
        return None


def _get_pack(pack_id: int) -> AuditPack:
    pack = db.session.get(AuditPack, pack_id) if queries.db_id(pack_id) else None
    if pack is None:
        abort(404)
    return pack


def _recent():
    return list(db.session.scalars(db.select(AuditPack).order_by(AuditPack.id.desc()).limit(20)))


@bp.route("/audit-packs", methods=["GET", "POST"])
@requires("review_exemptions")
def audit_packs():
    errors: dict[str, str] = {}
    form = request.form if request.method == "POST" else {}
    if request.method == "POST":
        raw_from, raw_to = form.get("from", ""), form.get("to", "")
        try:
            pack = audit.start_audit_pack(_date(raw_from), _date(raw_to), form.getlist("jurisdictions"),
                                          actor=current_user, now=utcnow())
        except InvalidData as exc:
            db.session.rollback()
            errors = dict(exc.errors)
            if raw_from.strip() and _date(raw_from) is None:
                errors["from"] = "Use the form YYYY-MM-DD."
            if raw_to.strip() and _date(raw_to) is None:
                errors["to"] = "Use the form YYYY-MM-DD."
        else:
            db.session.commit()
            return hx_redirect(url_for("exemptions.audit_pack", pack_id=pack.id))
    return render_page_or_partial("exemptions/audit_packs.html", "exemptions/_audit_pack_form.html",
                                  status=422 if errors else 200, errors=errors, form=form, states=STATE_CHOICES,
                                  chosen=form.getlist("jurisdictions") if form else [], packs=_recent())


@bp.route("/audit-packs/<int:pack_id>")
@requires("review_exemptions")
def audit_pack(pack_id: int):
    pack = _get_pack(pack_id)
    response = render_page_or_partial("exemptions/audit_pack.html", "exemptions/_audit_pack_part.html", pack=pack)
    if wants_partial() and pack.is_finished:
        return stop_polling(response)
    return response


@bp.route("/audit-packs/<int:pack_id>/download")
@requires("review_exemptions")
def download_audit_pack(pack_id: int):
    pack = _get_pack(pack_id)
    response = attachment_response(pack.file_key, pack.filename, "application/zip") if pack.is_ready else None
    if response is None:
        abort(404)
    return response
