"""The outbox: every e-mail and SMS is written to the database first and delivered by a job.

Delivery claims the row with a conditional UPDATE (pending -> sending), so two jobs for the same
message never both send it, and a retried job after success finds nothing to do. This claim protocol is
the one lifecycle that does not go through ``app.lifecycle``: its moves are set-based claims by many
workers at once (whole chunks per statement), not one actor's change of one loaded row; the moves are
pending -> sending -> sent | held | pending (next retry) | failed, failed -> pending (admin Retry) and
sending -> pending (the sweep reclaims a lost claim), each a conditional UPDATE on the status here.

A temporary failure (SMTP server down, ``4xx`` answers, a timeout) does what a mail server does: the
message waits until ``next_attempt_at`` on a schedule that grows from a minute to twelve hours and
covers about three days (``RETRY_DELAYS``). A re-enqueued job before that time claims nothing, so a
sweep never uses up an attempt. Only when the whole schedule is spent (or the server refuses every
recipient with a ``5xx``) does the message become ``failed``: admins get an e-mail and a banner on the
outbox page, where "Retry failed" starts the schedule again.

Delivery is *at least once*: the row is marked sent right after the server accepts the DATA (e-mails
in batches: a chunk of up to ``CLAIM_CHUNK`` is marked in one commit after it went out), but a worker
killed in between sends the message again when its claim is released (after ``CLAIM_TIMEOUT``). Every
copy carries the same ``Message-ID`` so a receiving system can drop it.
"""

from __future__ import annotations

import base64
import logging
import secrets
import smtplib
import time
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Protocol

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from flask_sqlalchemy.session import Session as FlaskSession

from app.enums import Channel, MessageStatus
from app.extensions import db
from app.models import OutboxMessage
from app.models.base import utcnow
from app.models.outbox import message_id_for
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


