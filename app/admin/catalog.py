"""Admin pages for the programs and the insurer list (create and edit; the rules live in
``app.customers.records``)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.admin import bp
from app.auth.access import requires
from app.customers import records
from app.customers.records import RecordInvalid
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, render_page_or_partial
from app.models import Customer, Insurer, Policy, Program
from app.models.base import utcnow


def _form_values(keys: tuple[str, ...], flags: tuple[str, ...] = ()) -> dict:
    """The submitted values; an unticked box is absent from a form, so it is sent as "no"."""
    values = {k: request.form.get(k, "") for k in keys}
    values.update({k: "1" if request.form.get(k) else "0" for k in flags})
    return values


# -- programs -------------------------------------------------------------------------------------

def _programs_page(status: int = 200, **extra):
    programs = db.session.scalars(sa.select(Program).order_by(Program.name)).all()
    counts = dict(db.session.execute(sa.select(Customer.program_id, sa.func.count()).group_by(Customer.program_id))
                  .all())
    return render_page_or_partial("admin/programs.html", "admin/_programs_part.html", status=status,
                                  programs=programs, counts=counts, errors=extra.pop("errors", {}),
                                  form=extra.pop("form", {}), **extra)


def _done(endpoint: str, page, event: str, toast: str):
    db.session.commit()
    if not is_htmx():
        flash(toast, "success")
        return redirect(url_for(endpoint), code=303)
    return hx_trigger(page(), event, toast=toast)


@bp.route("/programs")
@requires("manage_programs")
def programs():
    return _programs_page()


@bp.route("/programs", methods=["POST"])
@requires("manage_programs")
def add_program():
    values = _form_values(("name",), ("automation_enabled", "peo"))
    try:
        program = records.create_program(values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _programs_page(status=422, errors=exc.errors, form=values, editing=None)
    return _done("admin.programs", _programs_page, "program-saved", f"Program {program.name} added.")


@bp.route("/programs/<int(max=2147483647):program_id>", methods=["POST"])
@requires("manage_programs")
def update_program(program_id: int):
    program = db.session.get(Program, program_id) or abort(404)
    values = _form_values(("name",), ("automation_enabled", "peo"))
    try:
        changes = records.update_program(program, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _programs_page(status=422, errors=exc.errors, form=values, editing=program_id)
    return _done("admin.programs", _programs_page, "program-saved",
                 f"Program {program.name} saved." if changes else "Nothing changed.")


# -- insurers -------------------------------------------------------------------------------------

def _insurers_page(status: int = 200, **extra):
    insurers = db.session.scalars(sa.select(Insurer).order_by(Insurer.name)).all()
    counts = dict(db.session.execute(sa.select(Policy.insurer_id, sa.func.count()).group_by(Policy.insurer_id))
                  .all())
    return render_page_or_partial("admin/insurers.html", "admin/_insurers_part.html", status=status,
                                  insurers=insurers, counts=counts, errors=extra.pop("errors", {}),
                                  form=extra.pop("form", {}), **extra)


@bp.route("/insurers")
@requires("manage_programs")
def insurers():
    return _insurers_page()


@bp.route("/insurers", methods=["POST"])
@requires("manage_programs")
def add_insurer():
    values = _form_values(("name", "naic"))
    try:
        insurer = records.create_insurer(values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _insurers_page(status=422, errors=exc.errors, form=values, editing=None)
    return _done("admin.insurers", _insurers_page, "insurer-saved", f"Insurer {insurer.name} added.")


@bp.route("/insurers/<int(max=2147483647):insurer_id>", methods=["POST"])
@requires("manage_programs")
def update_insurer(insurer_id: int):
    insurer = db.session.get(Insurer, insurer_id) or abort(404)
    values = _form_values(("name", "naic"))
    try:
        changes = records.update_insurer(insurer, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _insurers_page(status=422, errors=exc.errors, form=values, editing=insurer_id)
    return _done("admin.insurers", _insurers_page, "insurer-saved",
                 f"Insurer {insurer.name} saved." if changes else "Nothing changed.")
