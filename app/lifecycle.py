"""One lifecycle engine: every table-driven state machine is described here once, and ``transition()``
is the one function that moves an object from one state to the next.

A ``Machine`` names, for one model: its transition table (distinct names, all in this module or
``app/enums.py``), the timestamp each state sets, the activity subject and wording, the event each state
emits (``app/events.py``) and the time-of-change column. ``transition()`` checks the table, sets the
status and timestamps, flushes, writes one activity row and emits the event.

Concurrency, one mechanism for every machine: each model has a ``version`` column that SQLAlchemy checks
in the UPDATE (``version_id_col``: ``... WHERE id = :id AND version = :seen``, the counter raised by one).
Of two sessions that loaded the same row and both move it, exactly one UPDATE matches; the other raises
:class:`TransitionConflict` from ``transition()`` and must roll back (its whole transaction: e-mails,
events and deferred jobs go with it). ``expected_version`` (the version a page showed) is checked before
anything is done. ``claim()`` is the same check made early, for a service that wants to know it won
before doing its work (a review that applies the state rules first): a conditional UPDATE raising the
same counter, after which the object's own flush is checked against the new value.

Machine-specific extras (a message column, clearing a run's chosen holders when it ends) stay in the
domain module's thin wrapper around ``transition()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from app.activity import record
from app.enums import (
    AUTOMATION_DECISION_TRANSITIONS,
    CERTIFICATE_REQUEST_TRANSITIONS,
    GENERATION_TRANSITIONS,
    IMPORT_TRANSITIONS,
    ISSUE_TRANSITIONS,
    AuditPackStatus,
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
    can_transition,
)
from app.extensions import db
from app.models import (
    AuditPack,
    CertificateRequest,
    ExemptionCertificate,
    ExemptionRequest,
    ExemptionSendRun,
    GenerationRun,
    ImportRun,
    Payment,
    Policy,
    ReissueRun,
    User,
    WebhookDelivery,
)

RS, CS = ExemptionRequestStatus, ExemptionCertificateStatus

EXEMPTION_REQUEST_TRANSITIONS: dict[RS, frozenset[RS]] = {
    # sent -> sent and opened -> sent are resends (a new link replaces the old one)
    RS.SENT: frozenset({RS.SENT, RS.OPENED, RS.COMPLETED, RS.EXPIRED, RS.CANCELLED}),
    RS.OPENED: frozenset({RS.SENT, RS.COMPLETED, RS.EXPIRED, RS.CANCELLED}),
    RS.EXPIRED: frozenset({RS.SENT, RS.CANCELLED}),
    RS.COMPLETED: frozenset(),
    RS.CANCELLED: frozenset(),
}
EXEMPTION_CERTIFICATE_TRANSITIONS: dict[CS, frozenset[CS]] = {
    CS.PENDING_REVIEW: frozenset({CS.ACTIVE, CS.REJECTED}),
    CS.ACTIVE: frozenset({CS.EXPIRED}),
    CS.REJECTED: frozenset(),
    CS.EXPIRED: frozenset(),
}
AUDIT_PACK_TRANSITIONS: dict[AuditPackStatus, frozenset[AuditPackStatus]] = {
    # running -> running: a retried job (its attempt counted first) starts the pack over
    AuditPackStatus.QUEUED: frozenset({AuditPackStatus.RUNNING, AuditPackStatus.FAILED}),
    AuditPackStatus.RUNNING: frozenset({AuditPackStatus.RUNNING, AuditPackStatus.DONE, AuditPackStatus.FAILED}),
    AuditPackStatus.DONE: frozenset(),
    AuditPackStatus.FAILED: frozenset(),
}
SEND_RUN_TRANSITIONS: dict[SendRunStatus, frozenset[SendRunStatus]] = {
    SendRunStatus.QUEUED: frozenset({SendRunStatus.RUNNING}),
    SendRunStatus.RUNNING: frozenset({SendRunStatus.RUNNING, SendRunStatus.DONE}),  # a retried job continues
    SendRunStatus.DONE: frozenset(),
}

REISSUE_TRANSITIONS: dict[ReissueStatus, frozenset[ReissueStatus]] = {
    ReissueStatus.QUEUED: frozenset({ReissueStatus.RUNNING, ReissueStatus.FAILED}),
    # running -> running: a retried job (its attempt counted first) continues where the last one stopped
    ReissueStatus.RUNNING: frozenset({ReissueStatus.RUNNING, ReissueStatus.DONE, ReissueStatus.FAILED}),
    ReissueStatus.DONE: frozenset(),
    ReissueStatus.FAILED: frozenset(),
}


class TransitionConflict(InvalidTransition, StaleDataError):
    """Another session changed the object first (its version counter moved): nothing of this
    transaction may be kept; roll back and show the current state. It is both an ``InvalidTransition``
    (the move no longer starts from what the caller saw) and a ``StaleDataError`` (what SQLAlchemy
    raises for a stale row elsewhere), so a handler of either catches it."""

    def __init__(self, obj, current, target, seen_version: int | None = None):
        InvalidTransition.__init__(self, current, target)
        self.object = obj
        self.seen_version = seen_version


PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # created ``error`` (a placeholder until the gateway answers; a resubmission with the same key charges
    # again); a refund keeps ``approved`` and sets ``refunded_cents`` / ``refunded_at``
    PaymentStatus.ERROR: frozenset({PaymentStatus.APPROVED, PaymentStatus.DECLINED}),
    PaymentStatus.APPROVED: frozenset(),
    PaymentStatus.DECLINED: frozenset(),
}
POLICY_TRANSITIONS: dict[PolicyStatus, frozenset[PolicyStatus]] = {
    # cancelled -> active: staff correct a cancellation entered by mistake (the edit form, an import)
    PolicyStatus.ACTIVE: frozenset({PolicyStatus.CANCELLED}),
    PolicyStatus.CANCELLED: frozenset({PolicyStatus.ACTIVE}),
}
WEBHOOK_DELIVERY_TRANSITIONS: dict[WebhookDeliveryStatus, frozenset[WebhookDeliveryStatus]] = {
    # -> pending: a replay (staff); a failed attempt with retries left stays pending (next_attempt_at)
    WebhookDeliveryStatus.PENDING: frozenset({WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.SUCCEEDED,
                                              WebhookDeliveryStatus.FAILED}),
    WebhookDeliveryStatus.SUCCEEDED: frozenset({WebhookDeliveryStatus.PENDING}),
    WebhookDeliveryStatus.FAILED: frozenset({WebhookDeliveryStatus.PENDING}),
}


@dataclass(frozen=True)
class Machine:
    name: str
    table: dict
    subject: str | Callable[[object], str]
    stamps: dict = field(default_factory=dict)           # state -> attribute set to the time of the change
    action: Callable[[object], str] = str                 # state -> the activity's action word
    events: dict = field(default_factory=dict)           # state -> event type emitted
    customer_attr: str | None = "customer_id"
    updated_attr: str | None = None                       # attribute set to the time of every change
    attr: str = "status"                                  # the column holding the state (a sub-state's own)
    timeline: bool = True                                 # every move writes an activity row (else: only
                                                          # when the caller names an ``action``)

    def allows(self, current, target) -> bool:
        return can_transition(self.table, current, target)

    @property
    def states(self) -> type:
        """The enum of this machine's states."""
        return type(next(iter(self.table)))

    def subject_of(self, obj) -> str:
        return self.subject(obj) if callable(self.subject) else self.subject


