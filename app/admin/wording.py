"""Configuration: the banned-wording list the issue guard checks every certificate description against."""

from flask import abort, flash, redirect, request, url_for

from app.admin import bp
from app.auth.access import requires
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, render_page_or_partial
from app.insurance import issuing
from app.models.insurance import BannedWording


def _page(status: int = 200, **extra):
    issuing.ensure_default_wording()
    rows = db.session.scalars(db.select(BannedWording).order_by(BannedWording.phrase)).all()
    return render_page_or_partial("admin/wording.html", "admin/_wording_part.html", status=status, rows=rows,
                                  form=request.form if request.method == "POST" else {}, **extra)


def _done(toast: str):
    db.session.commit()
    if not is_htmx():
        flash(toast, "success")
        return redirect(url_for("admin.wording"), code=303)
    return hx_trigger(_page(), "wording-changed", toast=toast)


@bp.route("/wording")
@requires("configure")
def wording():
    response = _page()
    db.session.commit()  # the lazily seeded defaults
    return response


@bp.route("/wording", methods=["POST"])
@requires("configure")
def add_wording():
    try:
        issuing.add_wording(request.form.get("phrase", ""), request.form.get("reason", ""))
    except ValueError as exc:
        db.session.rollback()
        return _page(status=422, field_error=str(exc))
    return _done("Wording added: the issue guard refuses it from now on.")


@bp.route("/wording/<int(max=2147483647):wording_id>/active", methods=["POST"])
@requires("configure")
def toggle_wording(wording_id: int):
    row = db.session.get(BannedWording, wording_id)
    if row is None:
        abort(404)
    if request.form.get("active") not in ("0", "1"):
        return _page(status=422, error="Choose to switch the wording off or on.")
    row.is_active = request.form.get("active") == "1"
    return _done("Wording switched on." if row.is_active else "Wording switched off: certificates may use it.")
