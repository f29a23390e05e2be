"""JSON API: webhook endpoints (admin), their delivery log and replay, and the event catalogue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import jsonify, request

from app import webhooks
from app.api import OPENAPI_PATHS, OPENAPI_SCHEMAS, bp
from app.api.auth import api_requires, api_user, error
from app.events import CATALOGUE, EXAMPLE
from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow

FIELDS = {"url", "event_types", "description", "enabled", "rotate_secret"}


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


def _body() -> tuple[dict | None, tuple | None]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None, error("Send a JSON object.", 422, fields={"body": "Expected a JSON object."})
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return None, error("Some fields are not valid.", 422, fields={k: "Unknown field." for k in unknown})
    return body, None


def _endpoint(endpoint_id: int) -> WebhookEndpoint | None:
    return db.session.get(WebhookEndpoint, endpoint_id)


@bp.route("/webhook-event-types")
@api_requires("configure")
def webhook_event_types():
    return jsonify({"event_types": [{"type": t, "description": d} for t, d in CATALOGUE.items()], "example": EXAMPLE})


@bp.route("/webhook-endpoints", methods=["GET", "POST"])
@api_requires("configure")
def webhook_endpoints():
    if request.method == "GET":
        rows = db.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        return jsonify({"endpoints": [endpoint_json(e) for e in rows]})
    body, refused = _body()
    if refused:
        return refused
    if not isinstance(body.get("url"), str):
        return error("Some fields are not valid.", 422, fields={"url": "Give the receiver's https:// address."})
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
    body, refused = _body()
    if refused:
        return refused
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
def webhook_deliveries(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    if endpoint is None:
        return error("Not found.", 404)
    rows = db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                              .order_by(WebhookDelivery.id.desc()).limit(100)).all()
    return jsonify({"deliveries": [delivery_json(d) for d in rows]})


@bp.route("/webhook-endpoints/<int(max=2147483647):endpoint_id>/replay", methods=["POST"])
@api_requires("configure")
def replay_webhook_endpoint(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    if endpoint is None:
        return error("Not found.", 404)
    body = request.get_json(silent=True)
    since_text = body.get("since") if isinstance(body, dict) else None
    try:
        since = datetime.fromisoformat(since_text) if isinstance(since_text, str) else None
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        return error("Some fields are not valid.", 422,
                     fields={"since": "Give a date-time with a time zone, e.g. 2026-11-23T00:00:00+00:00."})
    count = webhooks.replay_since(endpoint, since, actor=api_user(), now=utcnow())
    db.session.commit()
    return jsonify({"queued": count}), 202


@bp.route("/webhook-deliveries/<int(max=2147483647):delivery_id>/replay", methods=["POST"])
@api_requires("configure")
def replay_webhook_delivery(delivery_id: int):
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return error("Not found.", 404)
    webhooks.replay(delivery, actor=api_user(), now=utcnow())
    db.session.commit()
    return jsonify(delivery_json(delivery)), 202


_bearer = [{"bearer": []}]
_err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1,
                                                                   "maximum": 2147483647}}]
_std = {"401": {"description": "Missing or invalid token", "content": _err},
        "403": {"description": "Admins only", "content": _err}}
_endpoint_body = {"type": "object", "additionalProperties": False, "properties": {
    "url": {"type": "string", "format": "uri", "maxLength": 2000},
    "event_types": {"type": "array", "items": {"type": "string", "enum": list(CATALOGUE)}},
    "description": {"type": "string", "maxLength": 200}, "enabled": {"type": "boolean"},
    "rotate_secret": {"type": "boolean", "description": "PATCH only: a new secret (answered once); the old one "
                                                        "also signs for 24 hours"}}}
OPENAPI_SCHEMAS["WebhookEndpoint"] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "url": {"type": "string"}, "event_types": {"type": "array", "items": {"type": "string"}},
    "description": {"type": "string"}, "enabled": {"type": "boolean"}, "disabled_reason": {"type": ["string", "null"]},
    "failing_since": {"type": ["string", "null"], "format": "date-time"},
    "created_at": {"type": "string", "format": "date-time"},
    "secret": {"type": "string", "description": "Only in the answer that creates or rotates it"}}}
OPENAPI_SCHEMAS["WebhookDelivery"] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "event_id": {"type": "string"}, "event_type": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]}, "attempts": {"type": "integer"},
    "last_status_code": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
    "response_excerpt": {"type": ["string", "null"]},
    "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
    "delivered_at": {"type": ["string", "null"], "format": "date-time"}}}
_ep = {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEndpoint"}}}
OPENAPI_PATHS["/api/v1/webhook-event-types"] = {"get": {
    "summary": "The event catalogue (every type, what it means) and an example payload", "security": _bearer,
    "responses": {"200": {"description": "The catalogue"}, **_std}}}
OPENAPI_PATHS["/api/v1/webhook-endpoints"] = {
    "get": {"summary": "Webhook endpoints", "security": _bearer,
            "responses": {"200": {"description": "The endpoints"}, **_std}},
    "post": {"summary": "Add a webhook endpoint; the answer carries its signing secret, once", "security": _bearer,
             "requestBody": {"required": True, "content": {"application/json": {"schema": {
                 **_endpoint_body, "required": ["url"]}}}},
             "responses": {"201": {"description": "Created", "content": _ep},
                           "422": {"description": "Not https, refused address, unknown event type", "content": _err},
                           **_std}}}
OPENAPI_PATHS["/api/v1/webhook-endpoints/{id}"] = {
    "get": {"summary": "One webhook endpoint", "security": _bearer, "parameters": _id,
            "responses": {"200": {"description": "The endpoint", "content": _ep},
                          "404": {"description": "Not found", "content": _err}, **_std}},
    "patch": {"summary": "Change, enable / disable an endpoint or rotate its secret", "security": _bearer,
              "parameters": _id, "requestBody": {"required": True, "content": {"application/json": {
                  "schema": _endpoint_body}}},
              "responses": {"200": {"description": "The endpoint", "content": _ep},
                            "404": {"description": "Not found", "content": _err},
                            "422": {"description": "Field errors", "content": _err}, **_std}},
    "delete": {"summary": "Remove an endpoint and its delivery log", "security": _bearer, "parameters": _id,
               "responses": {"204": {"description": "Deleted"}, "404": {"description": "Not found",
                                                                        "content": _err}, **_std}}}
OPENAPI_PATHS["/api/v1/webhook-endpoints/{id}/deliveries"] = {"get": {
    "summary": "The endpoint's delivery log (newest 100)", "security": _bearer, "parameters": _id,
    "responses": {"200": {"description": "Deliveries"}, "404": {"description": "Not found", "content": _err}, **_std}}}
OPENAPI_PATHS["/api/v1/webhook-endpoints/{id}/replay"] = {"post": {
    "summary": "Deliver again every subscribed event since a time", "security": _bearer, "parameters": _id,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["since"], "properties": {"since": {"type": "string", "format": "date-time"}}}}}},
    "responses": {"202": {"description": "Queued"}, "404": {"description": "Not found", "content": _err},
                  "422": {"description": "Bad time", "content": _err}, **_std}}}
OPENAPI_PATHS["/api/v1/webhook-deliveries/{id}/replay"] = {"post": {
    "summary": "Deliver one event to its endpoint again (same event id)", "security": _bearer, "parameters": _id,
    "responses": {"202": {"description": "Queued"}, "404": {"description": "Not found", "content": _err}, **_std}}}
