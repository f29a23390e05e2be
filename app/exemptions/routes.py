"""Staff pages for exemption certificates: tabs, requests (send, resend, cancel), review, send to many,
and the customer page's "Exemptions" tab. Thin: parse -> service -> commit -> render."""

from __future__ import annotations

from flask import abort, flash, make_response, render_template, request, send_file, url_for
from flask_login import current_user

from app.activity import customer_timeline, timeline
from app.auth.access import requires
from app.enums import ExemptionCertificateStatus as CS
from app.enums import InvalidTransition, SendRunStatus
from app.exemptions import bp, queries, services
from app.exemptions.forms import ApproveForm, EditForm, RejectForm, RequestForm, ResendForm
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, render_page_or_partial, stop_polling, wants_partial
from app.models import Customer, ExemptionCertificate, ExemptionRequest, ExemptionSendRun
from app.models.base import utcnow
from app.validation import STATE_CHOICES, US_STATES, parse_page

CHANGED = "exemptions-changed"


def _get(model, item_id: int):
    item = db.session.get(model, item_id) if queries.db_id(item_id) else None
    if item is None:
        abort(404)
    return item


def _version(form) -> int | None:
    """The version the reviewer saw: None when the form carries none; 0 (matches nothing, so a
    conflict) when it carries garbage."""
    raw = (form.version.data or "").strip()
    return (queries.db_id(raw) or 0) if raw else None


# -- the tabs -----------------------------------------------------------------------------------------

@bp.route("/")
@requires("review_exemptions")
def index():
    tab = request.args.get("tab", "pending")
    if tab not in queries.TABS:
        tab = "pending"
    q = request.args.get("q", "").strip()[:100]
    results = queries.tab_page(tab, q, page=parse_page(request.args.get("page")), after=request.args.get("after"),
                               before=request.args.get("before"))
    return render_page_or_partial("exemptions/index.html", "exemptions/_list_part.html", tab=tab, q=q, results=results,
                                  counts=queries.tab_counts(q), tabs=queries.TABS, today=utcnow().date())


@bp.route("/counts")
@requires("review_exemptions")
def counts():
    q = request.args.get("q", "").strip()[:100]
    tab = request.args.get("tab", "pending")
    response = make_response(render_template("exemptions/_tabs_part.html", counts=queries.tab_counts(q),
                                             tabs=queries.TABS, tab=tab, q=q))
    response.vary.add("HX-Request")
    return response


@bp.route("/customers/search")
@requires("manage_exemption_requests")
def customer_search():
    q = request.args.get("q", "").strip()[:100]
    return render_template("exemptions/_customer_results.html", customers=queries.search_customers(q), q=q,
                           selected=queries.db_id(request.args.get("customer_id")), fill_email=True)


@bp.route("/requests/email-field")
@requires("manage_exemption_requests")
def request_email_field():
    """The e-mail field after a customer was picked: the customer's contact e-mail, unless the user
    typed another address (anything other than what was filled in before is theirs and is kept)."""
    customer_id = queries.db_id(request.args.get("customer_id"))
    customer = db.session.get(Customer, customer_id) if customer_id else None
    typed = request.args.get("email", "").strip()[:254]
    autofilled = request.args.get("email_autofilled", "").strip()[:254]
    form = RequestForm(formdata=None, email=typed)
    if customer is not None and customer.contact_email and (not typed or typed == autofilled):
        form.email.data = autofilled = customer.contact_email
    elif typed != autofilled:
        autofilled = ""
    return render_template("exemptions/_request_email_field.html", form=form, email_autofilled=autofilled,
                           email_customer=customer)


# -- requests -----------------------------------------------------------------------------------------

