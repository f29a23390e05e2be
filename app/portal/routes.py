"""The logged-in customer portal: requests and their status, submit a request, downloads, Resend POI."""

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.access import customer_user_limit, requires
from app.customers import cards
from app.enums import RequestSource, RequestType
from app.extensions import db
from app.htmx import hx_trigger, render_page_or_partial, wants_partial
from app.i18n import label_of, money_cents
from app.insurance import fees, intake, intake_errors
from app.insurance.intake_forms import CertificateRequestForm, ResendPoiForm
from app.insurance.intake_views import resend_poi_response
from app.models import CertificateRequest
from app.models.base import utcnow
from app.portal import bp
from app.storage import certificate_download


def _customer():
    customer = current_user.customer
    if customer is None:
        abort(404)
    return customer


def _home_context(customer, **extra):
    ok, why = intake.eligibility(customer)
    return {"customer": customer, "requests": intake.customer_requests(customer.id),
            "certificates": intake.customer_certificates(customer.id), "eligible": ok, "refusal": why,
            "poi_form": extra.pop("poi_form", None) or ResendPoiForm(), **extra}


@bp.route("/")
@requires("portal")
def home():
    customer = _customer()
    return render_page_or_partial("portal/home.html", "portal/_requests_part.html", **_home_context(customer))


def _form_context(customer, form, **extra):
    ok, why = intake.eligibility(customer)
    if not form.idempotency_key.data:
        form.idempotency_key.data = intake.new_idempotency_key()
    return {"customer": customer, "form": form, "eligible": ok, "refusal": why,
            "quote": fees.quote(customer, RequestType.COI_WOS), "fees": fees.get_fees(),
            "action": url_for("portal.new_request"), **extra}


@bp.route("/requests/new", methods=["GET", "POST"])
@requires("portal")
def new_request():
    customer = _customer()
    form = CertificateRequestForm(request.form if request.method == "POST" else None)
    if request.method == "GET":
        draft = cards.draft_for(customer, request.args.get("retry"))
        if draft is not None and draft.request_id is None:
            # back from the card page: the declined request as it was typed, with one key for the retry
            form = CertificateRequestForm(data=cards.retry_form_data(draft))
            return render_page_or_partial("portal/request_new.html", "portal/_request_form_part.html",
                                          **_form_context(customer, form, retry=draft))
        if request.args.get("type") in ("coi", "coi_wos"):
            form.type.data = request.args["type"]
        return render_page_or_partial("portal/request_new.html", "portal/_request_form_part.html",
                                      **_form_context(customer, form))
    try:
        req = intake.submit_certificate_request(
            customer, type=form.type.data, source=RequestSource.PORTAL, fields=form.values(), actor=current_user,
            now=utcnow(), idempotency_key=form.idempotency_key.data, allowed_types=intake.REQUESTABLE_TYPES)
    except intake_errors.RequestInvalid as exc:
        form.apply_errors(exc)
        return render_page_or_partial("portal/request_new.html", "portal/_request_form_part.html", status=422,
                                      **_form_context(customer, form, error=str(exc)))
    except (intake_errors.NotEligible, intake_errors.PaymentDeclined, intake_errors.PaymentUnavailable) as exc:
        db.session.commit()  # keep the refusal / declined payment, its e-mail and SMS
        form.idempotency_key.data = intake.new_idempotency_key()
        declined = exc.payment if isinstance(exc, intake_errors.PaymentDeclined) else None
        if declined is not None:  # keep what was typed, to retry after replacing the card
            cards.keep_declined_request(customer, declined, type=form.type.data, fields=form.values(),
                                        actor=current_user, now=utcnow())
            db.session.commit()
        return render_page_or_partial("portal/request_new.html", "portal/_request_form_part.html", status=422,
                                      **_form_context(customer, form, error=str(exc), declined=declined))
    cards.mark_retried(customer, form.idempotency_key.data, req.id)
    db.session.commit()
    message = gettext("Request #%(id)s received: %(kind)s for %(holder)s.", id=req.id, kind=label_of(req.type),
                      holder=req.holder_name)
    if req.fee_cents and req.payments:
        paid = req.payments[0]
        message += " " + gettext("Your card ending %(last4)s was charged %(amount)s.", last4=paid.card_last4,
                                 amount=money_cents(paid.amount_cents))
    response = render_page_or_partial("portal/request_new.html", "portal/_request_form_part.html",
                                      **_form_context(customer, CertificateRequestForm(), submitted=req,
                                                      confirmation=message))
    if wants_partial():
        return hx_trigger(response, "certificate-request-submitted", toast=message)
    flash(message, "success")
    return redirect(url_for("portal.request_detail", request_id=req.id), code=303)


@bp.route("/requests/<int(max=2147483647):request_id>")
@requires("portal")
def request_detail(request_id: int):
    customer = _customer()
    req = db.session.get(CertificateRequest, request_id)
    if req is None or req.customer_id != customer.id:
        abort(404)
    return render_page_or_partial("portal/request.html", "portal/_request_status_part.html", customer=customer,
                                  req=req)


@bp.route("/certificates/<int(max=2147483647):certificate_id>/download")
@requires("portal")
def download_certificate(certificate_id: int):
    customer = _customer()
    cert = intake.certificate_for(customer.id, certificate_id)
    if cert is None:
        abort(404)
    return certificate_download(cert) or abort(404)


@bp.route("/poi", methods=["POST"])
@requires("portal")
@customer_user_limit("RESEND_RATE_LIMIT")
def resend_poi():
    return resend_poi_response(_customer(), page="portal/home.html", partial="portal/_poi_part.html",
                               context=_home_context, done_url=url_for("portal.home"))
