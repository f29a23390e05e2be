"""Customer page, "Certificates" tab: certificates to re-issue after a renewal or new limits (preview per
holder), re-issued as new revisions in one background run with progress. Thin views over
``app.insurance.issuing`` and ``app.insurance.reissue_runs``."""

from flask import abort, redirect, request, url_for
from flask_login import current_user

from app.auth.access import require_customer_access, requires
from app.customers import bp
from app.customers.certificates import _tab_context
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, render_page_or_partial
from app.insurance import issuing, reissue_runs
from app.models import Customer, ReissueRun
from app.models.base import utcnow
from app.validation import parse_id


@bp.app_context_processor
def _reissue_helpers() -> dict:
    def reissue_candidates(customer: Customer):
        return issuing.certificates_to_reissue(customer, utcnow().date())

    def recent_reissue_runs(customer: Customer):
        return reissue_runs.recent_runs(customer.id)

    return {"reissue_candidates": reissue_candidates, "recent_reissue_runs": recent_reissue_runs}


def _customer(customer_id: int) -> Customer:
    require_customer_access(customer_id)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.route("/<int(max=2147483647):customer_id>/certificates/reissue", methods=["POST"])
@requires("manage_holders")
def reissue_certificates(customer_id: int):
    customer = _customer(customer_id)
    allowed = [cert.id for cert, _changes in issuing.certificates_to_reissue(customer, utcnow().date())]
    picked = {parse_id(v) for v in request.form.getlist("certificate_ids")}
    chosen = allowed if request.form.get("all") == "1" else [i for i in allowed if i in picked]
    if not chosen:
        message = ("Choose at least one certificate to re-issue." if allowed else
                   "No certificate needs re-issuing now: each prints what its policies print today.")
        return render_page_or_partial("customers/certificates.html", "customers/_reissue_part.html", status=422,
                                      **_tab_context(customer, reissue_error=message))
    run = reissue_runs.start_reissue(customer, chosen, actor=current_user, now=utcnow())
    db.session.commit()
    message = (f"{run.total} certificate(s) are being re-issued as new revisions; each holder gets its new "
               "revision by e-mail.")
    if is_htmx():
        response = render_page_or_partial("customers/reissue_run.html", "customers/_reissue_run.html",
                                          customer=customer, run=run)
        return hx_trigger(response, "certificates-reissued", toast=message)
    return redirect(url_for("customers.reissue_run", customer_id=customer.id, run_id=run.id), code=303)


@bp.route("/<int(max=2147483647):customer_id>/certificates/reissue/<int(max=2147483647):run_id>")
@requires("manage_holders")
def reissue_run(customer_id: int, run_id: int):
    """The run's progress: the whole page, or (htmx polling) the progress partial until it ends."""
    customer = _customer(customer_id)
    run = db.session.get(ReissueRun, run_id)
    if run is None or run.customer_id != customer.id:
        abort(404)
    return render_page_or_partial("customers/reissue_run.html", "customers/_reissue_run.html",
                                  customer=customer, run=run)