@bp.route("/requests/new", methods=["GET", "POST"])
@requires("manage_exemption_requests")
def new_request():
    form = RequestForm()
    q = request.values.get("q", "").strip()[:100]
    email_autofilled = request.form.get("email_autofilled", "").strip()[:254]
    if request.method == "GET":
        customer_id = queries.db_id(request.args.get("customer_id"))
        customer = db.session.get(Customer, customer_id) if customer_id else None
        if customer is not None:
            form.customer_id.data = customer.id
            form.email.data = customer.contact_email
            email_autofilled = customer.contact_email
    status = 200
    if request.method == "POST":
        customer_id = queries.db_id(form.customer_id.data)
        customer = db.session.get(Customer, customer_id) if customer_id else None
        if form.validate():
            if customer is None:
                form.customer_id.errors = ["Choose a customer from the list."]
            else:
                try:
                    email = (form.email.data or "").strip() or customer.contact_email
                    req, _ = services.send_request(customer, email, actor=current_user, now=utcnow())
                except services.InvalidData as exc:
                    for name, message in exc.errors.items():
                        getattr(form, name).errors = [message]
                else:
                    db.session.commit()
                    flash(f"Request sent to {req.email}.", "success")
                    return hx_redirect(url_for("exemptions.request_detail", request_id=req.id))
        status = 422
    customer_id = queries.db_id(form.customer_id.data) if isinstance(form.customer_id.data, int) else None
    customer = db.session.get(Customer, customer_id) if customer_id else None
    results = queries.search_customers(q) if q else ([customer] if customer else [])
    return render_page_or_partial("exemptions/new_request.html", "exemptions/_request_form.html", status=status,
                                  form=form, q=q, customers=results, selected=customer.id if customer else None,
                                  email_autofilled=email_autofilled)


def _request_context(req: ExemptionRequest, **extra) -> dict:
    resend_form = extra.pop("resend_form", None) or ResendForm(formdata=None, email=req.email)
    from app.notify import delivery_problems

    return {"req": req, "resend_form": resend_form, "activities": timeline(services.REQUEST_SUBJECT, req.id),
            "now": utcnow(), "delivery_problems": delivery_problems(services.delivery_ref(req)), **extra}


def _request_response(req: ExemptionRequest):
    """After an action: the list row when the action came from a list row (HX-Target), else the detail."""
    if request.headers.get("HX-Target") == f"exemption-row-{req.id}":
        response = make_response(render_template("exemptions/_request_row.html", req=req))
        response.vary.add("HX-Request")
        return response
    return render_page_or_partial("exemptions/request.html", "exemptions/_request_part.html", **_request_context(req))


@bp.route("/requests/<int:request_id>")
@requires("manage_exemption_requests")
def request_detail(request_id: int):
    req = _get(ExemptionRequest, request_id)
    return render_page_or_partial("exemptions/request.html", "exemptions/_request_part.html", **_request_context(req))


@bp.route("/requests/<int:request_id>/resend", methods=["POST"])
@requires("manage_exemption_requests")
def resend_request(request_id: int):
    req = _get(ExemptionRequest, request_id)
    form = ResendForm()
    error = None
    if form.validate():
        try:
            services.resend_request(req, actor=current_user, now=utcnow(), email=form.email.data)
        except services.InvalidData as exc:
            form.email.errors = [exc.errors.get("email", str(exc))]
        except InvalidTransition:
            error = f"A {req.status} request cannot be resent."
        else:
            db.session.commit()
            message = f"A new link was sent to {req.email}; the old one no longer works."
            if not wants_partial():
                flash(message, "success")
                return hx_redirect(url_for("exemptions.request_detail", request_id=req.id))
            return hx_trigger(_request_response(req), "request-resent", CHANGED, toast=message)
    db.session.rollback()
    req = _get(ExemptionRequest, request_id)
    return render_page_or_partial("exemptions/request.html", "exemptions/_request_part.html",
                                  status=409 if error else 422,
                                  **_request_context(req, resend_form=form, error=error))


@bp.route("/requests/<int:request_id>/cancel", methods=["GET", "POST"])
@requires("manage_exemption_requests")
def cancel_request(request_id: int):
    """GET: the confirmation step. POST: cancel."""
    req = _get(ExemptionRequest, request_id)
    if request.method == "GET":
        return render_page_or_partial("exemptions/cancel.html", "exemptions/_cancel_part.html", req=req)
    try:
        services.cancel_request(req, actor=current_user, now=utcnow())
    except InvalidTransition:
        db.session.rollback()
        req = _get(ExemptionRequest, request_id)
        return render_page_or_partial("exemptions/request.html", "exemptions/_request_part.html", status=409,
                                      **_request_context(req, error=f"A {req.status} request cannot be cancelled."))
    db.session.commit()
    message = "Request cancelled; its link no longer works."
    if not wants_partial():
        flash(message, "success")
        return hx_redirect(url_for("exemptions.request_detail", request_id=req.id))
    return hx_trigger(_request_response(req), "request-cancelled", CHANGED, toast=message)


