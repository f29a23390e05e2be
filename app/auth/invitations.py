"""Customer users: invitations by e-mail, set-password links, disable / enable, re-invite; and the
"change my password" rule every logged-in user shares.

An invitation is a single-use, expiring set-password link. Its token is derived from SECRET_KEY, the
invitation id and a random nonce (as exemption request links are); only the token's SHA-256 is stored.
The invitation e-mail carries a placeholder that becomes the link only when the e-mail is built for
delivery, so neither the invitations table nor the outbox holds a usable link. A link dies when it is
used, when a newer invitation is sent to the same user, or when it expires (checked on every use).

Plain service functions: explicit ``actor`` and ``now``; the caller commits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from app.activity import record
from app.enums import PortalUserState, Role
from app.extensions import db
from app.models import Customer, User, UserInvitation
from app.notify import queue_email
from app.validation import InvalidInput, normalize_email

SUBJECT = "user"
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# A password hash no password matches (werkzeug's check answers False for it): an invited user cannot sign
# in until the invitation link sets a password.
NO_PASSWORD = "!invited"
PLACEHOLDER = re.compile(r"\[\[invitation-link:(\d+):([0-9a-f]{32})\]\]")


class InvitationError(ValueError):
    """A refused invitation or password change. ``errors`` maps field name -> message (safe to show)."""

    def __init__(self, errors: dict[str, str], *, conflict: bool = False):
        self.errors = errors
        self.conflict = conflict  # the e-mail belongs to an existing user (the API answers 409)
        super().__init__(" ".join(errors.values()))


class InvitationUnavailable(Exception):
    """Unknown, tampered, used, replaced or expired link: the page says only that it no longer works."""


# -- tokens --------------------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_token(invitation_id: int, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(key, f"invitation:{invitation_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def invitation_url(token: str) -> str:
    return f"{current_app.config['BASE_URL']}/invitations/{token}"


def placeholder(invitation: UserInvitation) -> str:
    return f"[[invitation-link:{invitation.id}:{invitation.nonce}]]"


def expand_placeholders(text: str) -> str:
    """Outbox delivery expander: the placeholder becomes the real link only in the delivered e-mail."""
    if not text or "[[invitation-link:" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: invitation_url(invitation_token(int(m.group(1)), m.group(2))), text)


def invitation_days() -> int:
    return int(current_app.config.get("INVITATION_DAYS", 7))


# -- reading ---------------------------------------------------------------------------------------------

def has_password(user: User) -> bool:
    return not (user.password_hash or "").startswith("!")


def customer_users(customer_id: int) -> list[User]:
    return list(db.session.scalars(sa.select(User).where(User.customer_id == customer_id, User.role == Role.CUSTOMER)
                                   .order_by(User.email)))


def latest_invitation(user: User) -> UserInvitation | None:
    return db.session.scalar(sa.select(UserInvitation).where(UserInvitation.user_id == user.id)
                             .order_by(UserInvitation.id.desc()).limit(1))


def user_state(user: User, now: datetime) -> PortalUserState:
    """What the Users tab shows: disabled, active (has a password), invited (link live) or expired."""
    if not user.is_enabled:
        return PortalUserState.DISABLED
    if has_password(user):
        return PortalUserState.ACTIVE
    invitation = latest_invitation(user)
    return PortalUserState.INVITED if invitation is not None and invitation.is_live(now) else PortalUserState.EXPIRED


# -- invite / re-invite / disable -------------------------------------------------------------------------

def _send(user: User, *, actor: User | None, now: datetime) -> UserInvitation:
    """Kill every live link of the user, create a new one and e-mail it (through the outbox job)."""
    db.session.execute(sa.update(UserInvitation)
                       .where(UserInvitation.user_id == user.id, UserInvitation.used_at.is_(None),
                              UserInvitation.replaced_at.is_(None))
                       .values(replaced_at=now))
    nonce = secrets.token_hex(16)
    invitation = UserInvitation(user_id=user.id, email=user.email, nonce=nonce, token_hash=f"new:{nonce}",
                                expires_at=now + timedelta(days=invitation_days()),
                                created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(invitation)
    db.session.flush()
    invitation.token_hash = hash_token(invitation_token(invitation.id, nonce))
    customer = user.customer
    queue_email(user.email, "user_invitation",
                subject=_l("%(seller)s: set your password for the certificate portal",
                           seller=current_app.config["SELLER_NAME"]),
                context={"user": user, "customer": customer, "link": placeholder(invitation),
                         "expires_at": invitation.expires_at, "inviter": actor.name if actor else ""},
                customer_id=user.customer_id)
    return invitation


def invite_customer_user(customer: Customer, *, email: str, name: str = "", actor: User | None,
                         now: datetime) -> tuple[User, UserInvitation]:
    """Create a customer user without a password and e-mail it a set-password link.

    Refused (InvitationError, nothing stored): a bad e-mail, or an e-mail that already belongs to a user
    (of this customer: re-invite that user instead)."""
    try:
        email = normalize_email(email)
    except InvalidInput as exc:
        raise InvitationError({"email": str(exc)}) from exc
    name = " ".join((name or "").split())
    if len(name) > 120:
        raise InvitationError({"name": "Use at most 120 characters for the name."})
    existing = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.lower()))
    if existing is not None:
        if existing.customer_id == customer.id:
            raise InvitationError({"email": f"{email} is already a user of this customer: use Re-invite on that "
                                            "row to send a new link."}, conflict=True)
        raise InvitationError({"email": f"A user with e-mail {email} exists already (of another customer or staff)."},
                              conflict=True)
    user = User(email=email, name=name or email, role=Role.CUSTOMER, customer_id=customer.id,
                password_hash=NO_PASSWORD, is_enabled=True, created_at=now)
    db.session.add(user)
    db.session.flush()
    invitation = _send(user, actor=actor, now=now)
    record(SUBJECT, user.id, "user_invited", actor=actor, customer_id=customer.id, now=now,
           message=f"Invited {email} as a customer user; the set-password link expires "
                   f"{invitation.expires_at:%b %d, %Y}.")
    return user, invitation


def reinvite(user: User, *, actor: User | None, now: datetime) -> UserInvitation:
    """A new link (the earlier ones die at once). A disabled user is not re-invited: enable it first."""
    if user.role is not Role.CUSTOMER:
        raise InvitationError({"user": "Only customer users are invited here."})
    if not user.is_enabled:
        raise InvitationError({"user": f"{user.email} is disabled: enable the user before sending a new link."})
    invitation = _send(user, actor=actor, now=now)
    record(SUBJECT, user.id, "user_reinvited", actor=actor, customer_id=user.customer_id, now=now,
           message=f"New set-password link sent to {user.email} (earlier links no longer work); it expires "
                   f"{invitation.expires_at:%b %d, %Y}.")
    return invitation


def set_customer_user_enabled(user: User, enabled: bool, *, actor: User, now: datetime) -> User:
    """Disable (cannot sign in, its links stop working) or enable a customer user."""
    if user.role is not Role.CUSTOMER:
        raise InvitationError({"user": "Only customer users are managed here."})
    if user.is_enabled == enabled:
        return user
    from app.auth import services  # the shared rule: disabling also ends sessions and revokes API tokens

    return services.set_enabled(user, enabled, actor=actor, now=now)


# -- the link ------------------------------------------------------------------------------------------

def resolve(token: str, *, now: datetime) -> UserInvitation:
    """The live invitation a link opens, or InvitationUnavailable (expiry is checked here, on every use)."""
    if not token or len(token) > 200:
        raise InvitationUnavailable()
    invitation = db.session.scalar(sa.select(UserInvitation).where(UserInvitation.token_hash == hash_token(token)))
    if invitation is None or not invitation.is_live(now) or not invitation.user.is_enabled:
        raise InvitationUnavailable()
    return invitation


def check_new_password(password: str, confirm: str, *, field: str = "password") -> str:
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise InvitationError({field: gettext("Use at least %(n)s characters.", n=MIN_PASSWORD)})
    if len(password) > MAX_PASSWORD:
        raise InvitationError({field: gettext("Use at most %(n)s characters.", n=MAX_PASSWORD)})
    if password != (confirm or ""):
        raise InvitationError({"confirm": gettext("The two passwords are not the same.")})
    return password


def accept(invitation: UserInvitation, password: str, confirm: str, *, now: datetime) -> User:
    """Set the password through a live link and use the link up (a second use is refused)."""
    password = check_new_password(password, confirm)
    claimed = db.session.execute(
        sa.update(UserInvitation)
        .where(UserInvitation.id == invitation.id, UserInvitation.used_at.is_(None),
               UserInvitation.replaced_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:  # a twin submission used it a moment ago
        raise InvitationUnavailable()
    user = invitation.user
    user.set_password(password)
    _bump_session_version(user)
    record(SUBJECT, user.id, "password_set", actor=user, customer_id=user.customer_id, now=now,
           message=f"{user.email} set a password through the invitation link.")
    return user


# -- change my own password -------------------------------------------------------------------------------

def change_password(user: User, *, current: str, new: str, confirm: str, now: datetime) -> User:
    """Every logged-in user changes its own password: the current one must be right."""
    if not user.check_password(current or ""):
        raise InvitationError({"current_password": gettext("This is not your current password.")})
    password = check_new_password(new, confirm, field="new_password")
    if password == current:
        raise InvitationError({"new_password": gettext("Choose a password different from the current one.")})
    user.set_password(password)
    _bump_session_version(user)
    record(SUBJECT, user.id, "password_changed", actor=user, customer_id=user.customer_id, now=now,
           message=f"{user.email} changed its password.")
    return user


def _bump_session_version(user: User) -> None:
    """End the user's other sessions after a password change, through the shared session rule."""
    from app.auth import services

    end_sessions = getattr(services, "end_sessions", None)
    if end_sessions is not None:
        end_sessions(user)
