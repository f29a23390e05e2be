"""The staff certificate queue (COI / WOS / POI requests): list, request page and actions.

Routes are thin: parse the form -> call app.insurance.processing -> commit -> render. Each action
answers htmx with the refreshed actions panel plus ``HX-Trigger: request-updated`` (counts and the
timeline refresh themselves) and a toast; without JS it redirects (303) back to the request page.
A conflict (somebody else acted first) answers 409 with the current state; bad input 422.

Submit (generated or uploaded) only stores the approved values and defers the PDF job; the panel then
shows a status widget that polls ``issue_status`` until the job has completed the request, and fires
``certificate-issued`` so the panel refreshes itself.
"""

from __future__ import annotations

import re

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from app import activity
from app.auth.access import requires
from app.dashboard import bp, queries
from app.enums import CoverageLine, InvalidTransition, RequestStatus, RequestType
from app.extensions import db
from app.fragments import fragment
from app.htmx import hx_trigger, is_htmx, render_page_or_partial, wants_partial
from app.i18n import current_language
from app.insurance import processing, review_drafts
from app.insurance.processing import ActionRefused, RequestConflict, UploadRejected
from app.models import IssuedCertificate
from app.models.base import utcnow
from app.storage import certificate_download

EVENT = "request-updated"
ISSUED_EVENT = "certificate-issued"
SUBMITTED = "Submitted: the certificate is being generated and will be e-mailed."


# -- listing ---------------------------------------------------------------------------------------

def _queue_fragments(partial: str, build_context) -> object:
    """The queue page (or, for htmx, ``partial``), its list, tabs and filters from the fragment kept for the
    current data version and these arguments (app/fragments.py); the page around it per request."""
    version = queries.queue_version()  # first: the rows rendered below are at least this new
    only_partial = wants_partial()
    name = partial if only_partial else "dashboard/_queue_part.html"
    html = fragment(version, (request.endpoint, name, request.query_string, current_language()),
                    lambda: render_template(name, **build_context()))
    if only_partial:
        response = make_response(html)
    else:
        response = make_response(render_template("dashboard/queue.html", queue_part=html))
    response.vary.add("HX-Request")
    return response


@bp.route("/queue")
@requires("view_dashboard")
def queue():
    def context() -> dict:
        filters = queries.QueueFilters.from_args(request.args)
        page = queries.queue_page(filters, page=request.args.get("page", 1, type=int),
                                  after=request.args.get("after"), before=request.args.get("before"))
        return {"filters": filters, "requests": page, "counts": queries.pending_counts(), "tabs": queries.TABS,
                "statuses": list(processing.RequestStatus), "types": list(RequestType)}

    if request.headers.get("HX-Target") == "queue-results":
        return _queue_fragments("dashboard/_queue_results.html", context)
    return _queue_fragments("dashboard/_queue_part.html", context)


@bp.route("/queue/counts")
@requires("view_dashboard")
def queue_counts():
    def context() -> dict:
        filters = queries.QueueFilters.from_args(request.args)
        return {"filters": filters, "counts": queries.pending_counts(), "tabs": queries.TABS,
                "requests": queries.queue_page(filters), "statuses": list(processing.RequestStatus),
                "types": list(RequestType)}

    return _queue_fragments("dashboard/_queue_tabs.html", context)


# -- the request page --------------------------------------------------------------------------------

def _load(request_id: int):
    req = queries.request_detail(request_id)
    if req is None:
        abort(404)
    return req


def _with_draft(req, extra: dict) -> dict:
    """On a plain page view, a kept review draft reopens the review form with what was typed."""
    draft = review_drafts.draft_for(req)
    if draft is None or request.method != "GET" or "automation_data" in extra:
        return {"review_draft": draft, **extra}
    try:
        data = processing._build_data(req, now=utcnow())
    except ActionRefused:
        return {"review_draft": draft, **extra}
    return {"review_draft": draft, "automation_data": data, "form": draft.fields, **extra}


