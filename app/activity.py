"""The notes & activities timeline: every state change writes one row through here."""

from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Activity, User
from app.models.base import utcnow


def record(subject_type: str, subject_id: int, action: str, *, actor: User | None = None,
           customer_id: int | None = None, message: str = "", is_note: bool = False,
           now: datetime | None = None, actor_label: str | None = None) -> Activity:
    entry = Activity(
        subject_type=subject_type,
        subject_id=subject_id,
        customer_id=customer_id,
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label or (actor.name if actor is not None else "system"),
        action=action,
        message=message,
        is_note=is_note,
        created_at=now or utcnow(),
    )
    db.session.add(entry)
    return entry


def add_note(subject_type: str, subject_id: int, text: str, *, actor: User, customer_id: int | None,
             now: datetime | None = None) -> Activity:
    text = (text or "").strip()
    if not text:
        raise ValueError("A note cannot be empty.")
    return record(subject_type, subject_id, "note", actor=actor, customer_id=customer_id,
                  message=text[:5000], is_note=True, now=now)


def timeline(subject_type: str, subject_id: int) -> list[Activity]:
    """Notes first (staff read special instructions before anything else), then newest first."""
    stmt = (
        sa.select(Activity)
        .where(Activity.subject_type == subject_type, Activity.subject_id == subject_id)
        .order_by(Activity.is_note.desc(), Activity.created_at.desc(), Activity.id.desc())
    )
    return list(db.session.scalars(stmt))


def customer_timeline(customer_id: int, limit: int = 100) -> list[Activity]:
    stmt = (
        sa.select(Activity)
        .where(Activity.customer_id == customer_id)
        .order_by(Activity.created_at.desc(), Activity.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
