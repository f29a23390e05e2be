"""Time: link expiry (scheduled job, sweep after a missed schedule, checked on every use),
reminders 7 and 1 days before (each once), certificate expiry and automatic renewal requests."""

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
import time_machine

from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionRequestStatus as RS
from app.extensions import db, jobs
from app.models import ExemptionCertificate, ExemptionRequest
from app.sweeper import run_sweep

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def scheduled_expiry_jobs():
    queue = jobs.queue("default")
    registry = queue.scheduled_job_registry
    found = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job and job.func_name == "app.exemptions.jobs.expire_link":
            found.append((job, registry.get_scheduled_time(job_id)))
    return found


def status(req_id):
    db.session.expire_all()
    return db.session.get(ExemptionRequest, req_id).status


def test_expiry_is_scheduled_at_send_time_and_the_job_expires_the_link(app, client, make, run_jobs):
    with time_machine.travel(T0, tick=False):
        req, token = make.exemption_request()
    [(job, when)] = scheduled_expiry_jobs()
    assert list(job.args) == [req.id]  # JSON-serialised job data: a list
    assert when.replace(tzinfo=UTC) == T0 + timedelta(days=30)

    # Early (e.g. a clock skew): the job finds nothing to do.
    with time_machine.travel(T0 + timedelta(days=29), tick=False):
        jobs.queue("default").enqueue("app.exemptions.jobs.expire_link", req.id)
        run_jobs()
        assert status(req.id) is RS.SENT
    # On time, as the scheduler would run it.
    with time_machine.travel(T0 + timedelta(days=30, seconds=1), tick=False):
        jobs.queue("default").enqueue_job(job)
        run_jobs()
        assert status(req.id) is RS.EXPIRED
        page = client.get(f"/portal/r/{token}")
    assert page.status_code == 404
    assert "This link is not available" in page.get_data(as_text=True)


def test_expired_link_is_refused_before_any_job_or_sweep_ran(app, client, make):
    with time_machine.travel(T0, tick=False):
        req, token = make.exemption_request()
    with time_machine.travel(T0 + timedelta(days=30) - timedelta(seconds=5), tick=False):
        assert client.get(f"/portal/r/{token}").status_code == 200
    with time_machine.travel(T0 + timedelta(days=30, seconds=1), tick=False):
        page = client.get(f"/portal/r/{token}")
        posted = client.post(f"/portal/r/{token}", data=make.exemption_form())
    assert page.status_code == posted.status_code == 404
    assert status(req.id) is RS.EXPIRED
    assert db.session.scalar(sa.select(sa.func.count(ExemptionCertificate.id))) == 0


def test_sweep_expires_links_whose_schedule_was_lost(app, make):
    with time_machine.travel(T0, tick=False):
        req, _ = make.exemption_request()
        other, _ = make.exemption_request()
    for job, _ in scheduled_expiry_jobs():  # Redis lost the schedule
        jobs.queue("default").scheduled_job_registry.remove(job, delete_job=True)
    assert scheduled_expiry_jobs() == []
    result = run_sweep(T0 + timedelta(days=30, minutes=1))
    assert result["exemption_links_expire"] == 2
    assert status(req.id) is RS.EXPIRED and status(other.id) is RS.EXPIRED
    assert run_sweep(T0 + timedelta(days=31))["exemption_links_expire"] == 0  # idempotent


def test_resend_outlives_the_old_schedule(app, make, run_jobs):
    from app.exemptions.services import resend_request

    with time_machine.travel(T0, tick=False):
        req, _ = make.exemption_request()
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        resend_request(req, actor=None, now=T0 + timedelta(days=20))
        db.session.commit()
    old_job = min(scheduled_expiry_jobs(), key=lambda jw: jw[1])[0]
    with time_machine.travel(T0 + timedelta(days=30, seconds=1), tick=False):
        jobs.queue("default").enqueue_job(old_job)
        run_jobs()
        assert status(req.id) is RS.SENT
    assert run_sweep(T0 + timedelta(days=50, seconds=1))["exemption_links_expire"] == 1


def test_reminders_7_and_1_days_before_each_once(app, make, smtp, run_jobs):
    with time_machine.travel(T0, tick=False):
        req, _ = make.exemption_request(email="slow@customer.example.com")
        run_jobs()
    assert run_sweep(T0 + timedelta(days=22))["exemption_reminders"] == 0
    for _ in range(3):  # sweeps run every minute; only the first one sends
        run_sweep(T0 + timedelta(days=23, minutes=1))
    run_jobs()
    for _ in range(2):
        run_sweep(T0 + timedelta(days=29, hours=1))
    run_jobs()
    mails = smtp.to("slow@customer.example.com")
    subjects = [m["Subject"] for m in mails]
    assert len(mails) == 3, subjects
    reminders = [m.get_body(preferencelist=("plain",)).get_content() for m in mails if "Reminder" in m["Subject"]]
    assert "(in 7 days)" in reminders[0] and "(in 1 day)" in reminders[1]
    assert sorted(db.session.get(ExemptionRequest, req.id).reminders_sent) == [1, 7]
    assert run_sweep(T0 + timedelta(days=30, minutes=1))["exemption_reminders"] == 0


