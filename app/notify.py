"""The outbox: every e-mail and SMS is written to the database first and delivered by a job.

Delivery claims the row with a conditional UPDATE (pending -> sending), so two jobs for the same
message never both send it, and a retried job after success finds nothing to do.

A temporary failure (SMTP server down, ``4xx`` answers, a timeout) does what a mail server does: the
message waits until ``next_attempt_at`` on a schedule that grows from a minute to twelve hours and
covers about three days (``RETRY_DELAYS``). A re-enqueued job before that time claims nothing, so a
sweep never uses up an attempt. Only when the whole schedule is spent (or the server refuses every
recipient with a ``5xx``) does the message become ``failed``: admins get an e-mail and a banner on the
outbox page, where "Retry failed" starts the schedule again.

Delivery is *at least once*: the row is marked sent right after the server accepts the DATA, but a
worker killed in between sends the message again when its claim is released (after
``CLAIM_TIMEOUT``). Every copy carries the same ``Message-ID`` so a receiving system can drop it.
"""

from __future__ import annotations

import logging
import smtplib
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from flask_sqlalchemy.session import Session as FlaskSession

from app.enums import Channel, MessageStatus
from app.extensions import db
from app.models import OutboxMessage
from app.models.base import utcnow
from app.queue import defer
from app.storage import get_store

log = logging.getLogger(__name__)

DELIVER_JOB = "app.jobs.deliver_message"

# Waits after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the final one.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240, 480, 720, 720, 720, 720, 720))


def retry_delays() -> tuple[timedelta, ...]:
    """The schedule: ``RETRY_DELAYS`` unless ``MAIL_RETRY_DELAYS`` (seconds) is configured (drills)."""
    configured = current_app.config.get("MAIL_RETRY_DELAYS")
    return tuple(timedelta(seconds=s) for s in configured) if configured else RETRY_DELAYS
# A claim older than this belongs to a worker that died mid-send: the sweep releases it
# (``MAIL_CLAIM_TIMEOUT_SECONDS`` overrides it; the SMTP timeout is 30 s, a job's 120 s).
CLAIM_TIMEOUT = timedelta(minutes=15)
ALERT_KEY = "outbox-failed:"

# Functions ``fn(text) -> text`` applied to an e-mail's bodies when it is built for delivery: the
# outbox row keeps a placeholder and only the e-mail carries the secret it stands for (e.g. the
# exemption link, derived from SECRET_KEY, so a database dump holds no usable link).
DELIVERY_EXPANDERS: list = []


def message_language(customer_id: int | None, locale: str | None = None) -> str:
    """The language a message is written in: ``locale`` when given (staff notices pass "en"), else the
    preferred language of the customer it is about (its contacts and the holders it sends to read it)."""
    from app.i18n import DEFAULT, customer_language

    if locale:
        return locale
    if customer_id is None:
        return DEFAULT
    from app.models import Customer

    return customer_language(db.session.get(Customer, customer_id))


def queue_email(to: str, template: str, *, subject, context: dict | None = None,
                customer_id: int | None = None, dedupe_key: str | None = None,
                attachments: list[dict] | None = None, ref: str | None = None,
                locale: str | None = None) -> OutboxMessage:
    """Render ``templates/email/<template>.txt`` and ``.html`` into an outbox row, in the message's
    language (:func:`message_language`); ``subject`` may be a lazy gettext string, translated likewise.

    With ``dedupe_key`` the message is created at most once: a second call returns the first row.
    ``ref`` names what the message is about, so that page can show its delivery.
    """
    if dedupe_key:
        existing = db.session.scalar(sa.select(OutboxMessage).filter_by(dedupe_key=dedupe_key))
        if existing is not None:
            return existing
    ctx = {"base_url": current_app.config["BASE_URL"], "seller_name": current_app.config["SELLER_NAME"],
           **(context or {})}
    with force_locale(message_language(customer_id, locale)):
        subject = str(subject)
        body_text = render_template(f"email/{template}.txt", **ctx)
        body_html = render_template(f"email/{template}.html", **ctx)
    message = OutboxMessage(
        channel=Channel.EMAIL,
        to_address=to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        attachments=attachments or [],
        customer_id=customer_id,
        dedupe_key=dedupe_key,
        ref=ref,
    )
    return _queue(message)


