"""Webhook endpoints and delivery: signed per the Standard Webhooks specification, retried with
exponential backoff over about a day, logged per endpoint, replayable, and never sent to an address
inside the network unless an operator allowed it.

Signing uses the maintained ``standardwebhooks`` library (the same one receivers verify with), so the
``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers cannot drift from the spec.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from app import lifecycle
from app.activity import record
from app.enums import Role, WebhookDeliveryStatus
from app.events import CATALOGUE, queue_delivery
from app.extensions import db
from app.models import Event, User, WebhookDelivery, WebhookEndpoint
from app.notify import queue_email
from app.queue import defer

SUBJECT = "webhook_endpoint"
TIMEOUT_SECONDS = 10
RESPONSE_CAP = 64 * 1024
# Seconds after the first attempt: 10 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, then ~24 h in all.
RETRY_DELAYS = (10, 60, 300, 1800, 7200, 18000, 36000, 22980)
ROTATION_OVERLAP = timedelta(hours=24)


class WebhookError(ValueError):
    """A refused endpoint or action: ``errors`` maps field -> message (safe to show)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RefusedAddress(Exception):
    pass


# -- outbound safety ---------------------------------------------------------------------------------

def allowed_hosts() -> set[str]:
    raw = current_app.config.get("WEBHOOKS_ALLOWED_HOSTS", "") or ""
    return {h.strip().lower() for h in raw.split(",") if h.strip()}


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def resolve_safe(host: str, port: int) -> str:
    """One address of ``host`` that is public (or explicitly allowed as host:port). Checked after DNS
    resolution and used for the connection itself, so a name cannot resolve somewhere else later."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedAddress(f"{host} does not resolve.") from exc
    allowed = f"{host.lower()}:{port}" in allowed_hosts()
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if allowed or address.is_global:
            return str(address)
    raise RefusedAddress(f"{host} resolves to a private, loopback, link-local or reserved address; add "
                         f"{host}:{port} to WEBHOOKS_ALLOWED_HOSTS to allow it.")


def check_url(url: str) -> str:
    """A clear message for a URL that cannot be an endpoint (raises WebhookError)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 2000:
        raise WebhookError({"url": "Give the full address of the receiver, starting with https://."})
    if parts.scheme == "http" and not current_app.config.get("WEBHOOKS_ALLOW_HTTP"):
        raise WebhookError({"url": "Use https:// (plain http is allowed only with WEBHOOKS_ALLOW_HTTP=true)."})
    if parts.username or parts.password:
        raise WebhookError({"url": "Put no user name or password in the address; the signature authenticates us."})
    try:
        resolve_safe(parts.hostname, _port(parts))
    except RefusedAddress as exc:
        raise WebhookError({"url": str(exc)}) from exc
    return url


