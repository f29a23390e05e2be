"""Bearer-token authentication for the JSON API, with the same role table as the pages."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import g, jsonify, request

from app.auth.roles import allowed
from app.enums import Role
from app.extensions import db
from app.models import ApiToken, User
from app.models.base import utcnow
from app.models.users import hash_token


def error(message: str, status: int, **extra):
    return jsonify({"error": message, **extra}), status


def _user_from_token() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    api_token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked.is_(False))
    )
    if api_token is None or not api_token.user.is_enabled:
        return None
    api_token.last_used_at = utcnow()
    db.session.commit()
    return api_token.user


def api_requires(permission: str):
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = _user_from_token()
            if user is None:
                return error("A valid bearer token is required.", 401)
            if not allowed(permission, user.role):
                return error("Not found.", 404) if user.role is Role.CUSTOMER else error("Forbidden.", 403)
            g.api_user = user
            return view(*args, **kwargs)

        wrapped.access = permission
        return wrapped

    return decorator


def api_user() -> User:
    return g.api_user


def customer_visible(customer_id: int) -> bool:
    """A customer user's token sees only its own customer."""
    user = api_user()
    return user.role is not Role.CUSTOMER or user.customer_id == customer_id