def queue_sms(to: str, text, *, customer_id: int | None = None,
              dedupe_key: str | None = None, locale: str | None = None) -> OutboxMessage:
    """An SMS in the outbox; ``text`` may be a lazy gettext string, written in :func:`message_language`."""
    if dedupe_key:
        existing = db.session.scalar(sa.select(OutboxMessage).filter_by(dedupe_key=dedupe_key))
        if existing is not None:
            return existing
    with force_locale(message_language(customer_id, locale)):
        text = str(text)
    message = OutboxMessage(channel=Channel.SMS, to_address=to, body_text=text[:1600],
                            customer_id=customer_id, dedupe_key=dedupe_key)
    return _queue(message)


def _queue(message: OutboxMessage) -> OutboxMessage:
    """Store the message and park its delivery job. E-mails written in one transaction share jobs: one
    job per ``MAIL_BATCH_SIZE`` of them, since each job sends that many due e-mails over one connection
    (``_deliver_email_batch``); a message no job reached is re-enqueued by the sweep (``requeue_stuck``)."""
    db.session.add(message)
    db.session.flush()
    batch = int(current_app.config.get("MAIL_BATCH_SIZE") or BATCH_SIZE)
    if message.channel is Channel.EMAIL and batch > 1 and current_app.config["MAIL_SERVER"]:
        written = db.session.info.get("outbox-emails", 0)
        db.session.info["outbox-emails"] = written + 1
        if written % batch:
            return message  # the job parked for an earlier e-mail of this transaction sends it too
    defer(db.session, DELIVER_JOB, message.id, queue="email")
    return message


@sa.event.listens_for(FlaskSession, "after_commit")
@sa.event.listens_for(FlaskSession, "after_rollback")
def _new_transaction(session) -> None:
    session.info.pop("outbox-emails", None)


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


def _due(now: datetime):
    return sa.or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)