@dataclass
class Response:
    status: int
    excerpt: str


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST once: no redirects followed, a 10 s timeout, at most 64 KB of the answer read."""
    parts = urlsplit(url)
    port = _port(parts)
    address = resolve_safe(parts.hostname, port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn = HTTPSConnection(parts.hostname, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
    else:
        conn = HTTPConnection(parts.hostname, port, timeout=TIMEOUT_SECONDS)
    # Connect to the address we checked (not a second DNS answer); TLS still verifies the host name.
    sock = socket.create_connection((address, port), timeout=TIMEOUT_SECONDS)
    conn.sock = conn._context.wrap_socket(sock, server_hostname=parts.hostname) if parts.scheme == "https" else sock
    try:
        conn.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json",
                                                      "User-Agent": "CertDesk-Webhooks/1"})
        answer = conn.getresponse()
        excerpt = answer.read(RESPONSE_CAP).decode("utf-8", "replace")
        return Response(answer.status, excerpt[:1000])
    finally:
        conn.close()


# -- endpoints ------------------------------------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _event_types(types) -> list[str]:
    if types is None:
        return []
    if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
        raise WebhookError({"event_types": "Give a list of event types (or none, for every type)."})
    unknown = [t for t in types if t not in CATALOGUE]
    if unknown:
        raise WebhookError({"event_types": f"Unknown event type: {', '.join(unknown[:5])}. "
                                           "See the catalogue in docs/api.md."})
    return sorted(set(types))


def create_endpoint(url: str, event_types, *, description: str = "", actor: User | None,
                    now: datetime) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (shown to the admin once). Refused, storing nothing, when the
    URL is not https, does not resolve or resolves inside the network, or names unknown event types."""
    url = check_url(url)
    endpoint = WebhookEndpoint(url=url, event_types=_event_types(event_types), description=(description or "")[:200],
                               secret=new_secret(), created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(endpoint)
    db.session.flush()
    record(SUBJECT, endpoint.id, "created", actor=actor, now=now, message=f"Webhook endpoint {url}.")
    return endpoint


def update_endpoint(endpoint: WebhookEndpoint, *, actor: User | None, now: datetime, url=None, event_types=None,
                    description=None, enabled=None) -> WebhookEndpoint:
    if url is not None:
        endpoint.url = check_url(url)
    if event_types is not None:
        endpoint.event_types = _event_types(event_types)
    if description is not None:
        endpoint.description = str(description)[:200]
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise WebhookError({"enabled": "Use true or false."})
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_reason, endpoint.failing_since = "", None
    record(SUBJECT, endpoint.id, "updated", actor=actor, now=now, message=f"Webhook endpoint {endpoint.url} changed.")
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, actor: User | None, now: datetime) -> str:
    """A new secret; the old one keeps signing (a second signature) for a day, so receivers can switch."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    record(SUBJECT, endpoint.id, "secret_rotated", actor=actor, now=now,
           message=f"Secret rotated; the old one also signs until {endpoint.previous_secret_until:%Y-%m-%d %H:%M} UTC.")
    return endpoint.secret


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: User | None, now: datetime) -> None:
    record(SUBJECT, endpoint.id, "deleted", actor=actor, now=now, message=f"Webhook endpoint {endpoint.url} deleted.")
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)


# -- delivery --------------------------------------------------------------------------------------------

def signature_headers(endpoint: WebhookEndpoint, event: Event, body: str, now: datetime) -> dict[str, str]:
    from standardwebhooks import Webhook

    signatures = [Webhook(endpoint.secret).sign(event.uid, now, body)]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        signatures.append(Webhook(endpoint.previous_secret).sign(event.uid, now, body))
    return {"webhook-id": event.uid, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures)}


def body_of(event: Event) -> str:
    return json.dumps(event.payload, separators=(",", ":"), sort_keys=True)


def next_delay(attempts: int) -> int | None:
    """Seconds to wait after attempt number ``attempts`` failed (None: give up)."""
    return RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else None


def deliver(delivery: WebhookDelivery, *, now: datetime, send=post) -> WebhookDelivery:
    """One attempt. Idempotent: only a pending delivery that is due is tried, and the receiver gets the
    event's stable id to deduplicate on. A 2xx is success; anything else schedules the next try, and
    after the last one the delivery fails and an endpoint failing for a day is disabled (admins told)."""
    if delivery.status is not WebhookDeliveryStatus.PENDING:
        return delivery
    if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
        return delivery
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        delivery.last_error = "The endpoint is disabled; replay the delivery after enabling it."
        delivery.next_attempt_at = None
        return lifecycle.transition(delivery, WebhookDeliveryStatus.FAILED, actor=None, now=now)
    body = body_of(delivery.event)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    try:
        answer = send(endpoint.url, body.encode(), signature_headers(endpoint, delivery.event, body, now))
        delivery.last_status_code, delivery.response_excerpt, delivery.last_error = answer.status, answer.excerpt, ""
        ok = 200 <= answer.status < 300
        if not ok:
            delivery.last_error = f"The receiver answered {answer.status}."
    except RefusedAddress as exc:
        delivery.last_status_code, ok, delivery.last_error = None, False, str(exc)[:500]
    except (OSError, HTTPException, ssl.SSLError) as exc:
        delivery.last_status_code, ok = None, False
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
    if ok:
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        return lifecycle.transition(delivery, WebhookDeliveryStatus.SUCCEEDED, actor=None, now=now)
    endpoint.failing_since = endpoint.failing_since or now
    delay = next_delay(delivery.attempts)
    if delay is None:
        delivery.next_attempt_at = None
        lifecycle.transition(delivery, WebhookDeliveryStatus.FAILED, actor=None, now=now)
        _disable_if_failing_for_a_day(endpoint, now=now)
        return delivery
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery.id, queue="email", at=delivery.next_attempt_at)
    return delivery


def _disable_if_failing_for_a_day(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    if not endpoint.enabled or endpoint.failing_since is None or now - endpoint.failing_since < timedelta(hours=23):
        return
    endpoint.enabled = False
    endpoint.disabled_reason = (f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery failed since "
                                f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC.")
    record(SUBJECT, endpoint.id, "disabled", now=now, message=endpoint.disabled_reason)
    admins = db.session.scalars(sa.select(User.email).where(User.role == Role.ADMIN, User.is_enabled.is_(True)))
    for address in admins:
        queue_email(address, "notice", subject=f"Webhook endpoint disabled: {endpoint.url}",
                    context={"heading": "A webhook endpoint was disabled",
                             "body": f"{endpoint.url} failed every delivery for a day. {endpoint.disabled_reason} "
                                     "Fix the receiver, enable the endpoint again and replay what it missed "
                                     "(Settings → Webhooks)."},
                    dedupe_key=f"webhook-disabled:{endpoint.id}:{now:%Y%m%d%H%M}")


def replay(delivery: WebhookDelivery, *, actor: User | None, now: datetime) -> WebhookDelivery:
    """Send one delivery again (same event id, so a receiver that got it already can ignore it)."""
    delivery.next_attempt_at = now
    delivery.attempts = 0
    lifecycle.transition(delivery, WebhookDeliveryStatus.PENDING, actor=actor, now=now)
    defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery.id, queue="email")
    record(SUBJECT, delivery.endpoint_id, "replayed", actor=actor, now=now,
           message=f"Delivery of {delivery.event.type} {delivery.event.uid} queued again.")
    return delivery


def replay_since(endpoint: WebhookEndpoint, since: datetime, *, actor: User | None, now: datetime) -> int:
    """Every event the endpoint subscribes to since ``since``, again (a missing delivery row is created)."""
    events = db.session.scalars(sa.select(Event).where(Event.occurred_at >= since).order_by(Event.id)).all()
    existing = {d.event_id: d for d in db.session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                         WebhookDelivery.event_id.in_([e.id for e in events] or [0])))}
    count = 0
    for event in events:
        if endpoint.event_types and event.type not in endpoint.event_types:
            continue
        delivery = existing.get(event.id)
        if delivery is None:
            queue_delivery(endpoint, event, now=now)
        else:
            delivery.next_attempt_at, delivery.attempts = now, 0
            lifecycle.transition(delivery, WebhookDeliveryStatus.PENDING, actor=actor, now=now)
            defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery.id, queue="email")
        count += 1
    record(SUBJECT, endpoint.id, "replayed", actor=actor, now=now,
           message=f"{count} event(s) since {since:%Y-%m-%d %H:%M} UTC queued again.")
    return count


def resend_lost_deliveries(now: datetime) -> int:
    """Deliveries whose job a dead worker or a Redis restart lost: due for over a minute, still pending."""
    ids = list(db.session.scalars(sa.select(WebhookDelivery.id).where(
        WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
        WebhookDelivery.next_attempt_at <= now - timedelta(minutes=1)).order_by(WebhookDelivery.id).limit(1000)))
    for delivery_id in ids:
        defer(db.session, "app.webhooks.jobs.deliver_webhook", delivery_id, queue="email")
    return len(ids)
