"""Customer page, "Additional interests" tab: holders, CSV import, mass generation, sent certificates.

Routes are thin: parse the form, call a service in ``holders`` / ``imports`` / ``generation``,
commit, render the page or its partial. Staff read with ``view_dashboard`` and change with
``manage_holders``; a customer user sees only its own sent certificates (anything else: 404).
"""

from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from app.auth.access import login_required, require_customer_access, requires
from app.customers import bp, generation, holders, imports
from app.customers.routes import get_customer_or_404
from app.enums import GenerationMode, GenerationStatus, ImportKind, ImportStatus, InvalidTransition, RequestType
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, render_page_or_partial
from app.models import Customer, GenerationRun, ImportRun, SentCertificate
from app.models.base import utcnow
from app.storage import get_store

HOLDER_FIELDS = ("name", "email", "phone", "address", "city", "state", "zip_code")


def _actor():
    return current_user._get_current_object()


def _csv_response(data: bytes, filename: str):
    import io

    return send_file(io.BytesIO(data), mimetype="text/csv", as_attachment=True, download_name=filename)


# -- additional interests ----------------------------------------------------------------------------

def _holders_page(customer):
    """The page of additional interests the URL asks for (a seek page; the first one after an action)."""
    from app.validation import parse_page

    if request.method != "GET":
        return holders.linked_holders_page(customer.id)
    return holders.linked_holders_page(customer.id, after=request.args.get("after"),
                                       before=request.args.get("before"), page=parse_page(request.args.get("page")))


def _interests_context(customer, **extra) -> dict:
    page = _holders_page(customer)
    return {
        "customer": customer,
        "links": page.items,
        "links_page": page,
        "runs": generation.recent_runs(customer.id),
        "flag_labels": holders.FLAG_LABELS,
        "modes": list(GenerationMode),
        "kinds": list(RequestType),
        "values": extra.pop("values", {}),
        "errors": extra.pop("errors", {}),
        **extra,
    }


@bp.route("/<int(max=2147483647):customer_id>/interests")
@requires("view_dashboard")
def interests(customer_id: int):
    customer = get_customer_or_404(customer_id)
    return render_page_or_partial("customers/interests.html", "customers/_interests_part.html",
                                  **_interests_context(customer))


def _holder_form() -> dict:
    values = {name: request.form.get(name, "").replace("\x00", "").strip()[:300] for name in HOLDER_FIELDS}
    for flag in holders.FLAGS:
        values[flag] = request.form.get(flag) in ("y", "on", "1", "true", "yes")
    return values


@bp.route("/<int(max=2147483647):customer_id>/interests", methods=["POST"])
@requires("manage_holders")
def add_interest(customer_id: int):
    customer = get_customer_or_404(customer_id)
    values = _holder_form()
    try:
        link = holders.add_holder(customer, values, actor=_actor(), now=utcnow())
    except holders.HolderError as exc:
        db.session.rollback()
        return render_page_or_partial("customers/interests.html", "customers/_interests_part.html", status=422,
                                      **_interests_context(customer, values=values, errors=exc.errors,
                                                           form_error=str(exc), open_add=True))
    name = link.holder.name
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.interests", customer_id=customer.id), code=303)
    response = render_page_or_partial("customers/interests.html", "customers/_interests_part.html",
                                      **_interests_context(customer))
    return hx_trigger(response, "holder-linked", toast=f"{name} added to additional interests.")


def _link_or_404(customer_id: int, link_id: int):
    link = holders.get_link(customer_id, link_id)
    if link is None:
        abort(404)
    return link