def _context(req, **extra) -> dict:
    # Always called after the action's commit or rollback: storing lazily seeded default reasons is safe here.
    processing.ensure_default_reasons()
    db.session.commit()
    extra = _with_draft(req, extra)
    return {
        "req": req,
        "timeline": activity.timeline(processing.SUBJECT, req.id),
        "reasons": processing.rejection_reasons(),
        "automation": processing.automation_available(req),
        "cancel_consequences": processing.cancel_consequences(req),
        "certificates": list(req.certificates),
        "coverage_lines": list(CoverageLine),
        "coverage_rows": processing.coverage_rows,
        "certificate_guard": processing.review_guard,
        "review_choices": processing.review_choices,
        **{"form": request.form if request.method == "POST" else {}, **extra},
    }


def _panel(req, status: int = 200, **extra):
    return render_page_or_partial("dashboard/request.html", "dashboard/_request_actions.html", status=status,
                                  **_context(req, **extra))


@bp.route("/queue/<int(max=2147483647):request_id>")
@requires("view_dashboard")
def request_detail(request_id: int):
    req = _load(request_id)
    if request.headers.get("HX-Target") == "request-timeline":
        return render_page_or_partial("dashboard/request.html", "dashboard/_request_timeline.html",
                                      **_context(req))
    return render_page_or_partial("dashboard/request.html", "dashboard/_request_actions.html", **_context(req))


def _version() -> int | None:
    from app.validation import parse_int

    return parse_int(request.form.get("version"), low=0, high=2**31 - 1)


STALE_FORM = "This form did not say which version of the request you saw: reload the page and try again."


def _act(request_id: int, action, toast: str, *, refused_extra=None):
    """Run one staff action with the conflict / refusal handling shared by every button.

    Every action form carries the version the user saw; without it a conflict could not be detected, so
    the action is refused (422) rather than done blind.
    """
    req = _load(request_id)
    if _version() is None:
        return _panel(req, status=422, error=STALE_FORM)
    try:
        result = action(req, _version())
        db.session.commit()
    except (RequestConflict, InvalidTransition, StaleDataError) as exc:
        db.session.rollback()
        message = str(exc) if isinstance(exc, RequestConflict) else None
        req = _load(request_id)
        db.session.refresh(req)
        response = _panel(req, status=409, error=message or processing.conflict_message(req))
        return hx_trigger(response, EVENT, toast="Someone else changed this request first.", level="error")
    except (ActionRefused, UploadRejected) as exc:
        db.session.rollback()
        req = _load(request_id)
        extra = refused_extra(req) if refused_extra else {}
        return _panel(req, status=422, error=str(exc), **extra)
    if isinstance(result, dict):  # a form to show (automation prefill), not a finished action
        return hx_trigger(_panel(req, automation_data=result), EVENT, toast=toast)
    if not is_htmx():
        flash(toast, "success")
        return redirect(url_for("dashboard.request_detail", request_id=request_id), code=303)
    db.session.refresh(req)
    return hx_trigger(_panel(req), EVENT, toast=toast)


@bp.route("/queue/<int(max=2147483647):request_id>/start", methods=["POST"])
@requires("process_queue")
def mark_in_progress(request_id: int):
    return _act(request_id, lambda req, v: processing.mark_in_progress(
        req, actor=current_user, now=utcnow(), expected_version=v), "Marked in progress.")


@bp.route("/queue/<int(max=2147483647):request_id>/automate", methods=["POST"])
@requires("process_queue")
def attempt_automation(request_id: int):
    return _act(request_id, lambda req, v: processing.attempt_automation(
        req, actor=current_user, now=utcnow(), expected_version=v),
        "Certificate prefilled: review and edit, then submit.")


DESCRIPTION_MAX = 5000
LIMIT_RE = re.compile(r"^\$?\s*[\d,]+(\.0+)?$")