def test_reminder_carries_the_working_link_and_after_a_resend_the_new_one(app, client, make, smtp, run_jobs):
    from app.exemptions.services import resend_request
    from tests.jobs.test_exemption_lifecycle import link_from

    with time_machine.travel(T0, tick=False):
        req, _ = make.exemption_request(email="forgetful@customer.example.com")
        run_jobs()
    [first] = smtp.to("forgetful@customer.example.com")
    original = link_from(first)

    with time_machine.travel(T0 + timedelta(days=23, minutes=1), tick=False):
        run_sweep(T0 + timedelta(days=23, minutes=1))
        run_jobs()
        [reminder] = [m for m in smtp.to("forgetful@customer.example.com") if "Reminder" in m["Subject"]]
        path = link_from(reminder)
        assert path == original  # the same link, repeated
        html = reminder.get_body(preferencelist=("html",)).get_content()
        assert f'href="http://certdesk.test{path}"' in html
        page = client.get(path)
        assert page.status_code == 200
        assert "asks for your sales-tax exemption certificate" in page.get_data(as_text=True)

        resend_request(req, actor=None, now=T0 + timedelta(days=23, hours=1))
        db.session.commit()
        run_jobs()
    resent = link_from(smtp.to("forgetful@customer.example.com")[-1])
    assert resent != original

    # The fresh link expires 30 days after the resend; its 7-day reminder repeats the new link.
    when = T0 + timedelta(days=23 + 23, hours=2)
    with time_machine.travel(when, tick=False):
        assert run_sweep(when)["exemption_reminders"] == 1
        run_jobs()
        reminders = [m for m in smtp.to("forgetful@customer.example.com") if "Reminder" in m["Subject"]]
        assert len(reminders) == 2
        assert link_from(reminders[-1]) == resent
        assert client.get(resent).status_code == 200
        old = client.get(original)
        assert old.status_code == 404 and "This link is not available" in old.get_data(as_text=True)


def test_a_late_sweep_sends_only_the_closest_reminder(app, make):
    from app.models import OutboxMessage

    with time_machine.travel(T0, tick=False):
        make.exemption_request(email="late@customer.example.com")
    run_sweep(T0 + timedelta(days=29, hours=2))  # the sweeper was down for a week
    subjects = db.session.scalars(sa.select(OutboxMessage.subject).where(OutboxMessage.subject.like("Reminder%"))).all()
    assert len(subjects) == 1


def test_no_reminders_for_completed_or_cancelled_requests(app, make):
    from app.exemptions.services import cancel_request

    with time_machine.travel(T0, tick=False):
        req, _ = make.exemption_request()
    cancel_request(req, actor=None, now=T0 + timedelta(days=1))
    db.session.commit()
    assert run_sweep(T0 + timedelta(days=23, minutes=1))["exemption_reminders"] == 0


def test_renewal_request_45_days_ahead_and_expiry_when_all_jurisdictions_passed(app, make, smtp, run_jobs):
    from app.exemptions.services import lookup

    customer = make.customer(contact_email="renew@customer.example.com")
    cert = make.exemption_certificate(customer, states=(("TX", "", date(2026, 6, 30)), ("NY", "", date(2026, 12, 31))),
                                      effective=date(2026, 1, 1))
    assert run_sweep(datetime(2026, 5, 15, 12, tzinfo=UTC))["exemption_renewals"] == 0
    on_day = datetime(2026, 5, 16, 0, 5, tzinfo=UTC)  # June 30 - 45 days
    assert run_sweep(on_day)["exemption_renewals"] == 1
    assert run_sweep(on_day + timedelta(hours=1))["exemption_renewals"] == 0  # once
    run_jobs()
    [mail] = smtp.to("renew@customer.example.com")
    assert "renew" in mail["Subject"].lower()
    renewal = db.session.scalar(sa.select(ExemptionRequest).where(ExemptionRequest.renewal_of_id == cert.id))
    assert renewal.status is RS.SENT and renewal.source == "renewal"

    # TX stops counting after its date; NY still counts; the certificate stays active.
    assert lookup(customer.id, "TX", date(2026, 6, 30)) == [cert]
    assert lookup(customer.id, "TX", date(2026, 7, 1)) == []
    assert lookup(customer.id, "NY", date(2026, 7, 1)) == [cert]
    assert run_sweep(datetime(2026, 12, 31, 12, tzinfo=UTC))["exemption_certificates_expire"] == 0
    assert run_sweep(datetime(2027, 1, 1, 0, 1, tzinfo=UTC))["exemption_certificates_expire"] == 1
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.EXPIRED
