"""Public exemption request-link pages (no login: the link's token is the key).

Every failure (unknown or tampered token, expired, cancelled, replaced by a resend, already
completed) answers the same neutral page with the same status, so a link reveals nothing.
"""

from __future__ import annotations

from flask import current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup, escape
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.auth.access import public
from app.exemptions import services
from app.exemptions.forms import BlankLinkForm, LinkForm
from app.exemptions.prefill import PrefillError, read_prefill
from app.extensions import db, limiter
from app.i18n import use_customer_language
from app.models.base import utcnow
from app.portal import bp
from app.uploads import PDF, CheckedUpload, UploadRejected, answers_oversize_files, check_upload

MAX_ROWS = 51  # the 50 states and DC


# -- the state <select>, rendered cheaply ---------------------------------------------------------------
#
# Every jurisdiction row has a 52-option state <select>; WTForms' widget escapes and formats each option
# on every render, which was most of the link page's time. The options are the same for every row and
# every request, so their HTML is built once per process and language, and a row only marks its choice.

_OPTIONS_HTML: dict[tuple[int, str], str] = {}


def _options_html(field) -> str:
    from flask_babel import get_locale

    key = (id(field.choices), str(get_locale()))
    html = _OPTIONS_HTML.get(key)
    if html is None:
        html = "".join(f'<option value="{escape(value)}">{escape(label)}</option>'
                       for value, label, *_ in field.iter_choices())
        _OPTIONS_HTML[key] = html
    return html


@bp.app_template_global()
def state_select(field, aria_label: str) -> Markup:
    """``field(aria-label=...)`` for a jurisdiction row's state SelectField, the same HTML as WTForms'
    Select widget (tests/web/test_link_page_speed.py compares them) at a fraction of the cost."""
    from wtforms.widgets import html_params

    options = _options_html(field)
    data = field.data
    if data is not None:
        plain = f'<option value="{escape(str(data))}">'
        options = options.replace(plain, f'<option selected value="{escape(str(data))}">', 1)
    attrs = {"aria-label": aria_label, "id": field.id, **(field.render_kw or {})}
    if "required" in field.flags:
        attrs["required"] = True
    return Markup(f"<select {html_params(name=field.name, **attrs)}>{options}</select>")


# -- the blank form's fields, rendered once -------------------------------------------------------------
#
# A link without a prefill opens on a blank form: its certificate fields (reason, state rows, dates,
# purchaser, signature) are the same HTML for every link and request in one language. They are rendered
# once per process, language and number of rows; the CSRF token, the link's own address and details
# around them are rendered per request (tests/web/test_link_page_speed.py compares both ways).

_BLANK_FIELDS: dict[str, Markup] = {}
CACHE_BLANK_FIELDS = True


def _blank_fields() -> tuple[LinkForm | BlankLinkForm, Markup | None]:
    """(the form to render, its certificate fields' HTML) for a link opened on a blank form."""
    from app.i18n import current_language

    if not CACHE_BLANK_FIELDS:
        return LinkForm(formdata=None), None
    key = current_language()
    html = _BLANK_FIELDS.get(key)
    if html is None:
        html = Markup(render_template("exemptions/_certificate_fields.html", form=LinkForm(formdata=None),
                                      add_rows="link"))
        _BLANK_FIELDS[key] = html
    return BlankLinkForm(formdata=None), html


def _rate():
    return current_app.config["LINK_RATE_LIMIT"]


def unavailable():
    db.session.commit()  # keep a lazily-applied expiry
    response = make_response(render_template("portal/link_unavailable.html"), 404)
    response.headers["Cache-Control"] = "no-store"
    return response


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="exemption-kept-document")


def _kept_upload(form: LinkForm, request_id: int) -> CheckedUpload | None:
    """A document accepted on an earlier attempt of this same link whose other fields had errors."""
    raw = (form.kept_document.data or "").strip()
    if not raw:
        return None
    try:
        ref = _serializer().loads(raw)
    except BadSignature:
        return None
    if ref.get("rid") != request_id or "sha" not in ref:
        return None
    data = read_scratch(request_id, ref["sha"])
    if data is None:
        return None
    return CheckedUpload(data=data, content_type=ref["ct"], filename=ref["name"], page_count=ref["pages"])


