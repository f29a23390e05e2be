"""Customer page, "Certificates" tab: certificates to re-issue after a renewal or new limits (preview per
holder), re-issued as new revisions in one background job. Thin views over ``app.insurance.issuing``."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app import activity
from app.auth.access import require_customer_access, requires
from app.customers import bp
from app.extensions import db
from app.htmx import hx_trigger, is_htmx
from app.insurance import issuing
from app.models import Customer
from app.models.base import utcnow
from app.queue import defer
from app.validation import parse_id

REISSUE_JOB = "app.insurance.jobs.reissue_certificates"


@bp.app_context_processor
def _reissue_helpers() -> dict:
    def reissue_candidates(customer: Customer):
        return issuing.certificates_to_reissue(customer, utcnow().date())

    return {"reissue_candidates": reissue_candidates}


@bp.route("/<int(max=2147483647):customer_id>/certificates/reissue", methods=["POST"])
@requires("manage_holders")
def reissue_certificates(customer_id: int):
    require_customer_access(customer_id)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    allowed = {cert.id for cert, _changes in issuing.certificates_to_reissue(customer, utcnow().date())}
    chosen = [i for i in (parse_id(v) for v in request.form.getlist("certificate_ids")) if i in allowed]
    if request.form.get("all") == "1":
        chosen = sorted(allowed)
    if not chosen:
        message, level = "Choose at least one certificate to re-issue.", "error"
    else:
        activity.record("customer", customer.id, "reissue_queued", actor=current_user, customer_id=customer.id,
                        now=utcnow(), message=f"{len(chosen)} certificate(s) queued for re-issue as new revisions.")
        defer(db.session, REISSUE_JOB, customer.id, chosen, current_user.id, queue="pdf")
        db.session.commit()
        message, level = (f"{len(chosen)} certificate(s) are being re-issued as new revisions; each holder gets "
                          "its new revision by e-mail."), "success"
    target = url_for("customers.certificates", customer_id=customer.id)
    if is_htmx():
        response = redirect(target, code=303)
        return hx_trigger(response, "certificates-reissued", toast=message, level=level)
    flash(message, level)
    return redirect(target, code=303)
