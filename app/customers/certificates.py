"""Customer page, "Certificates" tab: issued certificates, resend, POI, internal requests."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.access import customer_user_limit, require_customer_access, requires
from app.customers import bp, cards
from app.enums import RequestSource, RequestType, Role
from app.extensions import db
from app.htmx import hx_trigger, render_page_or_partial, wants_partial
from app.insurance import delivery, fees, intake, intake_errors
from app.insurance.intake_forms import CertificateRequestForm, ResendPoiForm
from app.insurance.intake_views import resend_poi_response
from app.models import Customer
from app.models.base import utcnow
from app.storage import certificate_download


def _customer(customer_id: int) -> Customer:
    require_customer_access(customer_id)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


def _tab_context(customer: Customer, **extra) -> dict:
    ok, why = intake.eligibility(customer)
    return {"customer": customer, "certificates": intake.customer_certificates(customer.id),
            "requests": intake.customer_requests(customer.id, limit=25), "eligible": ok, "refusal": why,
            "poi_form": extra.pop("poi_form", None) or ResendPoiForm(), "resend_errors": {}, **extra}


@bp.route("/<int(max=2147483647):customer_id>/certificates")
@requires("view_dashboard")
def certificates(customer_id: int):
    customer = _customer(customer_id)
    return render_page_or_partial("customers/certificates.html", "customers/_cert_list_part.html",
                                  **_tab_context(customer))


@bp.route("/<int(max=2147483647):customer_id>/certificates/<int(max=2147483647):certificate_id>/download")
@requires("view_dashboard")
def download_certificate(customer_id: int, certificate_id: int):
    """The stored PDF of one of this customer's issued certificates, as sent."""
    customer = _customer(customer_id)
    cert = intake.certificate_for(customer.id, certificate_id)
    if cert is None:
        abort(404)
    return certificate_download(cert) or abort(404)


@bp.route("/<int(max=2147483647):customer_id>/certificates/resend", methods=["POST"])
@requires("resend_certificates")
@customer_user_limit("RESEND_RATE_LIMIT")  # each resend may name 20 addresses: customer users are rate-limited
def resend_certificates(customer_id: int):
    customer = _customer(customer_id)
    try:
        result = delivery.resend_certificates(
            customer, certificate_ids=request.form.getlist("certificate_ids"),
            send_to_holders=request.form.get("send_to_holders") == "y",
            extra_emails=request.form.get("extra_emails", ""), copy_customer=request.form.get("copy_customer") == "y",
            actor=current_user, now=utcnow())
    except intake_errors.RequestInvalid as exc:
        return render_page_or_partial("customers/certificates.html", "customers/_cert_list_part.html", status=422,
                                      **_tab_context(customer, resend_errors=exc.errors,
                                                     extra_emails=request.form.get("extra_emails", "")))
    db.session.commit()
    count = sum(1 for r in result["recipients"].values() if r)
    addresses = sorted({a for r in result["recipients"].values() for a in r})
    message = f"{count} certificate(s) queued to {', '.join(addresses)}."
    if wants_partial():
        response = render_page_or_partial("customers/certificates.html", "customers/_cert_list_part.html",
                                          **_tab_context(customer, resend_sent=message))
        return hx_trigger(response, "certificates-resent", toast=message)
    flash(message, "success")
    return redirect(url_for("customers.certificates", customer_id=customer.id), code=303)


@bp.route("/<int(max=2147483647):customer_id>/certificates/poi", methods=["POST"])
@requires("resend_certificates")
@customer_user_limit("RESEND_RATE_LIMIT")
def resend_poi(customer_id: int):
    customer = _customer(customer_id)
    return resend_poi_response(customer, page="customers/certificates.html", partial="customers/_cert_poi_part.html",
                               context=_tab_context,
                               done_url=url_for("customers.certificates", customer_id=customer.id))


def _form_context(customer: Customer, form: CertificateRequestForm, **extra) -> dict:
    ok, why = intake.eligibility(customer)
    if not form.idempotency_key.data:
        form.idempotency_key.data = intake.new_idempotency_key()
    return {"customer": customer, "form": form, "eligible": ok, "refusal": why, "internal": True,
            "quote": fees.quote(customer, RequestType.COI_WOS), "fees": fees.get_fees(),
            "action": url_for("customers.submit_request", customer_id=customer.id), **extra}


@bp.route("/<int(max=2147483647):customer_id>/certificates/request", methods=["GET", "POST"])
@requires("submit_coi")
def submit_request(customer_id: int):
    """Submit a COI / COI with WOS on the customer's behalf (source "internal")."""
    customer = _customer(customer_id)
    form = CertificateRequestForm(request.form if request.method == "POST" else None)
    page, partial = "customers/certificates_request.html", "portal/_request_form_part.html"
    if request.method == "GET":
        draft = cards.draft_for(customer, request.args.get("retry"))
        if draft is not None and draft.request_id is None:  # back from the card page: retry the declined request
            return render_page_or_partial(page, partial, **_form_context(
                customer, CertificateRequestForm(data=cards.retry_form_data(draft)), retry=draft))
        return render_page_or_partial(page, partial, **_form_context(customer, form))
    source = RequestSource.PORTAL if current_user.role is Role.CUSTOMER else RequestSource.INTERNAL
    try:
        req = intake.submit_certificate_request(
            customer, type=form.type.data, source=source, fields=form.values(), actor=current_user, now=utcnow(),
            idempotency_key=form.idempotency_key.data, allowed_types=intake.REQUESTABLE_TYPES)
    except intake_errors.RequestInvalid as exc:
        form.apply_errors(exc)
        return render_page_or_partial(page, partial, status=422, **_form_context(customer, form, error=str(exc)))
    except (intake_errors.NotEligible, intake_errors.PaymentDeclined, intake_errors.PaymentUnavailable) as exc:
        if isinstance(exc, intake_errors.PaymentDeclined):  # keep what was typed, to retry after replacing the card
            cards.keep_declined_request(customer, exc.payment, type=form.type.data, fields=form.values(),
                                        actor=current_user, now=utcnow())
        db.session.commit()
        form.idempotency_key.data = intake.new_idempotency_key()
        return render_page_or_partial(page, partial, status=422, **_form_context(
            customer, form, error=str(exc),
            declined=exc.payment if isinstance(exc, intake_errors.PaymentDeclined) else None))
    cards.mark_retried(customer, form.idempotency_key.data, req.id)
    db.session.commit()
    message = f"Internal request #{req.id} created: {req.type.label} for {req.holder_name}."
    if wants_partial():
        response = render_page_or_partial(page, partial, **_form_context(customer, CertificateRequestForm(),
                                                                         submitted=req, confirmation=message))
        return hx_trigger(response, "certificate-request-submitted", toast=message)
    flash(message, "success")
    return redirect(url_for("customers.certificates", customer_id=customer.id), code=303)
