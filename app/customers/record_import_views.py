"""Pages of the customer / policy CSV import (upload -> preview -> confirm -> progress) and the CSV exports.

Thin routes over ``record_imports``: staff with ``manage_customers`` import; everyone who reads customer
pages may export. Small files are checked and written inside the request, larger ones by a job.
"""

from __future__ import annotations

import io

from flask import abort, current_app, redirect, request, send_file, url_for
from flask_login import current_user

from app.auth.access import requires
from app.customers import bp, record_imports
from app.customers.imports import ImportFileError
from app.enums import ImportKind, ImportStatus, InvalidTransition
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, render_page_or_partial
from app.models import ImportRun
from app.models.base import utcnow
from app.queue import defer

KINDS = (ImportKind.CUSTOMERS, ImportKind.POLICIES)
CHECK_JOB = "app.customers.record_import_jobs.check_record_import"
APPLY_JOB = "app.customers.record_import_jobs.apply_record_import"


def _csv(data: bytes, filename: str):
    return send_file(io.BytesIO(data), mimetype="text/csv", as_attachment=True, download_name=filename)


def _kind_or_404(kind: str) -> ImportKind:
    try:
        found = ImportKind(kind)
    except ValueError:
        abort(404)
    if found not in KINDS:
        abort(404)
    return found


def _context(**extra) -> dict:
    runs = db.session.scalars(db.select(ImportRun).where(ImportRun.kind.in_(KINDS))
                              .order_by(ImportRun.created_at.desc(), ImportRun.id.desc()).limit(10))
    return {"kinds": KINDS, "runs": list(runs), "inline_rows": record_imports.INLINE_ROWS,
            "columns": record_imports.COLUMNS, "errors": extra.pop("errors", {}), **extra}


@bp.route("/records/import")
@requires("manage_customers")
def import_records():
    return render_page_or_partial("customers/records_import.html", "customers/_records_import_upload_part.html",
                                  **_context())


@bp.route("/records/import/template/<kind>.csv")
@requires("manage_customers")
def records_import_template(kind: str):
    kind = _kind_or_404(kind)
    return _csv(record_imports.template_csv(kind), f"{kind.value}-template.csv")


@bp.route("/records/import/<kind>", methods=["POST"])
@requires("manage_customers")
def upload_records_import(kind: str):
    kind = _kind_or_404(kind)
    upload = request.files.get("file")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    error, data, run = None, b"", None
    if upload is None or not upload.filename:
        error = "Choose a CSV file to upload."
    else:
        data = upload.read(limit + 1)
        if len(data) > limit:
            error = f"The file is larger than the {limit // (1024 * 1024)} MB limit; split it into smaller files."
    if error is None:
        try:
            run = record_imports.start_import(kind, data, upload.filename, actor=current_user._get_current_object(),
                                              now=utcnow())
            if record_imports.runs_inline(run):
                record_imports.check_import(run, now=utcnow())
            else:
                defer(db.session, CHECK_JOB, run.id, queue="default")
        except ImportFileError as exc:
            db.session.rollback()
            error = str(exc)
    if error is not None:
        return render_page_or_partial("customers/records_import.html", "customers/_records_import_upload_part.html",
                                      status=422, **_context(errors={kind.value: error}))
    db.session.commit()
    return hx_redirect(url_for("customers.records_import_run", run_id=run.id))


def _run_or_404(run_id: int) -> ImportRun:
    run = db.session.get(ImportRun, run_id)
    if run is None or run.kind not in KINDS:
        abort(404)
    return run


def _run_page(run: ImportRun, status: int = 200, **extra):
    return render_page_or_partial("customers/records_import_run.html", "customers/_records_import_run_part.html",
                                  status=status, run=run, ImportStatus=ImportStatus,
                                  join_messages=record_imports.join_messages, **extra)


@bp.route("/records/import/runs/<int(max=2147483647):run_id>")
@requires("manage_customers")
def records_import_run(run_id: int):
    return _run_page(_run_or_404(run_id))


@bp.route("/records/import/runs/<int(max=2147483647):run_id>/confirm", methods=["POST"])
@requires("manage_customers")
def confirm_records_import(run_id: int):
    run = _run_or_404(run_id)
    actor = current_user._get_current_object()
    try:
        record_imports.confirm_import(run, actor=actor, now=utcnow())
        if record_imports.runs_inline(run):
            record_imports.apply_import(run, actor=actor, now=utcnow())
        else:
            defer(db.session, APPLY_JOB, run.id, queue="default")
    except (InvalidTransition, ImportFileError) as exc:
        db.session.rollback()
        run = _run_or_404(run_id)
        message = str(exc) if isinstance(exc, ImportFileError) else \
            f"This import is {run.status} already; nothing was changed."
        return _run_page(run, status=409 if isinstance(exc, InvalidTransition) else 422, action_error=message)
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.records_import_run", run_id=run.id), code=303)
    toast = "Import finished." if run.status is ImportStatus.DONE else "Import started."
    return hx_trigger(_run_page(run), "import-confirmed", toast=toast)


@bp.route("/records/import/runs/<int(max=2147483647):run_id>/cancel", methods=["POST"])
@requires("manage_customers")
def cancel_records_import(run_id: int):
    run = _run_or_404(run_id)
    try:
        record_imports.cancel_import(run, actor=current_user._get_current_object(), now=utcnow())
    except InvalidTransition:
        db.session.rollback()
        run = _run_or_404(run_id)
        return _run_page(run, status=409, action_error=f"This import is {run.status} already; nothing was changed.")
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.records_import_run", run_id=run.id), code=303)
    return hx_trigger(_run_page(run), "import-cancelled", toast="Import cancelled; nothing was written.")


@bp.route("/records/import/runs/<int(max=2147483647):run_id>/errors.csv")
@requires("manage_customers")
def records_import_errors(run_id: int):
    run = _run_or_404(run_id)
    return _csv(record_imports.errors_csv(run), f"import-{run.id}-errors.csv")


@bp.route("/export.csv")
@requires("view_dashboard")
def export_customers():
    return _csv(record_imports.customers_csv(), "customers.csv")


@bp.route("/policies/export.csv")
@requires("view_dashboard")
def export_policies():
    return _csv(record_imports.policies_csv(), "policies.csv")
