"""Admin: webhook endpoints (add, enable / disable, rotate the secret, remove), the delivery log, replay."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, flash, request, url_for
from flask_login import current_user

from app import webhooks
from app.admin import bp
from app.auth.access import requires
from app.events import CATALOGUE
from app.extensions import db
from app.htmx import hx_redirect, render_page_or_partial
from app.models import WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


def _list_page(status: int = 200, **ctx):
    endpoints = db.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    return render_page_or_partial("admin/webhooks.html", "admin/_webhooks_part.html", status=status,
                                  endpoints=endpoints, catalogue=CATALOGUE, errors=ctx.pop("errors", {}),
                                  form=ctx.pop("form", {}), **ctx)


@bp.route("/webhooks", methods=["GET", "POST"])
@requires("configure")
def webhook_endpoints():
    if request.method == "GET":
        return _list_page()
    try:
        endpoint = webhooks.create_endpoint(request.form.get("url", ""), request.form.getlist("event_types"),
                                            description=request.form.get("description", ""), actor=current_user,
                                            now=utcnow())
    except webhooks.WebhookError as exc:
        db.session.rollback()
        return _list_page(422, errors=exc.errors, form=request.form)
    db.session.commit()
    # The secret is shown on this answer only (not stored in a flash message or the session).
    return _detail_page(endpoint, new_secret=endpoint.secret)


def _detail_page(endpoint: WebhookEndpoint, status: int = 200, **ctx):
    deliveries = db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                                    .order_by(WebhookDelivery.id.desc()).limit(50)).all()
    return render_page_or_partial("admin/webhook.html", "admin/_webhook_part.html", status=status,
                                  endpoint=endpoint, deliveries=deliveries, catalogue=CATALOGUE, **ctx)


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>")
@requires("configure")
def webhook_endpoint(endpoint_id: int):
    return _detail_page(_endpoint(endpoint_id))


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>/enabled", methods=["POST"])
@requires("configure")
def toggle_webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    webhooks.update_endpoint(endpoint, actor=current_user, now=utcnow(), enabled=request.form.get("enabled") == "1")
    db.session.commit()
    flash("Endpoint enabled." if endpoint.enabled else "Endpoint disabled: nothing is sent to it.", "success")
    return hx_redirect(url_for("admin.webhook_endpoint", endpoint_id=endpoint.id))


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>/rotate", methods=["POST"])
@requires("configure")
def rotate_webhook_secret(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    secret = webhooks.rotate_secret(endpoint, actor=current_user, now=utcnow())
    db.session.commit()
    return _detail_page(endpoint, new_secret=secret)


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>/delete", methods=["POST"])
@requires("configure")
def delete_webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    webhooks.delete_endpoint(endpoint, actor=current_user, now=utcnow())
    db.session.commit()
    flash("Endpoint removed.", "success")
    return hx_redirect(url_for("admin.webhook_endpoints"))


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>/replay", methods=["POST"])
@requires("configure")
def replay_webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    text = request.form.get("since", "").strip()
    try:
        since = datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None
    except ValueError:
        since = None
    if since is None:
        return _detail_page(endpoint, 422, replay_error="Give the date and time (UTC) to replay from.")
    count = webhooks.replay_since(endpoint, since, actor=current_user, now=utcnow())
    db.session.commit()
    flash(f"{count} event(s) queued again.", "success")
    return hx_redirect(url_for("admin.webhook_endpoint", endpoint_id=endpoint.id))


@bp.route("/webhooks/<int(max=2147483647):endpoint_id>/deliveries/<int(max=2147483647):delivery_id>/replay",
          methods=["POST"])
@requires("configure")
def replay_webhook_delivery(endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(endpoint_id)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        abort(404)  # another endpoint's delivery is not replayed from here
    webhooks.replay(delivery, actor=current_user, now=utcnow())
    db.session.commit()
    flash(f"Delivery of {delivery.event.type} queued again.", "success")
    return hx_redirect(url_for("admin.webhook_endpoint", endpoint_id=endpoint.id))