# -- review ---------------------------------------------------------------------------------------------

def _review_context(cert: ExemptionCertificate, **extra) -> dict:
    page_no = max(1, min(request.args.get("page", 1, type=int), cert.document_pages or 1))
    from app.exemptions.preview import clamp_zoom

    return {
        "cert": cert, "page_no": page_no, "zoom": clamp_zoom(request.args.get("zoom", 1.0)),
        "approve_form": extra.pop("approve_form", None) or ApproveForm(formdata=None, version=cert.version),
        "reject_form": extra.pop("reject_form", None) or RejectForm(formdata=None, version=cert.version),
        "activities": timeline(services.CERTIFICATE_SUBJECT, cert.id),
        "expiring_soon": services.is_expiring_soon(cert, utcnow().date()),
        "today": utcnow().date(), "states": US_STATES, **extra,
    }


@bp.route("/certificates/<int:certificate_id>")
@requires("review_exemptions")
def review(certificate_id: int):
    cert = _get(ExemptionCertificate, certificate_id)
    return render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html", **_review_context(cert))


@bp.route("/certificates/<int:certificate_id>/pages/<int:page>.png")
@requires("review_exemptions")
def page_image(certificate_id: int, page: int):
    from app.exemptions.preview import clamp_zoom, render_page_png
    from app.storage import get_store

    cert = _get(ExemptionCertificate, certificate_id)
    try:
        png = render_page_png(get_store().read(cert.document_key), cert.document_content_type, page,
                              clamp_zoom(request.args.get("zoom", 1.0)))
    except IndexError:
        abort(404)
    response = make_response(png)
    response.headers["Content-Type"] = "image/png"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.route("/certificates/<int:certificate_id>/document")
@requires("review_exemptions")
def download_document(certificate_id: int):
    from app.storage import get_store

    cert = _get(ExemptionCertificate, certificate_id)
    response = send_file(get_store().path(cert.document_key), mimetype=cert.document_content_type,
                         as_attachment=True, download_name=cert.document_filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _review_done(cert: ExemptionCertificate, event: str, message: str):
    if not wants_partial():
        flash(message, "success")
        return hx_redirect(url_for("exemptions.review", certificate_id=cert.id))
    response = render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html",
                                      **_review_context(cert))
    return hx_trigger(response, event, CHANGED, toast=message)


def _conflict(certificate_id: int, message: str):
    db.session.rollback()
    cert = _get(ExemptionCertificate, certificate_id)
    return render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html", status=409,
                                  **_review_context(cert, conflict=message))


@bp.route("/certificates/<int:certificate_id>/approve", methods=["POST"])
@requires("review_exemptions")
def approve(certificate_id: int):
    cert = _get(ExemptionCertificate, certificate_id)
    form = ApproveForm()
    try:
        services.approve_certificate(cert, reviewer=current_user, now=utcnow(), expected_version=_version(form),
                                     notes=form.notes.data or "")
    except (services.ReviewConflict, InvalidTransition) as exc:
        return _conflict(certificate_id, str(exc))
    except services.InvalidData as exc:
        db.session.rollback()
        cert = _get(ExemptionCertificate, certificate_id)
        form.notes.errors = [exc.errors.get("notes", str(exc))]
        return render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html", status=422,
                                      **_review_context(cert, approve_form=form))
    db.session.commit()
    return _review_done(cert, "certificate-approved", "Certificate approved; it is now active.")


