"""The lifecycle engine: every machine's allowed and refused edges, pinned here edge by edge (a changed
table fails this test), and transitions through the engine writing their timestamp, activity and event."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app import lifecycle
from app.enums import (
    AuditPackStatus,
    AutomationDecision,
    ExemptionCertificateStatus,
    ExemptionRequestStatus,
    GenerationStatus,
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
)

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def edges(enum, text: str) -> set[tuple]:
    """'a>b a>c' -> {(A, B), (A, C)}"""
    return {(enum(a), enum(b)) for a, b in (pair.split(">") for pair in text.split())}


ALLOWED = {
    ExemptionRequest: edges(ExemptionRequestStatus, "sent>sent sent>opened sent>completed sent>expired sent>cancelled "
                                                    "opened>sent opened>completed opened>expired opened>cancelled "
                                                    "expired>sent expired>cancelled"),
    ExemptionCertificate: edges(ExemptionCertificateStatus,
                                "pending_review>active pending_review>rejected active>expired"),
    CertificateRequest: edges(RequestStatus, "new>in_progress new>completed new>rejected new>cancelled "
                                             "in_progress>completed in_progress>rejected in_progress>cancelled"),
    ImportRun: edges(ImportStatus, "validating>preview validating>failed validating>cancelled preview>importing "
                                   "preview>cancelled importing>done importing>failed"),
    GenerationRun: edges(GenerationStatus, "queued>running queued>failed running>done running>failed done>expired"),
    AuditPack: edges(AuditPackStatus, "queued>running queued>failed running>running running>done running>failed"),
    ExemptionSendRun: edges(SendRunStatus, "queued>running running>running running>done"),
    ReissueRun: edges(ReissueStatus, "queued>running queued>failed running>running running>done running>failed"),
    Payment: edges(PaymentStatus, "error>approved error>declined"),
    Policy: edges(PolicyStatus, "active>cancelled cancelled>active"),
    WebhookDelivery: edges(WebhookDeliveryStatus, "pending>pending pending>succeeded pending>failed "
                                                  "succeeded>pending failed>pending"),
}
# sub-states with their own tables: (model, column) -> allowed edges
SUB_ALLOWED = {
    (CertificateRequest, "decision"): edges(AutomationDecision, "undecided>manual undecided>auto"),
    (CertificateRequest, "issuing"): edges(IssueState, "none>pending none>issued pending>issued pending>failed "
                                                       "failed>pending"),
}
CASES = [(model, a, b) for model, machine in lifecycle.MACHINES.items()
         for a in machine.table for b in machine.table]
SUB_CASES = [(key, a, b) for key, machine in lifecycle.SUB_MACHINES.items()
             for a in machine.table for b in machine.table]


def test_every_machine_is_pinned():
    assert set(ALLOWED) == set(lifecycle.MACHINES)
    assert set(SUB_ALLOWED) == set(lifecycle.SUB_MACHINES)


@pytest.mark.parametrize(("model", "a", "b"), CASES, ids=[f"{m.__name__}:{a}>{b}" for m, a, b in CASES])
def test_edge(model, a, b):
    assert lifecycle.MACHINES[model].allows(a, b) == ((a, b) in ALLOWED[model])


@pytest.mark.parametrize(("key", "a", "b"), SUB_CASES, ids=[f"{k[0].__name__}.{k[1]}:{a}>{b}" for k, a, b in SUB_CASES])
def test_sub_state_edge(key, a, b):
    assert lifecycle.SUB_MACHINES[key].allows(a, b) == ((a, b) in SUB_ALLOWED[key])


def test_a_sub_state_moves_through_the_engine_on_its_own_column(app, make):
    req = make.queue_request()
    lifecycle.transition(req, IssueState.PENDING, actor=None, now=NOW, action="certificate_submitted", note="Sent.")
    assert (req.status, req.issuing, req.issue_requested_at) == (RequestStatus.NEW, IssueState.PENDING, NOW)
    with pytest.raises(InvalidTransition):
        lifecycle.transition(req, IssueState.PENDING, actor=None, now=NOW)
    lifecycle.transition(req, AutomationDecision.MANUAL, actor=None, now=NOW)  # no action: no activity row
    db.session.commit()
    assert req.decision is AutomationDecision.MANUAL
    assert db.session.scalars(sa.select(Activity.action).filter_by(subject_id=req.id)).all() == [
        "certificate_submitted"]


def test_transition_sets_the_timestamp_writes_the_activity_and_emits_the_event(app, make):
    cert = make.exemption_certificate(status=ExemptionCertificateStatus.PENDING_REVIEW)
    lifecycle.transition(cert, ExemptionCertificateStatus.ACTIVE, actor=None, now=NOW, note="Looks right.")
    db.session.commit()
    assert cert.status is ExemptionCertificateStatus.ACTIVE and cert.activated_at == NOW
    entry = db.session.scalar(sa.select(Activity).filter_by(subject_type="exemption_certificate",
                                                            subject_id=cert.id, action="active"))
    assert entry.message == "Looks right." and entry.customer_id == cert.customer_id
    event = db.session.scalar(sa.select(Event).filter_by(subject_id=cert.id))
    assert event.type == "exemption_certificate.approved" and event.payload["data"]["status"] == "active"


def test_a_refused_edge_changes_nothing(app, make):
    cert = make.exemption_certificate(status=ExemptionCertificateStatus.REJECTED)
    with pytest.raises(InvalidTransition):
        lifecycle.transition(cert, ExemptionCertificateStatus.ACTIVE, actor=None, now=NOW)
    assert cert.status is ExemptionCertificateStatus.REJECTED and cert.activated_at is None
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0