def claim(message_id: int, now: datetime) -> OutboxMessage | None:
    """Move one pending message that is due to ``sending``; None when another job has it, it is
    done, or its next attempt is not due yet (so an early duplicate job uses up no attempt)."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == MessageStatus.PENDING, _due(now))
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(OutboxMessage, message_id, populate_existing=True)


# One job delivers its own e-mail and then up to this many more that are due, over the same SMTP
# connection (each still claimed one by one, so none is sent twice); their own jobs then find them
# sent and do nothing. ``MAIL_BATCH_SIZE`` overrides it; 1 turns batching off.
BATCH_SIZE = 200
BATCH_SECONDS = 60  # well inside the e-mail job's timeout


def claim_next_email(now: datetime) -> OutboxMessage | None:
    """Claim the oldest due pending e-mail (for a batch); None when there is none left to claim."""
    for _ in range(5):  # another worker may claim the same candidate first: try the next one
        candidate = db.session.scalar(
            sa.select(OutboxMessage.id).where(OutboxMessage.status == MessageStatus.PENDING,
                                              OutboxMessage.channel == Channel.EMAIL, _due(now))
            .order_by(OutboxMessage.id).limit(1))
        if candidate is None:
            return None
        if (message := claim(candidate, now)) is not None:
            return message
    return None


def _smtp_connection() -> smtplib.SMTP:
    config = current_app.config
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30)
    if config["MAIL_USE_TLS"]:
        smtp.starttls()
    if config["MAIL_USERNAME"]:
        smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    return smtp


def _deliver_email_batch(first: OutboxMessage, now: datetime) -> MessageStatus:
    """Send ``first`` (claimed) and then further due e-mails, one claim at a time, over one connection.
    A message's failure is handled as for a single delivery (retry schedule / failed); a broken
    connection ends the batch (what is not claimed yet stays pending for its own job)."""
    config = current_app.config
    limit = int(config.get("MAIL_BATCH_SIZE") or BATCH_SIZE)
    started, sent, first_status = time.monotonic(), 0, None
    smtp, message = None, first
    try:
        while message is not None:
            connection_ok = True
            try:
                if smtp is None:
                    smtp = _smtp_connection()
                smtp.send_message(build_email(message))
                # Accepted: record it before anything else, so a crash from here on cannot send it twice.
                _mark_sent(message, MessageStatus.SENT, now)
            except Exception as exc:  # noqa: BLE001 - any transport error: retry on our schedule
                connection_ok = isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError
                                           | smtplib.SMTPSenderRefused)
                message_id = message.id
                db.session.rollback()
                message = db.session.get(OutboxMessage, message_id, populate_existing=True)
                if message.status is MessageStatus.SENDING:
                    _failed_attempt(message, exc, now)
                    db.session.commit()
            first_status = first_status or message.status
            sent += 1
            if not connection_ok or sent >= limit or time.monotonic() - started > BATCH_SECONDS:
                break
            now = utcnow()
            message = claim_next_email(now)
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except Exception:  # noqa: BLE001 - every accepted message is recorded already
                smtp.close()
    return first_status


def deliver(message_id: int, *, now: datetime | None = None) -> MessageStatus | None:
    """Deliver one outbox message (an e-mail: with a batch of others that are due, see
    ``_deliver_email_batch``). Returns its final status, or None if there was nothing to do."""
    now = now or utcnow()
    message = claim(message_id, now)
    if message is None:
        return None
    config = current_app.config
    if message.channel is Channel.EMAIL and config["MAIL_SERVER"] and int(config.get("MAIL_BATCH_SIZE") or 2) > 1:
        return _deliver_email_batch(message, now)
    try:
        if message.channel is Channel.EMAIL and config["MAIL_SERVER"]:
            _send_smtp(message, now)  # commits SENT as soon as the server accepted the DATA
        elif message.channel is Channel.SMS and config["SMS_GATEWAY_URL"]:
            HttpSmsGateway(config["SMS_GATEWAY_URL"]).send(message.to_address, message.body_text)
            _mark_sent(message, MessageStatus.SENT, now)
        else:
            _mark_sent(message, MessageStatus.HELD, now)
    except Exception as exc:  # noqa: BLE001 - any transport error: retry on our schedule
        db.session.rollback()
        message = db.session.get(OutboxMessage, message_id, populate_existing=True)
        if message.status is not MessageStatus.SENDING:
            return message.status  # it was marked sent before the error (e.g. QUIT failed)
        _failed_attempt(message, exc, now)
    return message.status


def _mark_sent(message: OutboxMessage, status: MessageStatus, now: datetime) -> None:
    message.status = status
    message.sent_at = now
    message.last_error = ""
    message.next_attempt_at = None
    db.session.commit()


def is_permanent(exc: Exception) -> bool:
    """The server refused the message or every recipient with a 5xx: retrying cannot help (a 4xx
    can). Connection and login errors are treated as temporary: they are usually ours to fix."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPSenderRefused):
        return exc.smtp_code >= 500
    return False


def _failed_attempt(message: OutboxMessage, exc: Exception, now: datetime) -> None:
    """Pending again until the next time on the schedule, or failed once the schedule is spent."""
    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    delays = retry_delays()
    if is_permanent(exc) or message.attempts > len(delays):
        message.status = MessageStatus.FAILED
        message.next_attempt_at = None
        _alert_admins(message, now)
    else:
        message.status = MessageStatus.PENDING
        message.next_attempt_at = now + delays[message.attempts - 1]
        defer(db.session, DELIVER_JOB, message.id, queue="email", at=message.next_attempt_at,
              job_id=f"outbox-{message.id}-{message.attempts}")
    log.warning("outbox message %s attempt %s failed (%s): %s", message.id, message.attempts, message.status,
                message.last_error)
    db.session.commit()


