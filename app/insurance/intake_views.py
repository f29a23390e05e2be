"""View helpers shared by the two faces that let users act on their certificates (the customer
portal and the staff "Certificates" tab). Each face passes its own templates, context and return URL."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, request
from flask_babel import gettext
from flask_login import current_user

from app.extensions import db
from app.htmx import hx_trigger, render_page_or_partial, wants_partial
from app.insurance import delivery, intake_errors
from app.insurance.intake_forms import ResendPoiForm
from app.models import Customer
from app.models.base import utcnow


def resend_poi_response(customer: Customer, *, page: str, partial: str, context: Callable[..., dict],
                        done_url: str):
    """Handle a "Resend POI" POST: queue the POI e-mail, or re-render the form with the reason (422)."""
    form = ResendPoiForm(request.form)
    try:
        delivery.resend_poi(customer, email=form.email.data, name=form.name.data, actor=current_user, now=utcnow())
    except intake_errors.RequestInvalid as exc:
        form.apply_errors(exc)
        return render_page_or_partial(page, partial, status=422, **context(customer, poi_form=form))
    except intake_errors.NotEligible as exc:
        db.session.commit()  # keeps the refusal's timeline entry
        return render_page_or_partial(page, partial, status=422,
                                      **context(customer, poi_form=form, poi_error=str(exc)))
    db.session.commit()
    message = gettext("Proof of insurance is on its way to %(email)s.", email=form.email.data.strip())
    if wants_partial():
        response = render_page_or_partial(page, partial, **context(customer, poi_sent=message))
        return hx_trigger(response, "poi-sent", toast=message)
    flash(message, "success")
    return redirect(done_url, code=303)