@bp.route("/<int(max=2147483647):customer_id>/interests/<int(max=2147483647):link_id>/edit", methods=["GET", "POST"])
@requires("manage_holders")
def edit_interest(customer_id: int, link_id: int):
    customer = get_customer_or_404(customer_id)
    link = _link_or_404(customer_id, link_id)
    if request.method == "GET":
        h = link.holder
        values = {name: getattr(h, name) for name in HOLDER_FIELDS}
        values.update({flag: getattr(link, flag) for flag in holders.FLAGS})
        return render_page_or_partial("customers/interests_edit.html", "customers/_interest_form.html",
                                      customer=customer, link=link, values=values, errors={},
                                      flag_labels=holders.FLAG_LABELS)
    values = _holder_form()
    try:
        holders.edit_link(link, values, actor=_actor(), now=utcnow())
    except holders.HolderError as exc:
        db.session.rollback()
        return render_page_or_partial("customers/interests_edit.html", "customers/_interest_form.html", status=422,
                                      customer=customer, link=link, values=values, errors=exc.errors,
                                      form_error=str(exc), flag_labels=holders.FLAG_LABELS)
    name = link.holder.name
    db.session.commit()
    flash(f"{name} saved.", "success")
    return hx_redirect(url_for("customers.interests", customer_id=customer.id))


@bp.route("/<int(max=2147483647):customer_id>/interests/<int(max=2147483647):link_id>/unlink", methods=["POST"])
@requires("manage_holders")
def unlink_interest(customer_id: int, link_id: int):
    customer = get_customer_or_404(customer_id)
    link = _link_or_404(customer_id, link_id)
    name = link.holder.name
    holders.unlink_holder(link, actor=_actor(), now=utcnow())
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.interests", customer_id=customer.id), code=303)
    response = render_page_or_partial("customers/interests.html", "customers/_interests_part.html",
                                      **_interests_context(customer))
    return hx_trigger(response, "holder-unlinked", toast=f"{name} removed from additional interests.")


@bp.route("/<int(max=2147483647):customer_id>/interests.csv")
@requires("view_dashboard")
def export_interests(customer_id: int):
    customer = get_customer_or_404(customer_id)
    return _csv_response(imports.links_csv(customer.id), f"additional-interests-{customer.id}.csv")


# -- mass generation ---------------------------------------------------------------------------------

@bp.route("/<int(max=2147483647):customer_id>/generate", methods=["POST"])
@requires("manage_holders")
def generate_certificates(customer_id: int):
    customer = get_customer_or_404(customer_id)
    all_holders = request.form.get("all") in ("1", "on", "y")
    raw_ids = request.form.getlist("holder_ids")
    try:
        holder_ids = None if all_holders else [int(v) for v in raw_ids]
    except ValueError:
        holder_ids = [-1]
    try:
        run = generation.start_generation(
            customer, holder_ids=holder_ids, mode=request.form.get("mode", ""),
            kind=request.form.get("kind", RequestType.COI.value),
            record_sent=request.form.get("record_sent") in ("1", "on", "y"),
            email_holders=request.form.get("email_holders") in ("1", "on", "y"),
            actor=_actor(), now=utcnow(),
        )
    except generation.GenerationError as exc:
        db.session.rollback()
        if is_htmx():  # the dialog stays as the user left it; the message goes where the progress would
            response = render_template("customers/_generation_error.html", generation_error=str(exc))
            return make_response(response, 422)
        return render_page_or_partial("customers/interests.html", "customers/_interests_part.html", status=422,
                                      **_interests_context(customer, generation_error=str(exc),
                                                           chosen={str(v) for v in raw_ids}, open_generate=True))
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.generation_status", customer_id=customer.id, run_id=run.id), code=303)
    response = render_page_or_partial("customers/generation.html", "customers/_generation_status.html",
                                      customer=customer, run=run)
    return hx_trigger(response, "generation-started", toast=f"Generating {run.total} certificates.")


def _run_or_404(customer_id: int, run_id: int) -> GenerationRun:
    run = db.session.get(GenerationRun, run_id)
    if run is None or run.customer_id != customer_id:
        abort(404)
    return run


@bp.route("/<int(max=2147483647):customer_id>/generations/<int(max=2147483647):run_id>")
@requires("view_dashboard")  # advisors see the run's progress on the interests tab; only the download is staff-only
def generation_status(customer_id: int, run_id: int):
    customer = get_customer_or_404(customer_id)
    run = _run_or_404(customer_id, run_id)
    return render_page_or_partial("customers/generation.html", "customers/_generation_status.html",
                                  customer=customer, run=run)