def _finished(states) -> dict:
    return {s: "finished_at" for s in states}


MACHINES: dict[type, Machine] = {
    ExemptionRequest: Machine(
        "exemption request", EXEMPTION_REQUEST_TRANSITIONS, "exemption_request",
        stamps={RS.SENT: "sent_at", RS.OPENED: "opened_at", RS.COMPLETED: "completed_at", RS.EXPIRED: "expired_at",
                RS.CANCELLED: "cancelled_at"},
        events={RS.SENT: "exemption_request.sent", RS.OPENED: "exemption_request.opened",
                RS.COMPLETED: "exemption_request.completed", RS.EXPIRED: "exemption_request.expired",
                RS.CANCELLED: "exemption_request.cancelled"}),
    ExemptionCertificate: Machine(
        "exemption certificate", EXEMPTION_CERTIFICATE_TRANSITIONS, "exemption_certificate",
        stamps={CS.ACTIVE: "activated_at", CS.REJECTED: "rejected_at", CS.EXPIRED: "expired_at"},
        events={CS.ACTIVE: "exemption_certificate.approved", CS.REJECTED: "exemption_certificate.rejected",
                CS.EXPIRED: "exemption_certificate.expired"}),
    CertificateRequest: Machine(
        "certificate request", CERTIFICATE_REQUEST_TRANSITIONS, "certificate_request",
        stamps={RequestStatus.IN_PROGRESS: "started_at", RequestStatus.COMPLETED: "completed_at",
                RequestStatus.REJECTED: "rejected_at", RequestStatus.CANCELLED: "cancelled_at"},
        action=lambda to: f"status_{to.value}",
        events={s: f"certificate_request.{s.value}" for s in
                (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.CANCELLED)}),
    ImportRun: Machine(
        "import run", IMPORT_TRANSITIONS,
        lambda run: "holder_import" if run.kind.value in ("holders", "links") else "record_import",
        stamps=_finished((ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)),
        action=lambda to: f"import_{to.value}", customer_attr=None, updated_attr="updated_at"),
    GenerationRun: Machine(
        "generation run", GENERATION_TRANSITIONS, "generation_run",
        stamps={GenerationStatus.RUNNING: "started_at", **_finished((GenerationStatus.DONE, GenerationStatus.FAILED))},
        action=lambda to: f"generation_{to.value}", events={GenerationStatus.DONE: "generation.completed"},
        updated_attr="updated_at"),
    AuditPack: Machine(
        "audit pack", AUDIT_PACK_TRANSITIONS, "audit_pack",
        stamps={AuditPackStatus.RUNNING: "started_at", **_finished((AuditPackStatus.DONE, AuditPackStatus.FAILED))},
        action=lambda to: {"running": "started", "done": "completed"}.get(to.value, to.value),
        events={AuditPackStatus.DONE: "audit_pack.completed"}, customer_attr=None),
    ExemptionSendRun: Machine(
        "send-to-many run", SEND_RUN_TRANSITIONS, "exemption_send_run",
        stamps={SendRunStatus.DONE: "finished_at"}, action=lambda to: f"send_run_{to.value}", customer_attr=None),
    ReissueRun: Machine(
        "re-issue run", REISSUE_TRANSITIONS, "reissue_run",
        stamps={ReissueStatus.RUNNING: "started_at", **_finished((ReissueStatus.DONE, ReissueStatus.FAILED))},
        action=lambda to: f"reissue_{to.value}", updated_attr="updated_at"),
    Payment: Machine(
        "payment", PAYMENT_TRANSITIONS, "payment", timeline=False),
    Policy: Machine(
        "policy", POLICY_TRANSITIONS, "policy", timeline=False),
    WebhookDelivery: Machine(
        "webhook delivery", WEBHOOK_DELIVERY_TRANSITIONS, "webhook_delivery", customer_attr=None, timeline=False),
}


