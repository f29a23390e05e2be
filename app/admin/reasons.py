"""Configuration: COI rejection reasons and the agency (producer) printed on certificates."""

from flask import abort, flash, redirect, request, url_for

from app.admin import bp
from app.auth.access import requires
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, render_page_or_partial
from app.insurance import processing
from app.insurance.processing import ActionRefused
from app.models import RejectionReason
from app.validation import InvalidInput, normalize_email, normalize_phone, normalize_state, normalize_zip


def _reasons_page(status: int = 200, **extra):
    return render_page_or_partial("admin/reasons.html", "admin/_reasons_part.html", status=status,
                                  reasons=processing.rejection_reasons(include_inactive=True),
                                  form=request.form if request.method == "POST" else {}, **extra)


def _done(toast: str):
    db.session.commit()
    if not is_htmx():
        flash(toast, "success")
        return redirect(url_for("admin.reasons"), code=303)
    return hx_trigger(_reasons_page(), "reasons-changed", toast=toast)


@bp.route("/reasons")
@requires("configure")
def reasons():
    response = _reasons_page()
    db.session.commit()  # the lazily seeded defaults
    return response


@bp.route("/reasons", methods=["POST"])
@requires("configure")
def add_reason():
    try:
        processing.add_reason(request.form.get("text", ""))
    except ActionRefused as exc:
        db.session.rollback()
        return _reasons_page(status=422, field_error=str(exc))
    return _done("Reason added.")


def _reason(reason_id: int) -> RejectionReason:
    reason = db.session.get(RejectionReason, reason_id)
    if reason is None:
        abort(404)
    return reason


@bp.route("/reasons/<int(max=2147483647):reason_id>/active", methods=["POST"])
@requires("configure")
def toggle_reason(reason_id: int):
    reason = _reason(reason_id)
    if request.form.get("active") not in ("0", "1"):
        return _reasons_page(status=422, error="Choose to deactivate or reactivate the reason.")
    active = request.form.get("active") == "1"
    processing.set_reason_active(reason, active)
    return _done("Reason reactivated." if active else "Reason deactivated: staff no longer see it.")


@bp.route("/reasons/<int(max=2147483647):reason_id>/move", methods=["POST"])
@requires("configure")
def move_reason(reason_id: int):
    try:
        processing.move_reason(_reason(reason_id), request.form.get("direction", ""))
    except ActionRefused as exc:
        db.session.rollback()
        return _reasons_page(status=422, error=str(exc))
    return _done("Order saved.")


# -- agency / producer details ---------------------------------------------------------------------

AGENCY_FIELDS = [
    ("name", "Agency name", True), ("contact_name", "Contact name", False), ("phone", "Phone", False),
    ("fax", "Fax", False),
    ("email", "E-mail", False), ("address", "Address", False), ("city", "City", False), ("state", "State", False),
    ("zip_code", "ZIP", False), ("authorized_representative", "Authorized representative", False),
]


def _agency_page(values: dict, errors: dict | None = None, status: int = 200):
    return render_page_or_partial("admin/agency.html", "admin/_agency_part.html", status=status, values=values,
                                  errors=errors or {}, fields=AGENCY_FIELDS)


@bp.route("/agency")
@requires("configure")
def agency():
    from app.insurance.agency import get_agency

    return _agency_page(get_agency())


def validate_agency(form) -> tuple[dict, dict]:
    values = {key: " ".join((form.get(key) or "").split())[:200] for key, _, _ in AGENCY_FIELDS}
    errors = {}
    for key, label, required in AGENCY_FIELDS:
        if required and not values[key]:
            errors[key] = f"{label} is required."
    checks = {"email": normalize_email, "phone": normalize_phone, "fax": normalize_phone,
              "state": normalize_state,
              "zip_code": normalize_zip}
    for key, fn in checks.items():
        if values[key]:
            try:
                values[key] = fn(values[key])
            except InvalidInput as exc:
                errors[key] = str(exc)
    return values, errors


@bp.route("/agency", methods=["POST"])
@requires("configure")
def save_agency():
    from app.insurance.agency import save_agency as store_agency

    values, errors = validate_agency(request.form)
    if errors:
        return _agency_page(values, errors, status=422)
    store_agency(values)
    db.session.commit()
    if not is_htmx():
        flash("Agency details saved.", "success")
        return redirect(url_for("admin.agency"), code=303)
    return hx_trigger(_agency_page(values), "agency-saved", toast="Agency details saved; new certificates use them.")
