"""Events out: the catalogue, and ``emit()``, which every lifecycle change calls in its own transaction.

An event row and one delivery row per subscribed, enabled webhook endpoint are written with the change;
the delivery jobs reach Redis only after the commit (``defer``), and the sweep re-enqueues any a dead
worker or Redis left pending, so an event is never lost. The body is the resource as the JSON API shows
it (same field names), with its API URL.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from flask import current_app, has_request_context

from app.extensions import db
from app.models import Event, WebhookDelivery, WebhookEndpoint
from app.queue import defer

# type -> what it means. The API and the admin page list these; an endpoint may subscribe to any of them.
CATALOGUE: dict[str, str] = {
    "exemption_request.sent": "An exemption request link was e-mailed (or re-sent) to a customer.",
    "exemption_request.opened": "The customer opened the request link in a browser.",
    "exemption_request.completed": "The customer submitted the certificate through the link.",
    "exemption_request.expired": "The link expired unanswered.",
    "exemption_request.cancelled": "Staff cancelled the request.",
    "exemption_certificate.approved": "A reviewer approved a certificate; it is active.",
    "exemption_certificate.rejected": "A reviewer rejected a certificate.",
    "exemption_certificate.expiring_soon": "An active certificate's earliest state expiry is within "
                                           "EXPIRING_SOON_DAYS (sent once per certificate).",
    "exemption_certificate.expired": "Every state on an active certificate is past its expiry.",
    "exemption_certificate.renewal_requested": "A renewal request went out ahead of the earliest expiry.",
    "certificate_request.created": "A COI / WOS / POI request was created (portal, staff or API).",
    "certificate_request.in_progress": "Staff started on a certificate request.",
    "certificate_request.completed": "A certificate request was completed (its certificate issued).",
    "certificate_request.rejected": "Staff rejected a certificate request.",
    "certificate_request.cancelled": "Staff cancelled a certificate request.",
    "certificate.issued": "A certificate of insurance was issued (a number and revision, its file signed and "
                          "hashed).",
    "certificate.superseded": "A later revision for the same holder replaced a certificate of insurance.",
    "audit_pack.completed": "An exemption audit pack finished building; it can be downloaded.",
    "policy.cancelled": "A policy on file was cancelled (certificates that list it say so on their verify page).",
    "generation.completed": "A mass generation of certificates for many holders finished (ZIP or merged PDF).",
}

def api_url(path: str) -> str:
    return f"{current_app.config['BASE_URL']}/api/v1/{path.lstrip('/')}"


def _resource(subject_type: str, obj) -> tuple[dict, str]:
    """The resource as the API shows it, and its API URL. (The API's own serialisers, so the field names
    cannot drift; imported here, when needed, because the API package is a face over the services.)"""
    if subject_type == "exemption_request":
        from app.api.exemptions import request_json

        return request_json(obj), api_url(f"exemption-requests/{obj.id}")
    if subject_type == "exemption_certificate":
        from app.api.exemption_rules import certificate_detail_json

        return certificate_detail_json(obj), api_url(f"exemption-certificates/{obj.id}")
    if subject_type == "certificate_request":
        from app.api.certificate_requests import _request_json

        return _request_json(obj), api_url(f"certificate-requests/{obj.id}")
    if subject_type == "certificate":
        from app.api.certificate_requests import _certificate_json

        return _certificate_json(obj), api_url(f"certificates/{obj.id}")
    if subject_type == "policy":
        from app.customers.policies import policy_values

        return policy_values(obj), api_url(f"policies/{obj.id}")
    if subject_type == "generation_run":
        page = f"{current_app.config['BASE_URL']}/customers/{obj.customer_id}/generations/{obj.id}"
        return generation_json(obj), page
    if subject_type == "audit_pack":
        from app.api.audit_packs import pack_json

        return pack_json(obj), api_url(f"audit-packs/{obj.id}")
    raise ValueError(f"no API shape for {subject_type}")


def generation_json(run) -> dict:
    """A mass-generation run (it has no API resource of its own; these are the fields its page shows)."""
    return {"id": run.id, "customer_id": run.customer_id, "status": str(run.status), "mode": str(run.mode),
            "type": str(run.kind), "total": run.total, "done": run.done, "emailed": run.emailed_count,
            "recorded_as_sent": run.record_sent, "filename": run.filename or None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "expires_at": run.expires_at.isoformat() if run.expires_at else None}


def _with_urls(fn):
    """Serialisers build absolute URLs with url_for; jobs and CLI commands have no request, so give them
    one on BASE_URL."""
    if has_request_context():
        return fn()
    with current_app.test_request_context("/", base_url=current_app.config["BASE_URL"]):
        return fn()


def emit(event_type: str, subject_type: str, obj, *, now: datetime) -> Event | None:
    """Record one event for ``obj`` and a pending delivery for each endpoint that wants it.
    The caller commits; delivery jobs are enqueued after that commit."""
    if event_type not in CATALOGUE:
        raise ValueError(f"unknown event type {event_type}")
    data, url = _with_urls(lambda: _resource(subject_type, obj))
    uid = "evt_" + secrets.token_hex(12)
    event = Event(uid=uid, type=event_type, subject_type=subject_type, subject_id=obj.id, occurred_at=now,
                  payload={"type": event_type, "id": uid, "occurred_at": now.isoformat(), "url": url, "data": data})
    db.session.add(event)
    db.session.flush()
    endpoints = db.session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)))
    for endpoint in endpoints:
        if endpoint.wants(event_type):
            queue_delivery(endpoint, event, now=now)
    return event


def emit_many(event_type: str, subject_type: str, objs, *, now: datetime) -> int:
    """``emit`` for a batch of objects (a set-based sweep): the same event rows and deliveries, written
    with one INSERT of events and one of deliveries instead of a statement pair per object."""
    if event_type not in CATALOGUE:
        raise ValueError(f"unknown event type {event_type}")
    objs = list(objs)
    if not objs:
        return 0
    rows = []

    def build():
        for obj in objs:
            data, url = _resource(subject_type, obj)
            uid = "evt_" + secrets.token_hex(12)
            rows.append({"uid": uid, "type": event_type, "subject_type": subject_type, "subject_id": obj.id,
                         "occurred_at": now, "payload": {"type": event_type, "id": uid, "occurred_at": now.isoformat(),
                                                         "url": url, "data": data}})

    _with_urls(build)
    endpoints = [e for e in db.session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)))
                 if e.wants(event_type)]
    # Plain multi-row INSERTs (one statement on every backend), then the new ids by their unique keys.
    db.session.execute(sa.insert(Event.__table__), rows)
    if not endpoints:
        return len(rows)
    event_ids = db.session.scalars(sa.select(Event.id).where(Event.uid.in_([r["uid"] for r in rows]))).all()
    db.session.execute(sa.insert(WebhookDelivery.__table__), [
        {"endpoint_id": e.id, "event_id": i, "next_attempt_at": now, "created_at": now}
        for i in event_ids for e in endpoints])
    delivery_ids = db.session.scalars(sa.select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(event_ids))
                                      .order_by(WebhookDelivery.id)).all()
    for delivery_id in delivery_ids:
        defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery_id, queue="email")
    return len(rows)


def wanted(event_type: str) -> bool:
    """Does any enabled endpoint subscribe to this type? (Bulk paths emit per item only when one does.)"""
    return any(e.wants(event_type) for e in db.session.scalars(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))))


def queue_delivery(endpoint: WebhookEndpoint, event: Event, *, now: datetime) -> WebhookDelivery:
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery.id, queue="email")
    return delivery


EXAMPLE = {
    "type": "exemption_certificate.approved", "id": "evt_5f0c1d2e3a4b5c6d7e8f9a0b",
    "occurred_at": "2026-11-23T15:04:05+00:00", "url": "https://certdesk.example.com/api/v1/exemption-certificates/42",
    "data": {"id": 42, "customer_id": 7, "status": "active", "reason": "resale", "form_type": "uniform_multistate",
             "purchase_type": "blanket", "po_number": None, "tax_id_number": "12-3456789",
             "effective_date": "2026-11-01", "expiration_date": None,
             "jurisdictions": [{"state": "TX", "state_id_number": "32000000001", "expiration_date": None,
                                "expiration_source": None}], "checks": []},
}
