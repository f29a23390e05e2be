"""The link-expiry sweep is set-based: a handful of statements per batch, however many links are overdue,
with the same timeline row and event per link as expiring one link at a time."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine

from app.enums import ExemptionRequestStatus as RS
from app.exemptions import services
from app.extensions import db
from app.models import Activity, Event, ExemptionRequest, WebhookDelivery, WebhookEndpoint

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_sweep_expires_every_overdue_link_in_batches_with_a_timeline_row_and_event_each(app, make):
    endpoint = WebhookEndpoint(url="http://127.0.0.1:8765/hook", secret="whsec_x", event_types=[], enabled=True)
    db.session.add(endpoint)
    with time_machine.travel(T0, tick=False):
        overdue = [make.exemption_request(email=f"buyer{i}@example.com")[0] for i in range(12)]
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        fresh, _ = make.exemption_request(email="fresh@example.com")
    db.session.commit()
    overdue[0].status = RS.OPENED  # opened but never answered expires too
    db.session.commit()
    now = T0 + timedelta(days=30, minutes=1)

    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert services.expire_overdue_links(now, batch=5) == 12
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # 3 batches (5 + 5 + 2) and one that finds nothing: 4 UPDATEs, not 12; inserts per batch, not per link
    assert statements.count("UPDATE") == 4
    assert statements.count("INSERT") <= 3 * 3

    db.session.expire_all()
    ids = [r.id for r in overdue]
    assert {r.status for r in db.session.scalars(sa.select(ExemptionRequest).where(ExemptionRequest.id.in_(ids)))} \
        == {RS.EXPIRED}
    assert all(r.expired_at == now and r.version >= 2 for r in overdue)
    assert db.session.get(ExemptionRequest, fresh.id).status is RS.SENT
    timeline = db.session.scalars(sa.select(Activity).where(Activity.subject_type == "exemption_request",
                                                            Activity.action == "expired")).all()
    assert sorted(a.subject_id for a in timeline) == sorted(ids)
    assert {a.message for a in timeline} == {"The link expired unused."} and {a.actor_label for a in timeline} \
        == {"system"}
    events = db.session.scalars(sa.select(Event).where(Event.type == "exemption_request.expired")).all()
    assert sorted(e.subject_id for e in events) == sorted(ids)
    assert {e.payload["data"]["status"] for e in events} == {"expired"}
    assert events[0].payload["url"].endswith(f"/api/v1/exemption-requests/{events[0].subject_id}")
    deliveries = db.session.scalars(sa.select(WebhookDelivery).where(
        WebhookDelivery.event_id.in_([e.id for e in events]))).all()
    assert sorted(d.event_id for d in deliveries) == sorted(e.id for e in events)
    assert {d.endpoint_id for d in deliveries} == {endpoint.id}
    # idempotent: nothing left to do, nothing written twice
    assert services.expire_overdue_links(now + timedelta(minutes=1)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 12 + 13  # 13 "sent" events


def test_an_expired_link_refuses_the_page_after_the_set_based_sweep(app, client, make):
    with time_machine.travel(T0, tick=False):
        req, token = make.exemption_request()
    db.session.commit()
    assert services.expire_overdue_links(T0 + timedelta(days=31)) == 1
    page = client.get(f"/portal/r/{token}")
    assert page.status_code == 404


def test_certificate_expiry_is_set_based_with_a_timeline_row_and_event_each_and_runs_once(app, make):
    from datetime import date

    from app.enums import ExemptionCertificateStatus as CS
    from app.models import ExemptionCertificate

    customer = make.customer()
    tx = ("TX", "", date(2026, 6, 30))
    lapsed = [make.exemption_certificate(customer, states=(tx, ("NY", "", date(2026, 7, 1 + i)))) for i in range(7)]
    one_left = make.exemption_certificate(customer, states=(tx, ("NY", "", date(2027, 1, 1))))
    no_date = make.exemption_certificate(customer, states=(("TX", "", date(2026, 6, 30)), ("OH", "", None)))
    by_cert_date = make.exemption_certificate(customer, states=(("OH", "", None),), expiration=date(2026, 8, 1))
    pending = make.exemption_certificate(customer, status=CS.PENDING_REVIEW, states=(("TX", "", date(2026, 6, 30)),))
    db.session.commit()
    now = datetime(2026, 9, 1, 0, 5, tzinfo=UTC)

    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert services.expire_certificates(now, batch=3) == 8
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert statements.count("UPDATE") == 4  # 3 + 3 + 2, then one that finds nothing: not one per certificate
    assert statements.count("INSERT") <= 3 * 3

    db.session.expire_all()
    expired = [c.id for c in lapsed] + [by_cert_date.id]
    status = dict(db.session.execute(sa.select(ExemptionCertificate.id, ExemptionCertificate.status)).all())
    assert {status[i] for i in expired} == {CS.EXPIRED}
    assert status[one_left.id] is CS.ACTIVE and status[no_date.id] is CS.ACTIVE
    assert status[pending.id] is CS.PENDING_REVIEW
    cert = db.session.get(ExemptionCertificate, lapsed[0].id)
    assert cert.expired_at == now and cert.version >= 2
    timeline = db.session.scalars(sa.select(Activity).where(Activity.subject_type == "exemption_certificate",
                                                            Activity.action == "expired")).all()
    assert sorted(a.subject_id for a in timeline) == sorted(expired)
    assert {a.message for a in timeline} == {"Every jurisdiction on the certificate has expired."}
    assert {a.customer_id for a in timeline} == {customer.id}
    events = db.session.scalars(sa.select(Event).where(Event.type == "exemption_certificate.expired")).all()
    assert sorted(e.subject_id for e in events) == sorted(expired)
    assert {e.payload["data"]["status"] for e in events} == {"expired"}
    # a second sweep finds nothing and writes nothing
    assert services.expire_certificates(now + timedelta(days=1)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)
                             .where(Event.type == "exemption_certificate.expired")) == 8


def test_renewals_are_claimed_set_based_each_certificate_once_with_one_email(app, make):
    from datetime import date

    from app.models import ExemptionCertificate, OutboxMessage

    def cert_for(email, earliest):
        customer = make.customer(contact_email=email)
        return make.exemption_certificate(customer, states=(("TX", "", earliest), ("NY", "", date(2027, 12, 31))))

    due = [cert_for(f"renew{i}@customer.example.com", date(2026, 6, 30)) for i in range(5)]
    later = cert_for("later@customer.example.com", date(2026, 9, 30))
    no_address = cert_for("", date(2026, 6, 1))
    db.session.commit()
    now = datetime(2026, 5, 16, 0, 5, tzinfo=UTC)  # June 30 - 45 days

    claims = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("UPDATE exemption_certificates SET renewal_requested_at"):
            claims.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert services.send_renewals(now, batch=2) == 5
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # 6 claimed (5 + the one without an address) in batches of 2: 3 claiming UPDATEs and one that finds nothing
    assert len(claims) == 4
    db.session.expire_all()
    renewals = db.session.scalars(sa.select(ExemptionRequest).where(ExemptionRequest.source == "renewal")).all()
    assert sorted(r.renewal_of_id for r in renewals) == sorted(c.id for c in due)
    mails = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.to_address.like("renew%"))).all()
    assert sorted(m.to_address for m in mails) == sorted(f"renew{i}@customer.example.com" for i in range(5))
    assert all("renew" in m.subject.lower() for m in mails)
    claimed = dict(db.session.execute(sa.select(ExemptionCertificate.id,
                                                ExemptionCertificate.renewal_requested_at)).all())
    assert {claimed[c.id] for c in due + [no_address]} == {now} and claimed[later.id] is None
    timeline = {(a.subject_id, a.action) for a in db.session.scalars(
        sa.select(Activity).where(Activity.subject_type == "exemption_certificate"))}
    assert {(c.id, "renewal_requested") for c in due} <= timeline and (no_address.id, "renewal_skipped") in timeline
    events = db.session.scalars(sa.select(Event).where(Event.type == "exemption_certificate.renewal_requested")).all()
    assert sorted(e.subject_id for e in events) == sorted(c.id for c in due)
    # a second sweep (and a later one) sends nothing twice
    assert services.send_renewals(now + timedelta(hours=1)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.to_address.like("renew%"))) == 5
    assert services.send_renewals(datetime(2026, 8, 16, 1, tzinfo=UTC)) == 1  # "later" comes due


def test_reminders_are_written_in_bulk_each_once_with_their_link_and_timeline_row(app, make, smtp, run_jobs):
    from app.models import OutboxMessage

    app.config["EXEMPTION_REMINDER_DAYS"] = [7, 1]
    with time_machine.travel(T0, tick=False):
        week = [make.exemption_request(email=f"week{i}@example.com")[0] for i in range(5)]
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        day = [make.exemption_request(email=f"day{i}@example.com")[0] for i in range(2)]
        done, _ = make.exemption_request(email="done@example.com")
    services.cancel_request(done, actor=None, now=T0 + timedelta(days=6))
    db.session.commit()
    run_jobs()  # the link e-mails
    smtp.messages.clear()
    now = T0 + timedelta(days=29, hours=1)  # week*: 23 h left (the 1-day reminder); day*: 6 days 23 h (7-day)

    inserts = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO outbox_messages"):
            inserts.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert services.send_due_reminders(now, batch=3) == 7
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(inserts) <= 3  # one per batch of due links (3 + 2 in the 1-day window, 2 in the 7-day one)
    run_jobs()
    got = {rcpts[0]: m for rcpts, m in smtp.messages}
    assert sorted(got) == sorted([f"week{i}@example.com" for i in range(5)] + ["day0@example.com", "day1@example.com"])
    assert "1 day" in got["week0@example.com"].get_body(("plain",)).get_content()
    assert "7 days" in got["day1@example.com"].get_body(("plain",)).get_content()
    assert "/portal/r/" in got["week3@example.com"].get_body(("plain",)).get_content()
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, week[0].id).reminders_sent == [1]
    assert db.session.get(ExemptionRequest, day[0].id).reminders_sent == [7]
    timeline = db.session.scalars(sa.select(Activity).where(Activity.action == "reminded")).all()
    assert sorted(a.subject_id for a in timeline) == sorted(r.id for r in week + day)
    assert "Reminder sent to week0@example.com (1 day before the link expires)." in {a.message for a in timeline}
    # a second sweep writes nothing
    assert services.send_due_reminders(now + timedelta(minutes=5)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.subject.like("Reminder%"))) == 7
