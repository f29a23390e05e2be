"""User management rules, shared by the admin pages and the CLI."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from app.activity import record
from app.enums import Role
from app.extensions import db
from app.models import ApiToken, Customer, User
from app.validation import InvalidInput, normalize_email, parse_id

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
    if customer_id is not None and (parse_id(customer_id) is None or db.session.get(Customer, customer_id) is None):
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


_dummy_hashes: dict[str, str] = {}


def password_matches(user: User | None, password: str) -> bool:
    """Check ``password`` against ``user``'s hash; with no such user, against a dummy hash made with
    the same method, so an unknown e-mail costs the same time as a known one (no account probing)."""
    from flask import current_app
    from werkzeug.security import check_password_hash, generate_password_hash

    if user is not None:
        return user.check_password(password)
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    check_password_hash(_dummy_hashes[method], password)
    return False


SEEN_KEY = "_seen"  # the session's last request, epoch seconds


def touch_session(session, *, now: datetime) -> None:
    """Record activity on a signed-in session (at most once a minute, to spare cookie rewrites)."""
    stamp = int(now.timestamp())
    if stamp - int(session.get(SEEN_KEY) or 0) >= 60:
        session[SEEN_KEY] = stamp


def session_idle(session, *, now: datetime, minutes: int) -> bool:
    """True when a signed-in session has had no request for ``minutes`` (0 disables the timeout).
    A session without a stamp (signed in before the stamp existed) counts as idle."""
    if minutes <= 0:
        return False
    seen = session.get(SEEN_KEY)
    return not isinstance(seen, int) or now.timestamp() - seen > minutes * 60


def end_sessions(user: User) -> None:
    """End every browser session of ``user``: the session stores the user's session version, and
    the login manager accepts a session only while it matches, so raising it makes every cookie
    issued so far (including copies) worthless. Call it on logout, password change or reset, and
    when disabling the user; the caller commits."""
    user.session_version = (user.session_version or 1) + 1


def revoke_api_tokens(user: User, *, now: datetime) -> int:
    """Revoke every live API token of ``user`` (password reset, disabling). Returns how many."""
    live = [t for t in user.api_tokens if not t.revoked]
    for token in live:
        token.revoked = True
        token.revoked_at = now
    return len(live)


def revoke_api_token(token: ApiToken, *, actor: User, now: datetime) -> None:
    """An admin revokes one token; requests with it answer 401 from now on."""
    if token.revoked:
        return
    token.revoked = True
    token.revoked_at = now
    record("user", token.user_id, "api_token_revoked", actor=actor, customer_id=token.user.customer_id, now=now,
           message=f"{token.user.email}: {token.name or 'token'} #{token.id}")


def set_enabled(user: User, enabled: bool, *, actor: User, now: datetime) -> User:
    """Disabling also ends the user's sessions and revokes their API tokens: a disabled account keeps
    nothing that works if it is enabled again."""
    if user.id == actor.id and not enabled:
        raise UserError("You cannot disable your own account.")
    user.is_enabled = enabled
    if not enabled:
        end_sessions(user)
        revoke_api_tokens(user, now=now)
    record("user", user.id, "user_enabled" if enabled else "user_disabled", actor=actor,
           customer_id=user.customer_id, now=now, message=user.email)
    return user


def reset_password(user: User, *, actor: User, now: datetime) -> str:
    """Give the user a new random password and return it (shown once to the admin)."""
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    # A reset means the old password may be known to someone else: nothing issued with it survives.
    end_sessions(user)
    revoke_api_tokens(user, now=now)
    record("user", user.id, "password_reset", actor=actor, customer_id=user.customer_id, now=now,
           message=user.email)
    return password