def parse_overrides(form) -> dict:
    """Staff edits from the review form -> the ``overrides`` build_certificate_data takes."""
    overrides: dict = {"coverages": {}, "holder": {}}
    if "description" in form:
        description = form.get("description", "")
        if len(description) > DESCRIPTION_MAX:
            raise ActionRefused(f"The description of operations takes at most {DESCRIPTION_MAX:,} characters "
                                f"({len(description):,} typed): shorten it; nothing was submitted.")
        overrides["description"] = description
    for key in ("name", "address", "city", "state", "zip_code", "email"):
        value = form.get(f"holder_{key}", "").strip()
        if value:
            overrides["holder"][key] = value[:200]
    for name, value in form.items():
        parts = name.split(".")
        if parts[0] != "cov" or len(parts) < 3 or parts[1] not in CoverageLine._value2member_map_:
            continue
        row = overrides["coverages"].setdefault(parts[1], {})
        value = value.strip()
        if parts[2] == "limit" and len(parts) == 4:
            if not value:
                continue
            if not LIMIT_RE.match(value):
                raise ActionRefused(f"The limit {parts[3].replace('_', ' ')} must be a whole dollar amount "
                                    f"(you typed {value[:30]!r}).")
            row.setdefault("limits", {})[parts[3]] = int(value.replace("$", "").replace(",", "").split(".")[0])
        elif parts[2] in ("policy_number", "insurer", "naic") and value:
            row[parts[2]] = value[:100]
        elif parts[2] == "policy_id" and value:
            row["policy_id"] = value[:12]
        elif parts[2] == "marks":  # the row's ADDL INSD / SUBR WVD boxes were on the form: unticked means no
            row["addl_insd"] = form.get(f"cov.{parts[1]}.addl_insd") == "1"
            row["subr_wvd"] = form.get(f"cov.{parts[1]}.subr_wvd") == "1"
    if "state" in overrides["holder"]:
        from app.validation import InvalidInput, normalize_state

        try:
            overrides["holder"]["state"] = normalize_state(overrides["holder"]["state"])
        except InvalidInput as exc:
            raise ActionRefused(f"Holder state: {exc}") from exc
    return {k: v for k, v in overrides.items() if v not in ({}, None)}


def _prefill_again(req) -> dict:
    """After a refused submit: show the review form again (the typed values come from request.form)."""
    try:
        return {"automation_data": processing._build_data(req, now=utcnow())}
    except ActionRefused:
        return {}


@bp.route("/queue/<int(max=2147483647):request_id>/submit", methods=["POST"])
@requires("process_queue")
def submit_certificate(request_id: int):
    def action(req, version):
        overrides = parse_overrides(request.form)
        submitted = processing.submit_generated(req, actor=current_user, now=utcnow(), overrides=overrides,
                                                send_to_holder=bool(request.form.get("send_to_holder")),
                                                expected_version=version,
                                                override_note=request.form.get("override_note", ""))
        review_drafts.discard(req)
        return submitted

    return _act(request_id, action, SUBMITTED, refused_extra=_prefill_again)


@bp.route("/queue/<int(max=2147483647):request_id>/review-draft", methods=["POST"])
@requires("process_queue")
def save_review_draft(request_id: int):
    """Keep the review form as typed (the form's autosave and its Save draft button)."""
    req = _load(request_id)
    try:
        draft = review_drafts.save(req, request.form, actor=current_user, now=utcnow())
        db.session.commit()
    except ActionRefused as exc:
        db.session.rollback()
        if not is_htmx():
            return _panel(_load(request_id), status=422, error=str(exc))
        return render_template("dashboard/_review_draft_status.html", error=str(exc)), 422
    if not is_htmx():
        flash("Draft saved.", "success")
        return redirect(url_for("dashboard.request_detail", request_id=request_id), code=303)
    return render_template("dashboard/_review_draft_status.html", review_draft=draft)


@bp.route("/queue/<int(max=2147483647):request_id>/review-draft/discard", methods=["POST"])
@requires("process_queue")
def discard_review_draft(request_id: int):
    """Throw the draft away and prefill the review form again from the policies on file."""
    def action(req, version):
        review_drafts.discard(req)
        return processing.attempt_automation(req, actor=current_user, now=utcnow(), expected_version=version)

    return _act(request_id, action, "Draft thrown away: the certificate is prefilled again from the policies.")