def _alert_admins(message: OutboxMessage, now: datetime) -> None:
    """Tell every enabled admin that a message failed for good (never about an alert itself)."""
    from app.enums import Role
    from app.models import User

    if (message.dedupe_key or "").startswith(ALERT_KEY):
        return
    admins = db.session.scalars(sa.select(User).where(User.role == Role.ADMIN).order_by(User.id)).all()
    base_url = current_app.config["BASE_URL"]
    for admin in admins:
        if not admin.is_active:
            continue
        queue_email(
            admin.email, "notice", subject=f"Undeliverable: {message.subject or 'SMS'} to {message.to_address}",
            context={"heading": "A message could not be delivered",
                     "body": f"CertDesk tried for {_schedule_words()} to deliver message #{message.id} to "
                             f"{message.to_address} and gave up. Last error: {message.last_error}\n\n"
                             f"Open the outbox to retry it once the cause is fixed: {base_url}/admin/outbox"},
            dedupe_key=f"{ALERT_KEY}{message.id}:{message.attempts}:{admin.id}",
        )


def _schedule_words() -> str:
    hours = sum(d.total_seconds() for d in retry_delays()) / 3600
    return f"about {round(hours / 24)} days" if hours >= 48 else f"{round(hours)} hours"


def retry_failed(*, now: datetime) -> int:
    """Admins' "Retry failed": every failed message starts the retry schedule again, now."""
    ids = db.session.scalars(sa.select(OutboxMessage.id).where(OutboxMessage.status == MessageStatus.FAILED)).all()
    if ids:
        db.session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.status == MessageStatus.FAILED)
            .values(status=MessageStatus.PENDING, attempts=0, next_attempt_at=now)
        )
    for message_id in ids:
        defer(db.session, DELIVER_JOB, message_id, queue="email")
    return len(ids)


def failed_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))
                             .where(OutboxMessage.status == MessageStatus.FAILED)) or 0


def delivery_problems(ref: str) -> list[OutboxMessage]:
    """Messages about ``ref`` that failed for good or are waiting to be retried after an error."""
    return db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.ref == ref,
            sa.or_(OutboxMessage.status == MessageStatus.FAILED,
                   sa.and_(OutboxMessage.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]),
                           OutboxMessage.last_error != "")))
        .order_by(OutboxMessage.id)
    ).all()


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


def _send_smtp(message: OutboxMessage, now: datetime) -> None:
    config = current_app.config
    email = build_email(message)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(email)
        # Accepted: record it before QUIT, so a crash from here on cannot send it twice.
        _mark_sent(message, MessageStatus.SENT, now)


def requeue_stuck(now: datetime) -> int:
    """Sweeper: re-enqueue pending messages a minute past due (Redis was down or restarted empty, or a
    worker died before claiming), and release claims older than ``CLAIM_TIMEOUT`` (a worker died
    mid-send). A message waiting for its next attempt is left alone until that time."""
    config = current_app.config
    claim_timeout = timedelta(seconds=config.get("MAIL_CLAIM_TIMEOUT_SECONDS") or CLAIM_TIMEOUT.total_seconds())
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == MessageStatus.SENDING,
               OutboxMessage.claimed_at < now - claim_timeout)
        .values(status=MessageStatus.PENDING, next_attempt_at=OutboxMessage.claimed_at)
    )
    # "A minute" (one sweep interval when that is shorter): RQ gets that long to run the job itself.
    a_minute_ago = now - timedelta(seconds=min(60, config["SWEEP_INTERVAL_SECONDS"]))
    ids = db.session.scalars(
        sa.select(OutboxMessage.id).where(
            OutboxMessage.status == MessageStatus.PENDING,
            sa.or_(sa.and_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.created_at < a_minute_ago),
                   OutboxMessage.next_attempt_at <= a_minute_ago))
        .order_by(OutboxMessage.id)
        .limit(1000)
    ).all()
    for message_id in ids:
        defer(db.session, DELIVER_JOB, message_id, queue="email")
    return len(ids)