def queue_emails(items: list[dict]) -> list[int]:
    """:func:`queue_email` for many messages at once (a sweep): each item holds its keyword arguments
    (``to``, ``template``, ``subject``, ``context``, ``customer_id``, ``dedupe_key``, ``ref``, ``locale``).
    One SELECT finds the dedupe keys used already (those items are skipped, as ``queue_email`` returns the
    first row), one INSERT writes the rest, and one delivery job is parked per ``MAIL_BATCH_SIZE`` of them.
    Returns the new rows' ids."""
    keys = [item["dedupe_key"] for item in items if item.get("dedupe_key")]
    used = set(db.session.scalars(sa.select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys)))
               ) if keys else set()
    base = {"base_url": current_app.config["BASE_URL"], "seller_name": current_app.config["SELLER_NAME"]}
    rows, now = [], utcnow()
    for item in items:
        key = item.get("dedupe_key")
        if key and key in used:
            continue
        used.add(key)
        ctx = {**base, **(item.get("context") or {})}
        with force_locale(message_language(item.get("customer_id"), item.get("locale"))):
            subject = str(item["subject"])
            body_text = render_template(f"email/{item['template']}.txt", **ctx)
            body_html = render_template(f"email/{item['template']}.html", **ctx)
        rows.append({"channel": Channel.EMAIL, "to_address": item["to"], "subject": subject, "body_text": body_text,
                     "body_html": body_html, "attachments": [], "status": MessageStatus.PENDING, "dedupe_key": key,
                     "customer_id": item.get("customer_id"), "attempts": 0, "ref": item.get("ref"),
                     "last_error": "", "created_at": now})
    if not rows:
        return []
    t = OutboxMessage.__table__
    ids = sorted(db.session.scalars(sa.insert(t).returning(t.c.id), rows).all())
    step = _batch_size() if current_app.config["MAIL_SERVER"] else 1
    for message_id in ids[::max(step, 1)]:
        defer(db.session, DELIVER_JOB, message_id, queue="email")
    return ids


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
    job per ``MAIL_BATCH_SIZE`` of them, since each job sends every due e-mail (``_deliver_email_batch``);
    a message no job reached is re-enqueued by the sweep (``requeue_stuck``)."""
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


# -- e-mail in batches -------------------------------------------------------------------------------
#
# An e-mail job delivers its own message and then every other e-mail that is due, CLAIM_CHUNK at a time:
# one ``UPDATE … RETURNING`` moves a chunk from pending to sending and is committed before anything is
# sent (so no other job can take those messages: exactly one job sends each), the chunk goes out over one
# SMTP connection, and one UPDATE + commit marks the accepted ones sent. The job stops when nothing is due
# or after BATCH_SECONDS, so two workers share a burst of e-mails chunk by chunk, and the jobs that find
# everything sent end at once. Crash window: a worker killed after the server accepted a message and
# before its chunk is marked sent leaves up to CLAIM_CHUNK messages in ``sending``; the sweep releases
# them after the claim timeout and they are sent again, with the same Message-ID.
BATCH_SIZE = 200  # messages over one SMTP connection before it is renewed (``MAIL_BATCH_SIZE``; 1: no batches)
BATCH_SECONDS = 60  # well inside the e-mail job's timeout
CLAIM_CHUNK = 20

_CLAIMED = ("id", "channel", "to_address", "subject", "body_text", "body_html", "attachments")


def _batch_size() -> int:
    return int(current_app.config.get("MAIL_BATCH_SIZE") or BATCH_SIZE)


def claim_due_emails(now: datetime, limit: int, *, message_id: int | None = None) -> list:
    """Claim (pending -> sending, committed) up to ``limit`` due e-mails, oldest first, or only the message
    ``message_id`` (of any channel), in one ``UPDATE … RETURNING``; returns the claimed rows (id, channel,
    address, subject, bodies, attachments) without loading ORM objects. On PostgreSQL rows another job is
    claiming at that moment are skipped (``SKIP LOCKED``), not waited for."""
    t = OutboxMessage.__table__
    pending = [t.c.status == MessageStatus.PENDING.value,
               sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now)]
    if message_id is not None:
        target = t.c.id == message_id
    else:
        pick = (sa.select(t.c.id).where(*pending, t.c.channel == Channel.EMAIL.value)
                .order_by(t.c.id).limit(limit))
        if db.session.get_bind().dialect.name == "postgresql":
            # A materialized CTE: inside ``IN (…)`` PostgreSQL may re-run a SKIP LOCKED sub-select for
            # every row, each run skipping the rows just claimed, so the LIMIT would not hold.
            picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            target = t.c.id == picked.c.id
        else:
            target = t.c.id.in_(pick.scalar_subquery())
    rows = db.session.execute(
        sa.update(t).where(target, *pending)
        .values(status=MessageStatus.SENDING.value, claimed_at=now, attempts=t.c.attempts + 1)
        .returning(*(t.c[name] for name in _CLAIMED))).all()
    db.session.commit()
    return sorted(rows, key=lambda row: row.id)


def claim_next_email(now: datetime) -> OutboxMessage | None:
    """Claim the oldest due pending e-mail; None when there is none left to claim."""
    rows = claim_due_emails(now, 1)
    return db.session.get(OutboxMessage, rows[0].id, populate_existing=True) if rows else None


def _smtp_connection() -> smtplib.SMTP:
    config = current_app.config
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30)
    if config["MAIL_USE_TLS"]:
        smtp.starttls()
    if config["MAIL_USERNAME"]:
        smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    return smtp


# A worker that runs jobs in its own process (the ``email`` queue's, app.jobs) sets this: its SMTP
# connection then stays open between jobs (checked with a NOOP before reuse, closed after
# KEEP_IDLE_SECONDS unused or MAIL_BATCH_SIZE messages), so a job of one e-mail pays no connection set-up.
KEEP_CONNECTION = False
KEEP_IDLE_SECONDS = 30


class _Connection:
    """The SMTP connection of a batch: opened on first use, renewed after ``MAIL_BATCH_SIZE`` messages."""

    kept: _Connection | None = None

    def __init__(self, key: tuple) -> None:
        self.key, self.smtp, self.sent, self.last_used = key, None, 0, 0.0

    @classmethod
    def take(cls) -> _Connection:
        config = current_app.config
        key = (config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USE_TLS"], config["MAIL_USERNAME"])
        kept, cls.kept = cls.kept, None
        if kept is not None:
            if kept.key == key and time.monotonic() - kept.last_used < KEEP_IDLE_SECONDS:
                try:
                    if kept.smtp.noop()[0] == 250:
                        return kept
                except Exception:  # noqa: BLE001 - the server closed it meanwhile: open a new one
                    pass
            kept.close()
        return cls(key)

    def get(self, limit: int) -> smtplib.SMTP:
        if self.smtp is not None and self.sent >= limit:
            self.close()
        if self.smtp is None:
            self.smtp, self.sent = _smtp_connection(), 0
        return self.smtp

    def count(self) -> None:
        self.sent += 1
        self.last_used = time.monotonic()

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except Exception:  # noqa: BLE001 - every accepted message is recorded already
                self.smtp.close()
        self.smtp = None

    def drop(self) -> None:
        """The connection broke: close it without a QUIT."""
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None

    def release(self) -> None:
        """End of a batch: keep it for the next job (``KEEP_CONNECTION``) or say QUIT."""
        if KEEP_CONNECTION and self.smtp is not None:
            _Connection.kept = self
        else:
            self.close()


def close_kept_connection() -> None:
    """QUIT the connection kept between jobs (a worker stopping)."""
    kept, _Connection.kept = _Connection.kept, None
    if kept is not None:
        kept.close()


def _mark_sent_many(ids: list[int], now: datetime) -> None:
    if ids:
        t = OutboxMessage.__table__
        db.session.execute(sa.update(t).where(t.c.id.in_(ids)).values(
            status=MessageStatus.SENT.value, sent_at=now, last_error="", next_attempt_at=None))
        db.session.commit()


def _release(ids: list[int]) -> None:
    """Claimed but not tried (the connection broke): pending again, the attempt not counted."""
    if ids:
        t = OutboxMessage.__table__
        db.session.execute(sa.update(t).where(t.c.id.in_(ids), t.c.status == MessageStatus.SENDING.value)
                           .values(status=MessageStatus.PENDING.value, attempts=t.c.attempts - 1))
        db.session.commit()


def _send_chunk(rows: list, connection: _Connection, now: datetime) -> bool:
    """Send claimed rows over ``connection``; record the accepted ones sent in one commit at the end. A
    message's own failure is handled as for a single delivery (retry schedule / failed); a broken
    connection ends the chunk (the rows not tried yet are released) and returns False."""
    limit, sender = _batch_size(), _sender()
    accepted: list[int] = []
    for i, row in enumerate(rows):
        try:
            smtp = connection.get(limit)
            data = email_bytes(row, sender)
            if data is None:
                smtp.send_message(build_email(row))
            else:
                smtp.sendmail(sender[1], [row.to_address], data)
            accepted.append(row.id)
            connection.count()
        except Exception as exc:  # noqa: BLE001 - any transport error: retry on our schedule
            _mark_sent_many(accepted, now)  # what the server accepted before this one
            accepted = []
            db.session.rollback()
            connection_ok = isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError
                                       | smtplib.SMTPSenderRefused)
            message = db.session.get(OutboxMessage, row.id, populate_existing=True)
            if message.status is MessageStatus.SENDING:
                _failed_attempt(message, exc, now)
            if not connection_ok:
                connection.drop()
                _release([r.id for r in rows[i + 1:]])
                return False
    _mark_sent_many(accepted, now)
    return True


def _deliver_email_batch(own: list, now: datetime) -> None:
    """Send ``own`` (the job's claimed message, if any) and then every due e-mail, a chunk at a time."""
    started, rows = time.monotonic(), own
    connection = _Connection.take()
    try:
        while True:
            if not rows:
                rows = claim_due_emails(now, CLAIM_CHUNK)
                if not rows:
                    return
            if not _send_chunk(rows, connection, now) or time.monotonic() - started > BATCH_SECONDS:
                return
            rows, now = [], utcnow()
    finally:
        connection.release()


def deliver(message_id: int, *, now: datetime | None = None) -> MessageStatus | None:
    """Deliver one outbox message (an e-mail: with every other e-mail that is due, see
    ``_deliver_email_batch``). Returns its final status, or None if there was nothing to do for it."""
    now = now or utcnow()
    config = current_app.config
    if config["MAIL_SERVER"] and _batch_size() > 1:
        own = claim_due_emails(now, 1, message_id=message_id)
        if own and own[0].channel is Channel.EMAIL:
            _deliver_email_batch(own, now)
            return db.session.scalar(sa.select(OutboxMessage.status).where(OutboxMessage.id == message_id))
        if not own:
            if db.session.scalar(sa.select(OutboxMessage.channel).where(OutboxMessage.id == message_id)) \
                    is Channel.EMAIL:
                _deliver_email_batch([], now)  # sent already or not due: the others that are due go out
            return None
        message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    else:
        message = claim(message_id, now)
        if message is None:
            return None
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


def build_email(message) -> EmailMessage:
    """The e-mail of an outbox message (an ``OutboxMessage`` or a claimed row) as an ``EmailMessage``."""
    config = current_app.config
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = message_id_for(message.id)
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


def _sender() -> tuple[str, str]:
    """(From header, envelope sender) of ``MAIL_DEFAULT_SENDER``; a non-ASCII name is RFC 2047-encoded."""
    name, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    return formataddr((name, address), charset="utf-8"), address


def _body_part(text: str, subtype: str) -> bytes:
    """A text part: 7bit when it is ASCII with short lines, else base64 of its UTF-8."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and all(len(line) <= 990 for line in text.split("\n")):
        encoding, payload = "7bit", text.replace("\n", "\r\n").encode("ascii")
    else:
        encoding, payload = "base64", base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
            .encode("ascii") + payload)


def email_bytes(message, sender: tuple[str, str]) -> bytes | None:
    """The same e-mail as :func:`build_email`, written straight to bytes (about fifty times cheaper than
    the ``email`` package's builder and generator, which cost more than the SMTP exchange itself); None
    when the message needs the full builder (attachments, a non-ASCII address)."""
    to = message.to_address
    if message.attachments or not to.isascii() or "\n" in to or "\r" in to:
        return None
    subject = " ".join((message.subject or "").split())
    subject = Header(subject, "us-ascii" if subject.isascii() else "utf-8").encode(linesep="\r\n")
    body_text, body_html = expanded_bodies(message)
    head = (f"From: {sender[0]}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id_for(message.id)}"
            f"\r\nDate: {formatdate(localtime=False)}\r\nMIME-Version: 1.0\r\n")
    if not body_html:
        return head.encode("ascii") + _body_part(body_text, "plain")
    boundary = f"=_certdesk_{secrets.token_hex(12)}"
    return b"".join((
        f'{head}Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode("ascii"),
        _body_part(body_text, "plain"), f"\r\n--{boundary}\r\n".encode("ascii"),
        _body_part(body_html, "html"), f"\r\n--{boundary}--\r\n".encode("ascii")))


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