# Sub-states of a model with their own table, moved by the same ``transition()`` (the state's enum picks
# the machine). They write no activity of their own unless the caller names one (``action=``): the
# pages' timeline keeps telling the story in the words it always had.
SUB_MACHINES: dict[tuple[type, str], Machine] = {
    (CertificateRequest, "decision"): Machine(
        "certificate request automation decision", AUTOMATION_DECISION_TRANSITIONS, "certificate_request",
        attr="decision", action=lambda to: f"decision_{to.value}", timeline=False),
    (CertificateRequest, "issuing"): Machine(
        "certificate request issuing", ISSUE_TRANSITIONS, "certificate_request", attr="issuing",
        stamps={IssueState.PENDING: "issue_requested_at"}, action=lambda to: f"issuing_{to.value}",
        timeline=False),
}


def all_machines() -> dict[str, tuple[type, Machine]]:
    """Every machine by name: the models' own lifecycles and their sub-states."""
    return {m.name: (model, m) for model, m in MACHINES.items()} | {
        m.name: (model, m) for (model, _), m in SUB_MACHINES.items()}


def table_rows(machine: Machine) -> list[str]:
    """The machine's table as the rows of ``docs/architecture.md`` show it: ``| `state` | `next`, ... |``
    (allowed next states in alphabetical order, ``—`` for a final state)."""
    return [f"| `{state}` | " + (", ".join(f"`{t}`" for t in sorted(machine.table[state])) or "—") + " |"
            for state in machine.table]


