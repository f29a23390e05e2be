"""JSON API: webhook endpoints (admin), their delivery log and replay, and the event catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from flask import jsonify, request
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool

from app import webhooks
from app.api import bp
from app.api.auth import api_requires, api_user, error
from app.api.contract import UNAUTHORIZED, In, Out, Text, ValidationError_, ok, operation, parse, path_id, refused
from app.events import CATALOGUE, EXAMPLE
from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow


class WebhookEndpointPatch(In):
    """Every field optional (PATCH; null leaves a field as it is); unknown fields are refused. Event types and
    the URL's safety are the service's checks (``app.webhooks``)."""

    model_config = ConfigDict(extra="forbid")
    url: Annotated[Text, Field(json_schema_extra={"format": "uri", "maxLength": 2000})] | None = None
    event_types: list[Annotated[Text, Field(json_schema_extra={"enum": list(CATALOGUE)})]] | None = None
    description: Text | None = Field(None, description="Longer text is cut to 200 characters")
    enabled: StrictBool | None = None
    rotate_secret: StrictBool | None = Field(None, description="PATCH only: a new secret (answered once); the old "
                                                               "one also signs for 24 hours")
    messages = {"*": "Unknown field.", "url": "Give the receiver's https:// address.",
                "event_types": "Give a list of event types (or none, for every type).",
                "description": "description must be text.", "enabled": "Use true or false.",
                "rotate_secret": "Use true or false."}


class WebhookEndpointInput(WebhookEndpointPatch):
    url: Annotated[Text, Field(json_schema_extra={"format": "uri", "maxLength": 2000})]


class WebhookEndpointOut(Out):
    model_config = ConfigDict(title="WebhookEndpoint")
    id: int
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: str = Field(None, description="Only in the answer that creates or rotates it")


class WebhookEndpoints(Out):
    endpoints: list[WebhookEndpointOut]


class WebhookDeliveryOut(Out):
    model_config = ConfigDict(title="WebhookDelivery")
    id: int
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class WebhookDeliveries(Out):
    deliveries: list[WebhookDeliveryOut]


def _aware(value):
    if not isinstance(value, str):
        raise ValueError("not text")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


class ReplayInput(In):
    since: Annotated[datetime, BeforeValidator(_aware), Field(json_schema_extra={"format": "date-time"})]
    messages = {"since": "Give a date-time with a time zone, e.g. 2026-11-23T00:00:00+00:00."}


class Queued(Out):
    queued: int


class EventTypes(Out):
    event_types: list[dict[str, str]]
    example: dict


ADMINS = {**UNAUTHORIZED, 403: refused("Admins only")}
NOT_FOUND = {404: refused("Not found")}


def endpoint_json(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict:
    data = {"id": endpoint.id, "url": endpoint.url, "event_types": list(endpoint.event_types or []),
            "description": endpoint.description, "enabled": endpoint.enabled,
            "disabled_reason": endpoint.disabled_reason or None,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
            "created_at": endpoint.created_at.isoformat()}
    if secret:
        data["secret"] = secret
    return data


def delivery_json(d: WebhookDelivery) -> dict:
    return {"id": d.id, "event_id": d.event.uid, "event_type": d.event.type, "status": str(d.status),
            "attempts": d.attempts, "last_status_code": d.last_status_code, "last_error": d.last_error or None,
            "response_excerpt": d.response_excerpt or None,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}


def _body(model: type[In]) -> tuple[dict | None, tuple | None]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None, error("Send a JSON object.", 422, fields={"body": "Expected a JSON object."})
    _, errors = parse(model, body)
    if errors:
        return None, error("Some fields are not valid.", 422, fields=errors)
    return body, None


def _endpoint(endpoint_id: int) -> WebhookEndpoint | None:
    return db.session.get(WebhookEndpoint, endpoint_id)


@bp.route("/webhook-event-types")
@api_requires("configure")
@operation("GET", "/webhook-event-types",
           summary="The event catalogue (every type, what it means) and an example payload",
           replies={200: ok(EventTypes, "The catalogue"), **ADMINS})
def webhook_event_types():
    return jsonify({"event_types": [{"type": t, "description": d} for t, d in CATALOGUE.items()], "example": EXAMPLE})


@bp.route("/webhook-endpoints", methods=["GET", "POST"])
@api_requires("configure")
@operation("GET", "/webhook-endpoints", summary="Webhook endpoints",
           replies={200: ok(WebhookEndpoints, "The endpoints"), **ADMINS})
@operation("POST", "/webhook-endpoints", body=WebhookEndpointInput,
           summary="Add a webhook endpoint; the answer carries its signing secret, once",
           replies={201: ok(WebhookEndpointOut, "Created"), **ADMINS,
                    422: refused("Not https, refused address, unknown event type", ValidationError_)})
def webhook_endpoints():
    if request.method == "GET":
        rows = db.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        return jsonify({"endpoints": [endpoint_json(e) for e in rows]})
    body, refusal = _body(WebhookEndpointInput)
    if refusal:
        return refusal
    try:
        endpoint = webhooks.create_endpoint(body["url"], body.get("event_types"), description=body.get("description")
                                            or "", actor=api_user(), now=utcnow())
        if body.get("enabled") is False:
            webhooks.update_endpoint(endpoint, actor=api_user(), now=utcnow(), enabled=False)
    except webhooks.WebhookError as exc:
        db.session.rollback()
        return error("Some fields are not valid.", 422, fields=exc.errors)
    db.session.commit()
    return jsonify(endpoint_json(endpoint, secret=endpoint.secret)), 201


@bp.route("/webhook-endpoints/<int(max=2147483647):endpoint_id>", methods=["GET", "PATCH", "DELETE"])
@api_requires("configure")
@operation("GET", "/webhook-endpoints/{id}", params=[path_id()], summary="One webhook endpoint",
           replies={200: ok(WebhookEndpointOut, "The endpoint"), **ADMINS, **NOT_FOUND})
@operation("PATCH", "/webhook-endpoints/{id}", params=[path_id()], body=WebhookEndpointPatch,
           summary="Change, enable / disable an endpoint or rotate its secret",
           replies={200: ok(WebhookEndpointOut, "The endpoint"), **ADMINS, **NOT_FOUND,
                    422: refused("Field errors", ValidationError_)})
@operation("DELETE", "/webhook-endpoints/{id}", params=[path_id()], summary="Remove an endpoint and its delivery log",
           replies={204: ok(None, "Deleted"), **ADMINS, **NOT_FOUND})
def webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    if endpoint is None:
        return error("Not found.", 404)
    if request.method == "GET":
        return jsonify(endpoint_json(endpoint))
    if request.method == "DELETE":
        webhooks.delete_endpoint(endpoint, actor=api_user(), now=utcnow())
        db.session.commit()
        return "", 204
    body, refusal = _body(WebhookEndpointPatch)
    if refusal:
        return refusal
    secret = None
    try:
        webhooks.update_endpoint(endpoint, actor=api_user(), now=utcnow(), url=body.get("url"),
                                 event_types=body.get("event_types"), description=body.get("description"),
                                 enabled=body.get("enabled"))
        if body.get("rotate_secret") is True:
            secret = webhooks.rotate_secret(endpoint, actor=api_user(), now=utcnow())
    except webhooks.WebhookError as exc:
        db.session.rollback()
        return error("Some fields are not valid.", 422, fields=exc.errors)
    db.session.commit()
    return jsonify(endpoint_json(endpoint, secret=secret))


@bp.route("/webhook-endpoints/<int(max=2147483647):endpoint_id>/deliveries")
@api_requires("configure")
@operation("GET", "/webhook-endpoints/{id}/deliveries", params=[path_id()],
           summary="The endpoint's delivery log (newest 100)",
           replies={200: ok(WebhookDeliveries, "Deliveries"), **ADMINS, **NOT_FOUND})
def webhook_deliveries(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    if endpoint is None:
        return error("Not found.", 404)
    rows = db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                              .order_by(WebhookDelivery.id.desc()).limit(100)).all()
    return jsonify({"deliveries": [delivery_json(d) for d in rows]})


@bp.route("/webhook-endpoints/<int(max=2147483647):endpoint_id>/replay", methods=["POST"])
@api_requires("configure")
@operation("POST", "/webhook-endpoints/{id}/replay", params=[path_id()], body=ReplayInput,
           summary="Deliver again every subscribed event since a time",
           replies={202: ok(Queued, "Queued"), **ADMINS, **NOT_FOUND,
                    422: refused("Bad time (it needs a time zone)", ValidationError_)})
def replay_webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    if endpoint is None:
        return error("Not found.", 404)
    body = request.get_json(silent=True)
    asked, errors = parse(ReplayInput, body if isinstance(body, dict) else {})
    if errors:
        return error("Some fields are not valid.", 422, fields=errors)
    count = webhooks.replay_since(endpoint, asked.since, actor=api_user(), now=utcnow())
    db.session.commit()
    return jsonify({"queued": count}), 202


@bp.route("/webhook-deliveries/<int(max=2147483647):delivery_id>/replay", methods=["POST"])
@api_requires("configure")
@operation("POST", "/webhook-deliveries/{id}/replay", params=[path_id()],
           summary="Deliver one event to its endpoint again (same event id)",
           replies={202: ok(WebhookDeliveryOut, "Queued"), **ADMINS, **NOT_FOUND})
def replay_webhook_delivery(delivery_id: int):
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return error("Not found.", 404)
    webhooks.replay(delivery, actor=api_user(), now=utcnow())
    db.session.commit()
    return jsonify(delivery_json(delivery)), 202
