"""The customer's card on file: replace it through the gateway, then retry a declined WOS request."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.access import requires
from app.customers import cards
from app.customers.card_forms import CardForm
from app.extensions import db
from app.models.base import utcnow
from app.portal import bp
from app.portal.routes import _customer


def _page(customer, form, draft, status=200):
    response = make_response(render_template(
        "portal/card.html", customer=customer, form=form, draft=draft, card=cards.card_label(customer),
        expired=cards.card_expired(customer, utcnow().date()), action=url_for("portal.card")), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/card", methods=["GET", "POST"])
@requires("portal")
def card():
    customer = _customer()
    form = CardForm()
    if request.method == "GET":
        form.retry.data = request.args.get("retry", "")
    draft = cards.draft_for(customer, form.retry.data)
    if request.method == "GET":
        return _page(customer, form, draft)
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
    if draft is not None and draft.request_id is None:
        flash(gettext("Card saved: %(brand)s ending %(last4)s. Your request is below as you typed it: press Retry "
                      "payment to submit it.", brand=card.brand_label, last4=card.last4), "success")
        return redirect(url_for("portal.new_request", retry=draft.payment_id), code=303)
    flash(gettext("Card saved: %(brand)s ending %(last4)s.", brand=card.brand_label, last4=card.last4), "success")
    return redirect(url_for("portal.card"), code=303)