def machine_of(obj, to=None) -> Machine:
    """The machine of ``obj`` whose states ``to`` belongs to (its main lifecycle when ``to`` is None)."""
    main = MACHINES[type(obj)]
    if to is None or isinstance(to, main.states):
        return main
    for (model, _), machine in SUB_MACHINES.items():
        if model is type(obj) and isinstance(to, machine.states):
            return machine
    raise KeyError(f"{type(obj).__name__} has no machine with the state {to!r}")


def version_column(model: type):
    """The model's version counter as SQLAlchemy checks it in every UPDATE (None if it has none)."""
    return sa.inspect(model).version_id_col


def claim(obj, *, expected_version: int | None = None, target=None) -> None:
    """Win the row before doing the work: ``UPDATE ... SET version = v + 1 WHERE id = :id AND version = v``
    (``v`` the version the caller saw, else the one loaded). No row matched -> the object is reloaded and
    :class:`TransitionConflict` raised (the session stays usable: nothing was written)."""
    model = type(obj)
    seen = expected_version if expected_version is not None else obj.version
    result = db.session.execute(
        sa.update(model).where(model.id == obj.id, version_column(model) == seen).values(version=seen + 1)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.refresh(obj)
        raise TransitionConflict(obj, obj.status, target, seen)
    set_committed_value(obj, "version", seen + 1)


def transition(obj, to, *, actor: User | None, now: datetime, note: str = "", action: str | None = None,
               actor_label: str | None = None, expected_version: int | None = None):
    """Move ``obj`` to ``to`` if its machine's table allows it (else ``InvalidTransition``): the state,
    timestamps, a flush whose UPDATE checks the version counter (a lost race, or a page that showed an
    older ``expected_version``: ``TransitionConflict``), one activity row, the event. A machine without a
    timeline of its own (a sub-state, a payment, a webhook delivery) writes the row only when ``action`` is
    given."""
    machine = machine_of(obj, to)
    if expected_version is not None and obj.version != expected_version:
        raise TransitionConflict(obj, getattr(obj, machine.attr), to, expected_version)
    current = getattr(obj, machine.attr)
    if not machine.allows(current, to):
        raise InvalidTransition(current, to)
    setattr(obj, machine.attr, to)
    if to in machine.stamps:
        setattr(obj, machine.stamps[to], now)
    if machine.updated_attr:
        setattr(obj, machine.updated_attr, now)
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise TransitionConflict(obj, current, to) from exc
    subject = machine.subject_of(obj)
    if machine.timeline or action:
        record(subject, obj.id, action or machine.action(to), actor=actor, actor_label=actor_label,
               customer_id=getattr(obj, machine.customer_attr) if machine.customer_attr else None, message=note,
               now=now)
    if event := machine.events.get(to):
        from app.events import emit

        emit(event, subject, obj, now=now)
    return obj