@bp.route("/certificates/<int:certificate_id>/reject", methods=["POST"])
@requires("review_exemptions")
def reject(certificate_id: int):
    cert = _get(ExemptionCertificate, certificate_id)
    form = RejectForm()
    if not form.validate():
        return render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html", status=422,
                                      **_review_context(cert, reject_form=form))
    try:
        new_req = services.reject_certificate(cert, reviewer=current_user, now=utcnow(), notes=form.notes.data,
                                              send_new_link=form.send_new_link.data, expected_version=_version(form))
    except (services.ReviewConflict, InvalidTransition) as exc:
        return _conflict(certificate_id, str(exc))
    except services.InvalidData as exc:
        form.notes.errors = [exc.errors.get("notes", str(exc))]
        return render_page_or_partial("exemptions/review.html", "exemptions/_review_part.html", status=422,
                                      **_review_context(cert, reject_form=form))
    db.session.commit()
    message = "Certificate rejected; the customer was told why" + (
        " and got a new pre-filled link." if new_req else ".")
    return _review_done(cert, "certificate-rejected", message)


def _not_editable(cert: ExemptionCertificate) -> str:
    status = str(cert.status).replace("_", " ")
    if cert.reviewed_by_id is not None and cert.reviewed_by_id == current_user.id:
        by = "you"
    else:
        by = cert.reviewed_by.name if cert.reviewed_by else "someone else"
    when = f" on {cert.reviewed_at:%b %d, %Y}" if cert.reviewed_at else ""
    return (f"This certificate is already {status} (reviewed by {by}{when}); only a submission waiting for review "
            "can be edited and approved. Nothing was changed.")


@bp.route("/certificates/<int:certificate_id>/edit", methods=["GET", "POST"])
@requires("review_exemptions")
def edit(certificate_id: int):
    cert = _get(ExemptionCertificate, certificate_id)
    if cert.status is not CS.PENDING_REVIEW:
        # Edit-and-approve is a review decision: only a submission waiting for review can take it.
        message = _not_editable(cert)
        if request.method == "GET":
            flash(message, "info")
            return hx_redirect(url_for("exemptions.review", certificate_id=cert.id))
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", status=409,
                                      form=None, cert=cert, conflict=message)
    if request.method == "GET":
        form = EditForm(formdata=None, version=cert.version)
        form.fill_from(services.certificate_prefill(cert))
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", form=form, cert=cert)
    form = EditForm()
    if "add_rows" in request.form:
        # "More state rows": the same form with five more jurisdiction rows; nothing is validated or saved.
        for _ in range(5):
            if len(form.jurisdictions) < len(US_STATES):
                form.jurisdictions.append_entry()
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", form=form, cert=cert)
    data = form.to_data()
    if data is None:
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", status=422,
                                      form=form, cert=cert)
    data.notes = form.notes.data or ""
    try:
        services.edit_and_approve_certificate(cert, data, reviewer=current_user, now=utcnow(),
                                              expected_version=_version(form))
    except (services.ReviewConflict, InvalidTransition) as exc:
        db.session.rollback()
        cert = _get(ExemptionCertificate, certificate_id)
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", status=409,
                                      form=form, cert=cert, conflict=str(exc))
    except services.InvalidData as exc:
        db.session.rollback()
        cert = _get(ExemptionCertificate, certificate_id)
        form.apply_errors(exc.errors)
        return render_page_or_partial("exemptions/edit.html", "exemptions/_edit_form.html", status=422,
                                      form=form, cert=cert)
    db.session.commit()
    flash("Changes saved and the certificate approved.", "success")
    response = hx_redirect(url_for("exemptions.review", certificate_id=cert.id))
    return hx_trigger(response, "certificate-approved", CHANGED) if is_htmx() else response


# -- send to many --------------------------------------------------------------------------------------------

@bp.route("/send-many", methods=["GET", "POST"])
@requires("manage_exemption_requests")
def send_many():
    state = (request.values.get("state") or "").strip().upper()
    error = None
    customers = queries.all_customers()
    preselected: set[int] = set()
    if state in US_STATES:
        preselected = set(services.customers_missing_active(state, utcnow().date()))
    elif state and request.method == "GET":
        error = f"{state[:10]} is not a US state code."
    if request.method == "POST":
        ids = []
        if request.form.get("all_missing") and state in US_STATES:
            # Computed now, not from the (possibly truncated) list on the page.
            ids = sorted(preselected)
        for raw in request.form.getlist("customer_ids"):
            if queries.db_id(raw):
                ids.append(queries.db_id(raw))
        try:
            run = services.start_send_run(ids, actor=current_user, now=utcnow())
        except services.InvalidData as exc:
            error = exc.errors["customer_ids"]
        else:
            db.session.commit()
            flash(f"Sending {run.total} requests.", "success")
            return hx_redirect(url_for("exemptions.send_run", run_id=run.id))
    return render_page_or_partial("exemptions/send_many.html", "exemptions/_send_many_form.html",
                                  status=422 if error else 200, customers=customers, preselected=preselected,
                                  state=state, error=error, states=STATE_CHOICES, runs=queries.recent_runs(),
                                  truncated=len(customers) >= queries.CUSTOMER_LIST_LIMIT)


