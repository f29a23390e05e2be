"""Customer page, "Card on file" tab: staff replace the customer's card through the gateway."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth.access import can, requires
from app.customers import bp, cards
from app.customers.card_forms import CardForm
from app.customers.routes import get_customer_or_404
from app.extensions import db
from app.models.base import utcnow


def _page(customer, form, draft, status=200):
    response = make_response(render_template(
        "customers/card.html", customer=customer, form=form, draft=draft, card=cards.card_label(customer),
        expired=cards.card_expired(customer, utcnow().date()), may_edit=can("manage_customers"),
        action=url_for("customers.replace_card", customer_id=customer.id)), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int(max=2147483647):customer_id>/card")
@requires("view_dashboard")
def customer_card(customer_id: int):
    customer = get_customer_or_404(customer_id)
    form = CardForm(formdata=None)
    form.retry.data = request.args.get("retry", "")
    return _page(customer, form, cards.draft_for(customer, form.retry.data))


@bp.route("/<int(max=2147483647):customer_id>/card", methods=["POST"])
@requires("manage_customers")
def replace_card(customer_id: int):
    customer = get_customer_or_404(customer_id)
    form = CardForm()
    draft = cards.draft_for(customer, form.retry.data)
    if not form.validate_on_submit():
        return _page(customer, form, draft, 422)
    try:
        card = cards.replace_card(customer, number=form.number.data, exp_month=form.exp_month.data,
                                  exp_year=form.exp_year.data, cvc=form.cvc.data,
                                  actor=current_user._get_current_object(), now=utcnow())
    except cards.CardRefused as exc:
        db.session.rollback()
        form.apply_errors(exc.errors)
        return _page(customer, form, draft, 422)
    db.session.commit()
    flash(f"Card saved: {card.brand_label} ending {card.last4}.", "success")
    if draft is not None and draft.request_id is None:
        return redirect(url_for("customers.submit_request", customer_id=customer.id, retry=draft.payment_id), code=303)
    return redirect(url_for("customers.customer_card", customer_id=customer.id), code=303)
