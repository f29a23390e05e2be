"""User management rules, shared by the admin pages and the CLI."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from app.activity import record
from app.enums import Role
from app.extensions import db
from app.models import Customer, User
from app.validation import InvalidInput, normalize_email

MIN_PASSWORD = 10


class UserError(ValueError):
    """A user change that is not allowed; the message is safe to show."""


def create_user(*, email: str, name: str, role: Role, password: str, customer_id: int | None,
                actor: User | None, now: datetime) -> User:
    try:
        email = normalize_email(email)
    except InvalidInput as exc:
        raise UserError(str(exc)) from exc
    if (role is Role.CUSTOMER) != (customer_id is not None):
        raise UserError("Customer users need a customer; staff users must not have one.")
    if customer_id is not None and db.session.get(Customer, customer_id) is None:
        raise UserError(f"No customer with id {customer_id}.")
    if db.session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == email.lower())):
        raise UserError(f"A user with e-mail {email} exists already.")
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"The password needs at least {MIN_PASSWORD} characters.")
    user = User(email=email, name=(name or "").strip()[:120] or email, role=role, customer_id=customer_id)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record("user", user.id, "user_created", actor=actor, customer_id=customer_id, now=now,
           message=f"{email} ({role})")
    return user


def set_enabled(user: User, enabled: bool, *, actor: User, now: datetime) -> User:
    if user.id == actor.id and not enabled:
        raise UserError("You cannot disable your own account.")
    user.is_enabled = enabled
    record("user", user.id, "user_enabled" if enabled else "user_disabled", actor=actor,
           customer_id=user.customer_id, now=now, message=user.email)
    return user


def reset_password(user: User, *, actor: User, now: datetime) -> str:
    """Give the user a new random password and return it (shown once to the admin)."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    record("user", user.id, "password_reset", actor=actor, customer_id=user.customer_id, now=now,
           message=user.email)
    return password