@bp.route("/queue/<int(max=2147483647):request_id>/upload", methods=["POST"])
@requires("process_queue")
def upload_certificate(request_id: int):
    def action(req, version):
        upload = request.files.get("certificate")
        if upload is None or not upload.filename:
            raise ActionRefused("Choose the certificate PDF to upload.")
        return processing.submit_uploaded(req, actor=current_user, now=utcnow(), data=upload.read(),
                                          filename=upload.filename,
                                          send_to_holder=bool(request.form.get("send_to_holder")),
                                          expected_version=version)

    return _act(request_id, action, SUBMITTED, refused_extra=lambda req: {"show": "upload"})


@bp.route("/queue/<int(max=2147483647):request_id>/issue")
@requires("view_dashboard")
def issue_status(request_id: int):
    """The self-polling status of a submitted certificate (pending -> issued, or failed)."""
    req = _load(request_id)
    if not wants_partial():
        return render_page_or_partial("dashboard/request.html", "dashboard/_request_issue_status.html",
                                      **_context(req))
    response = render_page_or_partial("dashboard/request.html", "dashboard/_request_issue_status.html", req=req,
                                      certificates=list(req.certificates))
    if processing.issue_pending(req):
        return response
    if req.status is RequestStatus.COMPLETED:
        return hx_trigger(response, EVENT, ISSUED_EVENT, toast="Certificate issued and e-mailed.")
    return hx_trigger(response, EVENT, ISSUED_EVENT, toast="The certificate could not be issued.", level="error")


@bp.route("/queue/<int(max=2147483647):request_id>/retry-issue", methods=["POST"])
@requires("process_queue")
def retry_issue(request_id: int):
    return _act(request_id, lambda req, v: processing.retry_issue(
        req, actor=current_user, now=utcnow(), expected_version=v), SUBMITTED)


@bp.route("/queue/<int(max=2147483647):request_id>/relabel", methods=["POST"])
@requires("process_queue")
def relabel_request(request_id: int):
    return _act(request_id, lambda req, v: processing.relabel(
        req, request.form.get("type", ""), actor=current_user, now=utcnow(), expected_version=v), "Relabelled.")


@bp.route("/queue/<int(max=2147483647):request_id>/reject", methods=["POST"])
@requires("process_queue")
def reject_request(request_id: int):
    return _act(request_id, lambda req, v: processing.reject(
        req, request.form.get("reason_id"), actor=current_user, now=utcnow(), note=request.form.get("note", ""),
        expected_version=v), "Rejected; the customer is told why.", refused_extra=lambda req: {"show": "reject"})


@bp.route("/queue/<int(max=2147483647):request_id>/cancel", methods=["POST"])
@requires("process_queue")
def cancel_request(request_id: int):
    return _act(request_id, lambda req, v: processing.cancel(
        req, actor=current_user, now=utcnow(), note=request.form.get("note", ""), expected_version=v),
        "Request cancelled.")


@bp.route("/queue/<int(max=2147483647):request_id>/notes", methods=["POST"])
@requires("process_queue")
def add_request_note(request_id: int):
    req = _load(request_id)
    try:
        processing.add_note(req, request.form.get("text", ""), actor=current_user, now=utcnow())
    except ActionRefused as exc:
        db.session.rollback()
        return render_page_or_partial("dashboard/request.html", "dashboard/_request_timeline.html", status=422,
                                      **_context(req, note_error=str(exc)))
    db.session.commit()
    if not is_htmx():
        flash("Note added.", "success")
        return redirect(url_for("dashboard.request_detail", request_id=request_id), code=303)
    response = render_page_or_partial("dashboard/request.html", "dashboard/_request_timeline.html",
                                      **_context(req, form={}))
    return hx_trigger(response, "note-added", toast="Note added.")


@bp.route("/queue/<int(max=2147483647):request_id>/certificates/<int(max=2147483647):certificate_id>")
@requires("view_dashboard")
def download_certificate(request_id: int, certificate_id: int):
    cert = db.session.get(IssuedCertificate, certificate_id)
    if cert is None or cert.request_id != request_id:
        abort(404)
    return certificate_download(cert) or abort(404)