# A document chosen on a post that is not accepted ("more states", field errors) waits in a scratch
# file, one per link (a new one replaces it, so a link holds at most one upload's bytes), and the
# sweep deletes scratch files after an hour. Only an accepted submission stores the document.
SCRATCH_HOURS = 1


def _scratch_path(request_id: int):
    from pathlib import Path

    return Path(current_app.config["UPLOAD_DIR"]) / "scratch" / f"link-{request_id}"


def keep_in_scratch(request_id: int, data: bytes) -> str:
    """Write the link's one scratch file (atomically) and return the SHA-256 that names this content."""
    import hashlib
    import os
    import tempfile

    path = _scratch_path(request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def read_scratch(request_id: int, sha: str) -> bytes | None:
    import hashlib

    path = _scratch_path(request_id)
    if not path.exists():
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == sha else None


def _returned_notes(req) -> str:
    """The reviewer's notes on the submission this (resubmission) link replaces, shown to the customer."""
    from app.models import ExemptionCertificate

    if not req.previous_certificate_id:
        return ""
    previous = db.session.get(ExemptionCertificate, req.previous_certificate_id)
    return previous.review_notes if previous is not None and previous.customer_id == req.customer_id else ""


def _render_form(req, form, *, status=200, upload_error=None, kept=None, prefill_note=None,
                 certificate_fields=None):
    response = make_response(render_template(
        "portal/link.html", req=req, form=form, upload_error=upload_error, kept=kept, prefill_note=prefill_note,
        certificate_fields=certificate_fields,
        returned_notes=_returned_notes(req), max_mb=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024)), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/r/<token>", methods=["GET"])
@public
@limiter.limit(_rate)
def link(token: str):
    now = utcnow()
    try:
        req = services.resolve_link(token, now=now)
    except services.LinkUnavailable:
        return unavailable()
    use_customer_language(req.customer)
    if db.session.new or db.session.dirty:
        db.session.commit()  # a lazily-applied expiry; opening is recorded by the page itself (below)
    if req.prefill:
        form = LinkForm(formdata=None)
        form.fill_from(req.prefill)
        return _render_form(req, form)
    form, fields = _blank_fields()
    return _render_form(req, form, certificate_fields=fields)


@bp.route("/r/<token>/opened", methods=["POST"])
@public
@limiter.limit(_rate)
def link_opened(token: str):
    """Record "opened" from a request the page makes once a browser shows it (htmx, with CSRF):
    mail scanners that fetch the link's URL to check it do not run the page, so they open nothing."""
    now = utcnow()
    try:
        req = services.resolve_link(token, now=now)
    except services.LinkUnavailable:
        return unavailable()
    try:
        services.open_link(req, now=now)
        db.session.commit()
    except (StaleDataError, IntegrityError):
        db.session.rollback()  # opened at the same moment by another request: it is recorded
    return "", 204


@bp.route("/r/<token>", methods=["POST"])
@public
@limiter.limit(_rate)
@answers_oversize_files  # a too-large file is answered on the form, with what was typed kept
def submit_link(token: str):
    now = utcnow()
    try:
        req = services.resolve_link(token, now=now)
    except services.LinkUnavailable:
        return unavailable()
    use_customer_language(req.customer)
    form = LinkForm()
    if "add_rows" in request.form:
        # "More states": the same form with five more jurisdiction rows; nothing is validated or saved,
        # except that a document chosen already is checked and kept, so it need not be chosen again.
        for _ in range(5):
            if len(form.jurisdictions) < MAX_ROWS:
                form.jurisdictions.append_entry()
        kept, upload_error = _keep_chosen_document(form, req.id)
        return _render_form(req, form, kept=kept, upload_error=upload_error)
    if "prefill" in request.form:
        # "Fill in the form from this document": the fields of a filled-in PDF go into what the customer
        # left empty, for them to check; nothing is validated or saved (the document is kept, as above).
        kept, upload_error = _keep_chosen_document(form, req.id)
        note = None
        if kept and not upload_error:
            note = _prefill_from_kept_document(form, req.id)
        elif not upload_error:
            upload_error = gettext("Choose your filled-in certificate (a PDF) first, then “Fill in the form "
                                   "from this document”.")
        return _render_form(req, form, kept=kept, upload_error=upload_error, prefill_note=note)
    data = form.to_data()
    upload_error = None
    upload = None
    file = request.files.get("document")
    if file is not None and file.filename:
        try:
            upload = check_upload(file.read(), file.filename)
        except UploadRejected as exc:
            upload_error = str(exc)
    else:
        upload = _kept_upload(form, req.id)
        if upload is None:
            upload_error = gettext("Attach the signed certificate (PDF, PNG or JPEG).")
    kept = None
    if upload is not None and (data is None or upload_error):
        # Keep a good document across a failed attempt, so the customer does not upload it again.
        sha = keep_in_scratch(req.id, upload.data)
        form.kept_document.data = _serializer().dumps({"rid": req.id, "sha": sha, "ct": upload.content_type,
                                                       "name": upload.filename, "pages": upload.page_count})
        kept = upload.filename
    elif upload is None:
        form.kept_document.data = ""
    if data is None or upload_error or upload is None:
        db.session.rollback()
        return _render_form(req, form, status=422, upload_error=upload_error, kept=kept)
    for attempt in range(2):
        try:
            services.submit_certificate(req, data, upload, now=now)
            db.session.commit()
            break
        except services.InvalidData as exc:
            db.session.rollback()
            form.apply_errors(exc.errors)
            return _render_form(req, form, status=422, kept=upload.filename)
        except services.LinkUnavailable:
            return unavailable()
        except (StaleDataError, IntegrityError):
            # Another request changed this one meanwhile. A double-click: its twin completed it, so
            # answer what the twin got. Anything else (the page's own "opened" call): try once more.
            db.session.rollback()
            if services.is_completed(req):
                return redirect(url_for("portal.link_submitted"), code=303)
            if attempt:
                return unavailable()
            try:
                req = services.resolve_link(token, now=now)
            except services.LinkUnavailable:
                return unavailable()
    return redirect(url_for("portal.link_submitted"), code=303)


def _prefill_from_kept_document(form: LinkForm, request_id: int) -> tuple[str, bool]:
    """Fill the form's empty fields from the kept document's PDF form fields: (the sentence to show, whether
    anything was copied)."""
    upload = _kept_upload(form, request_id)
    if upload is None or upload.content_type != PDF:
        return gettext("Only a PDF that was filled in on a computer can fill in the form; please type the "
                       "details below."), False
    try:
        found, values = read_prefill(upload.data)
    except PrefillError as exc:
        return str(exc), False
    count = form.fill_blanks(values) if values else 0
    if not count:
        return gettext("We found nothing to copy from %(file)s (no filled-in fields we can read); please type "
                       "the details below.", file=upload.filename), False
    return ngettext("We copied %(num)d field from %(file)s (%(form)s). Check it before you submit.",
                    "We copied %(num)d fields from %(file)s (%(form)s). Check them before you submit.",
                    count, file=upload.filename, form=found), True


def _keep_chosen_document(form: LinkForm, request_id: int) -> tuple[str | None, str | None]:
    """(kept file name, upload error) for the document on this post, keeping a good one for the next post."""
    file = request.files.get("document")
    if file is None or not file.filename:
        upload = _kept_upload(form, request_id)
        return (upload.filename if upload else None), None
    try:
        upload = check_upload(file.read(), file.filename)
    except UploadRejected as exc:
        form.kept_document.data = ""
        return None, str(exc)
    sha = keep_in_scratch(request_id, upload.data)
    form.kept_document.data = _serializer().dumps({"rid": request_id, "sha": sha, "ct": upload.content_type,
                                                   "name": upload.filename, "pages": upload.page_count})
    return upload.filename, None


@bp.route("/link-submitted")
@public
def link_submitted():
    return render_template("portal/link_done.html")
