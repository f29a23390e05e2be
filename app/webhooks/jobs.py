"""Webhook jobs: take an id, reload, check state first (idempotent), call the service."""

from __future__ import annotations

from app.extensions import db
from app.jobs import job
from app.models import WebhookDelivery
from app.models.base import utcnow


@job
def deliver_webhook(delivery_id: int):
    from app.webhooks import deliver

    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return "gone"
    deliver(delivery, now=utcnow())
    return f"{delivery.status} after {delivery.attempts} attempt(s)"