@bp.route("/<int(max=2147483647):customer_id>/generations/<int(max=2147483647):run_id>/download")
@requires("manage_holders")
def download_generation(customer_id: int, run_id: int):
    run = _run_or_404(customer_id, run_id)
    store = get_store()
    if run.status is not GenerationStatus.DONE or not run.file_key or not store.exists(run.file_key):
        abort(404)
    mimetype = "application/zip" if run.mode is GenerationMode.ZIP else "application/pdf"
    return send_file(store.path(run.file_key), mimetype=mimetype, as_attachment=True, download_name=run.filename)


# -- sent certificates -------------------------------------------------------------------------------

def _sent_context(customer=None) -> dict:
    from app.validation import parse_page

    page = generation.sent_certificates_page(customer.id if customer else None, after=request.args.get("after"),
                                             before=request.args.get("before"),
                                             page=parse_page(request.args.get("page")))
    return {"customer": customer, "sent": page}


def _sent_csv(customer_id: int | None):
    rows = db.session.scalars(generation.sent_certificates_query(customer_id).limit(50_000))
    data = imports.csv_bytes(
        ["date", "customer_id", "customer", "holder", "holder_email", "kind", "sent_by", "emailed", "file"],
        ([s.created_at.strftime("%Y-%m-%d %H:%M"), s.customer_id, s.customer.name, s.holder_name, s.holder_email,
          s.kind.value, s.sent_by.name if s.sent_by else "system", "yes" if s.emailed else "no", s.filename]
         for s in rows),
    )
    return _csv_response(data, f"sent-certificates{'-' + str(customer_id) if customer_id else ''}.csv")


@bp.route("/<int(max=2147483647):customer_id>/sent-certificates")
@login_required
def sent_certificates(customer_id: int):
    require_customer_access(customer_id)
    customer = get_customer_or_404(customer_id)
    if request.args.get("format") == "csv":
        return _sent_csv(customer.id)
    return render_page_or_partial("customers/sent_certificates.html", "customers/sent_certificates_part.html",
                                  **_sent_context(customer))


@bp.route("/sent-certificates")
@requires("view_dashboard")
def all_sent_certificates():
    if request.args.get("format") == "csv":
        return _sent_csv(None)
    return render_page_or_partial("customers/sent_certificates.html", "customers/sent_certificates_part.html",
                                  **_sent_context())


@bp.route("/<int(max=2147483647):customer_id>/sent-certificates/<int(max=2147483647):sent_id>/file")
@login_required
def sent_certificate_file(customer_id: int, sent_id: int):
    require_customer_access(customer_id)
    sent = db.session.get(SentCertificate, sent_id)
    store = get_store()
    if sent is None or sent.customer_id != customer_id or not store.exists(sent.document_key):
        abort(404)
    return send_file(store.path(sent.document_key), mimetype="application/pdf", as_attachment=True,
                     download_name=sent.filename)


# -- CSV import ----------------------------------------------------------------------------------------

def _import_context(**extra) -> dict:
    runs = db.session.scalars(db.select(ImportRun).where(ImportRun.kind.in_([ImportKind.HOLDERS, ImportKind.LINKS]))
                              .order_by(ImportRun.created_at.desc(), ImportRun.id.desc())
                              .limit(10))
    return {"kinds": [k for k in ImportKind if k.is_holder_kind],
            "runs": list(runs), "inline_rows": imports.INLINE_ROWS,
            "errors": extra.pop("errors", {}), **extra}


@bp.route("/holders/import")
@requires("manage_holders")
def import_holders():
    return render_page_or_partial("customers/import.html", "customers/_import_upload_part.html", **_import_context())


def _kind_or_404(kind: str) -> ImportKind:
    try:
        found = ImportKind(kind)
    except ValueError:
        abort(404)
    if not found.is_holder_kind:  # customers and policies have their own import page
        abort(404)
    return found


@bp.route("/holders/import/template/<kind>.csv")
@requires("manage_holders")
def import_template(kind: str):
    kind = _kind_or_404(kind)
    return _csv_response(imports.template_csv(kind), f"{kind.value}-template.csv")


