"""Customer page: certificates to re-issue after a renewal (preview per holder); re-issued as new revisions in
one run with progress (real RQ worker, real SMTP server), each holder e-mailed its new revision once, a retried
job re-issuing and e-mailing nothing twice, and the sweep restarting a run a dead worker left behind."""

import html
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.enums import CoverageLine, ReissueStatus, RequestType, Role
from app.extensions import db
from app.insurance.documents import issue_certificate
from app.insurance.layout import HolderInfo
from app.models import IssuedCertificate, OutboxMessage, ReissueRun
from app.models.base import utcnow

HOLDER = HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                    zip_code="78701", email="certs@northwind.example.com")
OTHER = HolderInfo(name="Lakeside Property Management", address="12 Lake Dr", city="Austin", state="TX",
                   zip_code="78702", email="coi@lakeside.example.com")
THIRD = HolderInfo(name="Summit Tower LLC", address="1 Summit Way", city="Austin", state="TX", zip_code="78703",
                   email="docs@summit.example.com")


def _text(response) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded, spacing collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def _issued(customer, *holders):
    certs = [issue_certificate(customer, kind=RequestType.COI, holder=h, actor=None, now=utcnow() - timedelta(days=1))
             for h in holders]
    db.session.commit()
    return certs


def _raise_gl_limit(customer):
    gl = next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.limits = {**gl.limits, "each_occurrence": 2_000_000}
    db.session.commit()


def test_staff_reissue_in_one_run_with_progress_each_holder_emailed_once(app, make, client, auth, run_jobs, smtp):
    customer = make.customer()
    first, second, third = _issued(customer, HOLDER, OTHER, THIRD)
    wos = issue_certificate(customer, kind=RequestType.COI_WOS, holder=HOLDER, actor=None,
                            now=utcnow() - timedelta(days=1))  # the first holder's second certificate
    db.session.commit()
    staff = make.user(Role.REVIEWER)
    auth.login(staff)
    page = _text(client.get(f"/customers/{customer.id}/certificates"))
    assert "Certificates to re-issue" not in page  # nothing changed yet
    _raise_gl_limit(customer)
    page = _text(client.get(f"/customers/{customer.id}/certificates"))
    assert "Certificates to re-issue (4)" in page and "each occurrence 1000000 → 2000000" in page

    nothing = client.post(f"/customers/{customer.id}/certificates/reissue", data={"certificate_ids": ["999999"]})
    assert nothing.status_code == 422 and "Choose at least one certificate to re-issue." in _text(nothing)
    assert db.session.scalar(sa.select(sa.func.count(ReissueRun.id))) == 0

    chosen = [str(first.id), str(second.id), str(third.id), str(wos.id)]
    started = client.post(f"/customers/{customer.id}/certificates/reissue", data={"certificate_ids": chosen})
    assert started.status_code == 303
    run = db.session.scalar(sa.select(ReissueRun))
    assert started.headers["Location"].endswith(f"/customers/{customer.id}/certificates/reissue/{run.id}")
    page = _text(client.get(started.headers["Location"]))
    assert "0 % · 0 of 4 done: 0 re-issued, 0 holders e-mailed, 0 skipped" in page
    assert "hx-get" in client.get(started.headers["Location"]).text  # the page polls while the run works

    # Meanwhile someone re-issues the third one on its own: the run skips it and says why.
    from app.insurance.issuing import reissue

    reissue(third, actor=None, now=utcnow())
    db.session.commit()
    run_jobs()  # the re-issue run (one commit per certificate), then the holders' e-mails
    run_jobs()
    partial = client.get(started.headers["Location"], headers={"HX-Request": "true"})
    text = _text(partial)
    assert "100 % · 4 of 4 done: 3 re-issued, 2 holders e-mailed, 1 skipped" in text
    assert f"{third.certificate_number} rev. 1 (Summit Tower LLC): Already superseded by revision 2." in text
    assert "hx-get" not in partial.text  # polling stops when the run ends
    db.session.refresh(run)
    assert run.status is ReissueStatus.DONE and run.attempts == 1

    for certs, holder in (((first, wos), HOLDER), ((second,), OTHER)):
        received = smtp.to(holder.email)
        assert len(received) == 1  # each holder once, with all its new revisions
        assert certs[0].certificate_number in received[0]["Subject"]
        body = received[0].get_body(("plain",)).get_content()
        newest = [db.session.scalar(sa.select(IssuedCertificate).filter_by(
            certificate_number=c.certificate_number, is_current=True)) for c in certs]
        for new in newest:
            assert new.revision == 2 and new.data["coverages"][0]["limits"][0]["amount"] == 2_000_000
            assert f"{new.certificate_number} (revision 2)" in body
        assert [a.get_filename() for a in received[0].iter_attachments()] == [n.filename for n in newest]
    assert smtp.to(THIRD.email) == []

    # A retried job (a worker died after the last commit): nothing is re-issued or e-mailed twice.
    db.session.execute(sa.update(ReissueRun).where(ReissueRun.id == run.id).values(status=ReissueStatus.RUNNING))
    db.session.commit()
    from app.insurance.jobs import run_reissue

    customer_id, run_id = customer.id, run.id
    assert run_reissue(run_id) == "3 re-issued, 1 skipped"  # the job's session ends with it
    run_jobs()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 8  # 4 + 3 + the third's own
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2
    assert len(smtp.to(HOLDER.email)) == 1 and len(smtp.to(OTHER.email)) == 1
    page = _text(client.get(f"/customers/{customer_id}/certificates"))
    assert "Certificates to re-issue (0)" in page and f"Re-issue #{run_id}" in page


