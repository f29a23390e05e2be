"""Access decorators. Each sets ``view.access`` so the permission-matrix test can read it.

Anonymous: pages redirect to the login page, htmx and API requests get 401.
Logged in without the right: staff get 403; a customer user gets 404 (it must not learn that
staff pages or other customers' data exist).
"""

from __future__ import annotations

import functools

from flask import abort, redirect, request, url_for
from flask_login import current_user

from app.auth.roles import AUTHENTICATED, PERMISSIONS, PUBLIC, allowed
from app.enums import Role


def _wants_status() -> bool:
    return request.headers.get("HX-Request") == "true" or request.path.startswith("/api/")


def requires(permission: str):
    if permission not in PERMISSIONS and permission not in (PUBLIC, AUTHENTICATED):
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if permission != PUBLIC and not current_user.is_authenticated:
                if _wants_status():
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            role = current_user.role if current_user.is_authenticated else None
            if not allowed(permission, role):
                abort(404 if role is Role.CUSTOMER else 403)
            return view(*args, **kwargs)

        wrapped.access = permission
        return wrapped

    return decorator


def public(view):
    return requires(PUBLIC)(view)


def login_required(view):
    return requires(AUTHENTICATED)(view)


def require_customer_access(customer_id: int) -> None:
    """404 when the current user is a customer user of another customer."""
    if current_user.role is Role.CUSTOMER and current_user.customer_id != customer_id:
        abort(404)


def can(permission: str) -> bool:
    return current_user.is_authenticated and allowed(permission, current_user.role)


def user_rate_key() -> str:
    """Rate-limit key of the signed-in user (for limits that follow a person, not an address)."""
    return f"user:{current_user.get_id().partition(':')[0]}" if current_user.is_authenticated else "anonymous"


def staff_user() -> bool:
    return current_user.is_authenticated and current_user.role is not Role.CUSTOMER


def customer_user_limit(config_key: str):
    """A per-user rate limit (from config) on a route customer users may call; staff are not limited."""
    from flask import current_app

    from app.extensions import limiter

    return limiter.limit(lambda: current_app.config[config_key], key_func=user_rate_key, exempt_when=staff_user)