@bp.route("/holders/import/<kind>", methods=["POST"])
@requires("manage_holders")
def upload_import(kind: str):
    kind = _kind_or_404(kind)
    upload = request.files.get("file")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    error = None
    data = b""
    if upload is None or not upload.filename:
        error = "Choose a CSV file to upload."
    else:
        data = upload.read(limit + 1)
        if len(data) > limit:
            error = f"The file is larger than the {limit // (1024 * 1024)} MB limit; split it into smaller files."
    run = None
    if error is None:
        try:
            run = imports.start_import(kind, data, upload.filename, actor=_actor(), now=utcnow())
            if imports.runs_inline(run):
                imports.check_import(run, now=utcnow())
            else:
                from app.queue import defer

                defer(db.session, "app.customers.holder_jobs.check_holder_import", run.id, queue="default")
        except imports.ImportFileError as exc:
            db.session.rollback()
            error = str(exc)
    if error is not None:
        return render_page_or_partial("customers/import.html", "customers/_import_upload_part.html", status=422,
                                      **_import_context(errors={kind.value: error}))
    db.session.commit()
    # no flashed toast: it would stay on the page after confirming; the preview says nothing is written yet
    return hx_redirect(url_for("customers.import_run", run_id=run.id))


def _import_run_or_404(run_id: int) -> ImportRun:
    run = db.session.get(ImportRun, run_id)
    if run is None or not run.kind.is_holder_kind:  # customer / policy imports have their own pages
        abort(404)
    return run


def _run_page(run: ImportRun, status: int = 200, **extra):
    ids = (run.preview or {}).get("customer_ids") or []
    customers = list(db.session.scalars(db.select(Customer).where(Customer.id.in_(ids)).order_by(Customer.name)))
    return render_page_or_partial("customers/import_run.html", "customers/_import_run_part.html", status=status,
                                  run=run, ImportStatus=ImportStatus, customers=customers,
                                  join_messages=imports.join_messages, flag_labels=holders.FLAG_LABELS, **extra)


@bp.route("/holders/import/runs/<int(max=2147483647):run_id>")
@requires("manage_holders")
def import_run(run_id: int):
    return _run_page(_import_run_or_404(run_id))


@bp.route("/holders/import/runs/<int(max=2147483647):run_id>/confirm", methods=["POST"])
@requires("manage_holders")
def confirm_import_run(run_id: int):
    run = _import_run_or_404(run_id)
    try:
        imports.confirm_import(run, actor=_actor(), now=utcnow())
        if imports.runs_inline(run):
            imports.apply_import(run, now=utcnow())
        else:
            from app.queue import defer

            defer(db.session, "app.customers.holder_jobs.apply_holder_import", run.id, queue="default")
    except (InvalidTransition, imports.ImportFileError) as exc:
        db.session.rollback()
        run = _import_run_or_404(run_id)
        message = str(exc) if isinstance(exc, imports.ImportFileError) else \
            f"This import is {run.status} already; nothing was changed."
        return _run_page(run, status=409 if isinstance(exc, InvalidTransition) else 422, action_error=message)
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.import_run", run_id=run.id), code=303)
    toast = "Import finished." if run.status is ImportStatus.DONE else "Import started."
    return hx_trigger(_run_page(run), "import-confirmed", toast=toast)


@bp.route("/holders/import/runs/<int(max=2147483647):run_id>/cancel", methods=["POST"])
@requires("manage_holders")
def cancel_import_run(run_id: int):
    run = _import_run_or_404(run_id)
    try:
        imports.cancel_import(run, actor=_actor(), now=utcnow())
    except InvalidTransition:
        db.session.rollback()
        run = _import_run_or_404(run_id)
        return _run_page(run, status=409, action_error=f"This import is {run.status} already; nothing was changed.")
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("customers.import_run", run_id=run.id), code=303)
    return hx_trigger(_run_page(run), "import-cancelled", toast="Import cancelled; nothing was written.")


@bp.route("/holders/import/runs/<int(max=2147483647):run_id>/errors.csv")
@requires("manage_holders")
def import_errors_csv(run_id: int):
    run = _import_run_or_404(run_id)
    return _csv_response(imports.errors_csv(run), f"import-{run.id}-errors.csv")
