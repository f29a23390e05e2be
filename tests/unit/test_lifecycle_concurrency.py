"""One concurrency mechanism for every lifecycle: two sessions (two web processes or workers) load the
same row and both move it -> exactly one wins; the other gets the engine's ``TransitionConflict`` and
keeps nothing (no second activity row, no second event). The version counter in the UPDATE decides,
on SQLite and on PostgreSQL alike."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app import lifecycle
from app.enums import (
    AuditPackStatus,
    AutomationDecision,
    CoverageLine,
    ExemptionCertificateStatus,
    ExemptionRequestStatus,
    GenerationMode,
    GenerationStatus,
    ImportKind,
    ImportStatus,
    InvalidTransition,
    IssueState,
    PaymentStatus,
    PolicyStatus,
    ReissueStatus,
    RequestStatus,
    SendRunStatus,
    WebhookDeliveryStatus,
)
from app.extensions import db
from app.models import (
    Activity,
    AuditPack,
    CertificateRequest,
    Event,
    ExemptionCertificate,
    ExemptionRequest,
    ExemptionSendRun,
    GenerationRun,
    ImportRun,
    Payment,
    Policy,
    ReissueRun,
    WebhookDelivery,
    WebhookEndpoint,
)

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _add(obj):
    db.session.add(obj)
    db.session.commit()
    return obj


# model -> (a row in some state, built with the factories, and the move both sessions try)
START = {
    ExemptionRequest: (lambda make: make.exemption_request()[0], ExemptionRequestStatus.CANCELLED),
    ExemptionCertificate: (lambda make: make.exemption_certificate(status=ExemptionCertificateStatus.PENDING_REVIEW),
                           ExemptionCertificateStatus.ACTIVE),
    CertificateRequest: (lambda make: make.queue_request(), RequestStatus.IN_PROGRESS),
    ImportRun: (lambda make: _add(ImportRun(kind=ImportKind.HOLDERS, status=ImportStatus.PREVIEW, filename="h.csv",
                                            created_at=NOW, updated_at=NOW)), ImportStatus.CANCELLED),
    GenerationRun: (lambda make: _add(GenerationRun(customer_id=make.customer().id, mode=GenerationMode.ZIP,
                                                    status=GenerationStatus.QUEUED, updated_at=NOW)),
                    GenerationStatus.RUNNING),
    AuditPack: (lambda make: _add(AuditPack(date_from=date(2026, 1, 1), date_to=date(2026, 6, 30),
                                            status=AuditPackStatus.QUEUED)), AuditPackStatus.RUNNING),
    ExemptionSendRun: (lambda make: _add(ExemptionSendRun(status=SendRunStatus.QUEUED)), SendRunStatus.RUNNING),
    ReissueRun: (lambda make: _add(ReissueRun(customer_id=make.customer().id, status=ReissueStatus.QUEUED,
                                              updated_at=NOW)), ReissueStatus.RUNNING),
    Payment: (lambda make: _add(Payment(customer_id=make.customer().id, idempotency_key="wos:race",
                                        status=PaymentStatus.ERROR, amount_cents=2575)), PaymentStatus.APPROVED),
    WebhookDelivery: (lambda make: _delivery(), WebhookDeliveryStatus.SUCCEEDED),
    Policy: (lambda make: _policy(make), PolicyStatus.CANCELLED),
}


def _policy(make):
    return _add(Policy(customer_id=make.customer().id, line=CoverageLine.GENERAL_LIABILITY, insurer=make.insurer(),
                       policy_number="GL-race", effective_date=date(2026, 1, 1), expiry_date=date(2027, 1, 1)))


def _delivery():
    endpoint = _add(WebhookEndpoint(url="https://receiver.example.com/hook", secret="whsec_x"))
    event = _add(Event(uid="evt_race", type="certificate_request.completed", subject_type="certificate_request",
                       subject_id=1, occurred_at=NOW, payload={}))
    return _add(WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, created_at=NOW))
MODELS = list(lifecycle.MACHINES)
# the sub-states race on the same row's counter: (model, column) -> the move both sessions try
SUB_START = {(CertificateRequest, "decision"): AutomationDecision.MANUAL,
             (CertificateRequest, "issuing"): IssueState.PENDING}


def _activities(obj) -> int:
    machine = lifecycle.machine_of(obj)
    return db.session.scalar(sa.select(sa.func.count(Activity.id)).filter_by(
        subject_type=machine.subject_of(obj), subject_id=obj.id))


def test_every_machine_has_a_version_counter_and_a_race_here():
    assert set(START) == set(lifecycle.MACHINES)
    assert set(SUB_START) == set(lifecycle.SUB_MACHINES)
    for model in lifecycle.MACHINES:
        assert lifecycle.version_column(model) is not None, f"{model.__name__} has no version counter"


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_two_sessions_moving_the_same_row_one_wins(app, make, model):
    build, to = START[model]
    obj_id = build(make).id
    db.session.commit()
    db.session.expunge_all()
    mine = db.session.get(model, obj_id)  # loaded by this process...
    before, seen = mine.status, mine.version
    with app.app_context():  # ...and by another process (its own session), which moves it first
        theirs = db.session.get(model, obj_id)
        assert theirs.version == mine.version
        lifecycle.transition(theirs, to, actor=None, now=NOW, note="theirs")
        db.session.commit()
    with pytest.raises(lifecycle.TransitionConflict) as caught:
        lifecycle.transition(mine, to, actor=None, now=NOW, note="mine")
    assert caught.value.current is before and caught.value.target is to
    assert isinstance(caught.value, InvalidTransition)  # the pages' conflict handlers catch it
    db.session.rollback()
    fresh = db.session.get(model, obj_id, populate_existing=True)
    assert fresh.status is to and fresh.version == seen + 1
    machine = lifecycle.machine_of(fresh)
    assert db.session.scalars(sa.select(Activity.message).filter_by(
        subject_type=machine.subject_of(fresh), subject_id=obj_id,
        action=machine.action(to))).all() == (["theirs"] if machine.timeline else [])


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_a_page_showing_an_older_version_changes_nothing(app, make, model):
    build, to = START[model]
    obj = build(make)
    db.session.commit()
    before, count = obj.status, _activities(obj)
    with pytest.raises(lifecycle.TransitionConflict):
        lifecycle.transition(obj, to, actor=None, now=NOW, expected_version=obj.version - 1)
    assert obj.status is before and _activities(obj) == count


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_claim_first_then_the_loser_learns_before_doing_anything(app, make, model):
    build, to = START[model]
    obj_id = build(make).id
    db.session.commit()
    db.session.expunge_all()
    mine = db.session.get(model, obj_id)
    with app.app_context():
        theirs = db.session.get(model, obj_id)
        lifecycle.claim(theirs, target=to)
        lifecycle.transition(theirs, to, actor=None, now=NOW)
        db.session.commit()
    with pytest.raises(lifecycle.TransitionConflict):
        lifecycle.claim(mine, target=to)
    assert mine.status is to  # reloaded: the session is still usable and shows the winner's state


@pytest.mark.parametrize("key", list(SUB_START), ids=[f"{m.__name__}.{attr}" for m, attr in SUB_START])
def test_two_sessions_moving_the_same_sub_state_one_wins(app, make, key):
    model, attr = key
    to = SUB_START[key]
    obj_id = make.queue_request().id
    db.session.commit()
    db.session.expunge_all()
    mine = db.session.get(model, obj_id)
    before = getattr(mine, attr)
    with app.app_context():
        theirs = db.session.get(model, obj_id)
        lifecycle.transition(theirs, to, actor=None, now=NOW, action="theirs")
        db.session.commit()
    with pytest.raises(lifecycle.TransitionConflict) as caught:
        lifecycle.transition(mine, to, actor=None, now=NOW, action="mine")
    assert caught.value.current is before
    db.session.rollback()
    fresh = db.session.get(model, obj_id, populate_existing=True)
    assert getattr(fresh, attr) is to
    assert db.session.scalars(sa.select(Activity.action).filter_by(subject_id=obj_id)).all() == ["theirs"]