def test_a_run_a_dead_worker_left_is_swept_back_and_fails_after_its_attempts(app, make, run_jobs):
    from app.extensions import jobs
    from app.insurance import reissue_runs

    customer = make.customer()
    (cert,) = _issued(customer, HOLDER)
    _raise_gl_limit(customer)
    staff = make.user(Role.REVIEWER)
    run = reissue_runs.start_reissue(customer, [cert.id], actor=staff, now=utcnow())
    db.session.commit()
    for queue in jobs.all_queues():  # the job was lost (Redis flushed, worker killed)
        queue.empty()
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert reissue_runs.requeue_stuck_runs(later) == 1
    db.session.commit()
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.status is ReissueStatus.DONE and run.reissued_count == 1
    assert reissue_runs.requeue_stuck_runs(later + timedelta(hours=1)) == 0  # a finished run stays finished

    stuck = reissue_runs.start_reissue(customer, [cert.id], actor=staff, now=utcnow())
    stuck.status, stuck.attempts = ReissueStatus.RUNNING, reissue_runs.MAX_ATTEMPTS
    db.session.commit()
    assert reissue_runs.requeue_stuck_runs(later + timedelta(hours=1)) == 1
    db.session.commit()
    db.session.refresh(stuck)
    assert stuck.status is ReissueStatus.FAILED and "stopped after 3 attempts" in stuck.error


def test_customer_users_and_processors_cannot_reissue(app, make, client, auth):
    customer = make.customer()
    auth.login(make.user(Role.PROCESSOR))
    assert client.post(f"/customers/{customer.id}/certificates/reissue", data={"all": "1"}).status_code == 403
    assert client.get(f"/customers/{customer.id}/certificates/reissue/1").status_code == 403


def test_a_run_of_another_customer_is_not_found(app, make, client, auth):
    customer, other = make.customer(), make.customer(name="Other Co")
    (cert,) = _issued(customer, HOLDER)
    from app.insurance import reissue_runs

    run = reissue_runs.start_reissue(customer, [cert.id], actor=None, now=utcnow())
    db.session.commit()
    auth.login(make.user(Role.REVIEWER))
    assert client.get(f"/customers/{other.id}/certificates/reissue/{run.id}").status_code == 404
    assert client.get(f"/customers/{customer.id}/certificates/reissue/{run.id}").status_code == 200