@bp.route("/send-many/<int:run_id>")
@requires("manage_exemption_requests")
def send_run(run_id: int):
    run = _get(ExemptionSendRun, run_id)
    response = render_page_or_partial("exemptions/send_run.html", "exemptions/_send_run_part.html", run=run)
    if wants_partial() and run.status is SendRunStatus.DONE:
        hx_trigger(response, "requests-sent", CHANGED)
        return stop_polling(response)
    return response


# -- the customer page tab -----------------------------------------------------------------------------------

@bp.route("/customers/<int:customer_id>")
@requires("view_dashboard")
def customer_certificates(customer_id: int):
    return _customer_page(_get(Customer, customer_id))


def _customer_page(customer: Customer, **extra) -> str:
    certs = queries.customer_certificates(customer.id)
    today = utcnow().date()
    on = request.args.get("on", "")
    subjects = (services.REQUEST_SUBJECT, services.CERTIFICATE_SUBJECT, services.CUSTOMER_SUBJECT)
    return render_template(
        "exemptions/customer.html", customer=customer, requests=queries.customer_requests(customer.id),
        certificates=certs, activities=[a for a in customer_timeline(customer.id, limit=200)
                                        if a.subject_type in subjects],
        today=today, expiring={c.id for c in certs if services.is_expiring_soon(c, today)}, on=on,
        CS=CS, **extra,
    )



# -- free notes --------------------------------------------------------------------------------------------

def _add_note(subject_type: str, subject_id: int, customer_id: int, *, back: str, page_with_error):
    """One handler for every note form: the note is stored and the page shown again, or the page comes
    back with the message and the text kept (``page_with_error(message, text)`` renders it, 422)."""
    text = request.form.get("text", "")
    try:
        services.add_note(subject_type, subject_id, text, actor=current_user, customer_id=customer_id, now=utcnow())
    except services.InvalidData as exc:
        db.session.rollback()
        return make_response(page_with_error(exc.errors["text"], text), 422)
    db.session.commit()
    if not is_htmx():
        flash("Note added.", "success")
    return hx_redirect(back)


@bp.route("/requests/<int:request_id>/notes", methods=["POST"])
@requires("manage_exemption_requests")
def add_request_note(request_id: int):
    req = _get(ExemptionRequest, request_id)
    return _add_note(services.REQUEST_SUBJECT, req.id, req.customer_id,
                     back=url_for("exemptions.request_detail", request_id=req.id),
                     page_with_error=lambda e, text: render_page_or_partial(
                         "exemptions/request.html", "exemptions/_request_part.html",
                         **_request_context(req, note_error=e, note_text=text)))


@bp.route("/certificates/<int:certificate_id>/notes", methods=["POST"])
@requires("review_exemptions")
def add_certificate_note(certificate_id: int):
    cert = _get(ExemptionCertificate, certificate_id)
    return _add_note(services.CERTIFICATE_SUBJECT, cert.id, cert.customer_id,
                     back=url_for("exemptions.review", certificate_id=cert.id),
                     page_with_error=lambda e, text: render_page_or_partial(
                         "exemptions/review.html", "exemptions/_review_part.html",
                         **_review_context(cert, note_error=e, note_text=text)))


@bp.route("/customers/<int:customer_id>/notes", methods=["POST"])
@requires("manage_exemption_requests")
def add_customer_note(customer_id: int):
    customer = _get(Customer, customer_id)
    return _add_note(services.CUSTOMER_SUBJECT, customer.id, customer.id,
                     back=url_for("exemptions.customer_certificates", customer_id=customer.id),
                     page_with_error=lambda e, text: _customer_page(customer, note_error=e, note_text=text))
