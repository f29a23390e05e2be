"""The outbox: every e-mail and SMS is written to the database first and delivered by a job.

Delivery claims the row with a conditional UPDATE (pending -> sending), so two jobs for the same
message never both send it, and a retried job after success finds nothing to do.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

import sqlalchemy as sa
from flask import current_app, render_template

from app.enums import Channel, MessageStatus
from app.extensions import db
from app.models import OutboxMessage
from app.models.base import utcnow
from app.queue import defer
from app.storage import get_store

log = logging.getLogger(__name__)

DELIVER_JOB = "app.jobs.deliver_message"

# Functions ``fn(text) -> text`` applied to an e-mail's bodies when it is built for delivery: the
# outbox row keeps a placeholder and only the e-mail carries the secret it stands for (e.g. the
# exemption link, derived from SECRET_KEY, so a database dump holds no usable link).
DELIVERY_EXPANDERS: list = []


def queue_email(to: str, template: str, *, subject: str, context: dict | None = None,
                customer_id: int | None = None, dedupe_key: str | None = None,
                attachments: list[dict] | None = None) -> OutboxMessage:
    """Render ``templates/email/<template>.txt`` and ``.html`` into an outbox row.

    With ``dedupe_key`` the message is created at most once: a second call returns the first row.
    """
    if dedupe_key:
        existing = db.session.scalar(sa.select(OutboxMessage).filter_by(dedupe_key=dedupe_key))
        if existing is not None:
            return existing
    ctx = {"base_url": current_app.config["BASE_URL"], "seller_name": current_app.config["SELLER_NAME"],
           **(context or {})}
    message = OutboxMessage(
        channel=Channel.EMAIL,
        to_address=to,
        subject=subject,
        body_text=render_template(f"email/{template}.txt", **ctx),
        body_html=render_template(f"email/{template}.html", **ctx),
        attachments=attachments or [],
        customer_id=customer_id,
        dedupe_key=dedupe_key,
    )
    return _queue(message)


def queue_sms(to: str, text: str, *, customer_id: int | None = None,
              dedupe_key: str | None = None) -> OutboxMessage:
    if dedupe_key:
        existing = db.session.scalar(sa.select(OutboxMessage).filter_by(dedupe_key=dedupe_key))
        if existing is not None:
            return existing
    message = OutboxMessage(channel=Channel.SMS, to_address=to, body_text=text[:1600],
                            customer_id=customer_id, dedupe_key=dedupe_key)
    return _queue(message)


def _queue(message: OutboxMessage) -> OutboxMessage:
    db.session.add(message)
    db.session.flush()
    defer(db.session, DELIVER_JOB, message.id, queue="email")
    return message


# -- delivery --------------------------------------------------------------------------------

class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None: ...


class HttpSmsGateway:
    """Posts to an HTTP SMS provider (JSON {"to", "text"}); configured by SMS_GATEWAY_URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, to: str, text: str) -> None:
        import json
        import urllib.request

        req = urllib.request.Request(self.url, data=json.dumps({"to": to, "text": text}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - operator-configured URL
            if resp.status >= 300:
                raise RuntimeError(f"SMS gateway answered {resp.status}")


def claim(message_id: int, now: datetime) -> OutboxMessage | None:
    """Move one pending message to ``sending``; None when another job has it or it is done."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == MessageStatus.PENDING)
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(OutboxMessage, message_id, populate_existing=True)


def deliver(message_id: int, *, now: datetime | None = None) -> MessageStatus | None:
    """Deliver one outbox message. Returns the final status, or None if there was nothing to do."""
    now = now or utcnow()
    message = claim(message_id, now)
    if message is None:
        return None
    config = current_app.config
    try:
        if message.channel is Channel.EMAIL and config["MAIL_SERVER"]:
            _send_smtp(message)
            message.status = MessageStatus.SENT
        elif message.channel is Channel.SMS and config["SMS_GATEWAY_URL"]:
            HttpSmsGateway(config["SMS_GATEWAY_URL"]).send(message.to_address, message.body_text)
            message.status = MessageStatus.SENT
        else:
            message.status = MessageStatus.HELD
        message.sent_at = now
        message.last_error = ""
    except Exception as exc:
        # Back to pending so the job's retry (or the sweeper) tries again; give up after 5.
        message.status = MessageStatus.FAILED if message.attempts >= 5 else MessageStatus.PENDING
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        db.session.commit()
        raise
    db.session.commit()
    return message.status


def expanded_bodies(message: OutboxMessage) -> tuple[str, str]:
    """The text and HTML bodies as the recipient gets them (placeholders replaced)."""
    body_text, body_html = message.body_text, message.body_html
    for expand in DELIVERY_EXPANDERS:
        body_text, body_html = expand(body_text), expand(body_html)
    return body_text, body_html


def build_email(message: OutboxMessage) -> EmailMessage:
    config = current_app.config
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    body_text, body_html = expanded_bodies(message)
    email.set_content(body_text)
    if body_html:
        email.add_alternative(body_html, subtype="html")
    store = get_store()
    for item in message.attachments or []:
        maintype, _, subtype = item.get("content_type", "application/pdf").partition("/")
        email.add_attachment(store.read(item["key"]), maintype=maintype, subtype=subtype,
                             filename=item["filename"])
    return email


def _send_smtp(message: OutboxMessage) -> None:
    config = current_app.config
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(build_email(message))


def requeue_stuck(now: datetime) -> int:
    """Sweeper: re-enqueue pending messages older than a minute (Redis was down, or a worker died
    before claiming), and release claims older than 15 minutes (a worker died mid-send)."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == MessageStatus.SENDING,
               OutboxMessage.claimed_at < now - timedelta(minutes=15))
        .values(status=MessageStatus.PENDING)
    )
    ids = db.session.scalars(
        sa.select(OutboxMessage.id).where(OutboxMessage.status == MessageStatus.PENDING,
                                          OutboxMessage.created_at < now - timedelta(minutes=1))
        .limit(1000)
    ).all()
    for message_id in ids:
        defer(db.session, DELIVER_JOB, message_id, queue="email")
    return len(ids)
