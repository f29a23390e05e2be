"""Customer page, "Users" tab: the customer's portal users; invite, re-invite, disable / enable.

Staff read with ``view_dashboard`` and change with ``manage_customers``. The rules live in
``app.auth.invitations``; these routes parse, call, commit and render.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.auth import invitations
from app.auth.access import requires
from app.auth.forms import InviteUserForm
from app.customers import bp
from app.customers.routes import get_customer_or_404
from app.enums import Role
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, render_page_or_partial
from app.models import User
from app.models.base import utcnow


def _context(customer, form=None, **extra) -> dict:
    now = utcnow()
    users = invitations.customer_users(customer.id)
    return {"customer": customer, "form": form or InviteUserForm(formdata=None),
            "rows": [(u, invitations.user_state(u, now), invitations.latest_invitation(u)) for u in users], **extra}


def _page(customer, status: int = 200, **extra):
    return render_page_or_partial("customers/users.html", "customers/_users_part.html", status=status,
                                  **_context(customer, **extra))


def _done(customer, message: str, event: str):
    if is_htmx():
        return hx_trigger(_page(customer), event, toast=message)
    flash(message, "success")
    return redirect(url_for("customers.customer_users", customer_id=customer.id), code=303)


@bp.route("/<int(max=2147483647):customer_id>/users")
@requires("view_dashboard")
def customer_users(customer_id: int):
    return _page(get_customer_or_404(customer_id))


@bp.route("/<int(max=2147483647):customer_id>/users", methods=["POST"])
@requires("manage_customers")
def invite_user(customer_id: int):
    customer = get_customer_or_404(customer_id)
    form = InviteUserForm()
    if not form.validate_on_submit():
        return _page(customer, status=422, form=form)
    try:
        user, _ = invitations.invite_customer_user(customer, email=form.email.data, name=form.name.data or "",
                                                   actor=current_user._get_current_object(), now=utcnow())
    except invitations.InvitationError as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            getattr(form, name, form.email).errors.append(message)
        return _page(customer, status=422, form=form)
    db.session.commit()
    return _done(customer, f"Invitation sent to {user.email}.", "user-invited")


def _user_or_404(customer_id: int, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.customer_id != customer_id or user.role is not Role.CUSTOMER:
        abort(404)
    return user


@bp.route("/<int(max=2147483647):customer_id>/users/<int(max=2147483647):user_id>/reinvite", methods=["POST"])
@requires("manage_customers")
def reinvite_user(customer_id: int, user_id: int):
    customer = get_customer_or_404(customer_id)
    user = _user_or_404(customer_id, user_id)
    try:
        invitations.reinvite(user, actor=current_user._get_current_object(), now=utcnow())
    except invitations.InvitationError as exc:
        db.session.rollback()
        return _page(customer, status=409, action_error=str(exc))
    db.session.commit()
    return _done(customer, f"New invitation sent to {user.email}; earlier links no longer work.", "user-reinvited")


@bp.route("/<int(max=2147483647):customer_id>/users/<int(max=2147483647):user_id>/enabled", methods=["POST"])
@requires("manage_customers")
def set_user_enabled(customer_id: int, user_id: int):
    customer = get_customer_or_404(customer_id)
    user = _user_or_404(customer_id, user_id)
    enabled = request.form.get("enabled") == "1"
    invitations.set_customer_user_enabled(user, enabled, actor=current_user._get_current_object(), now=utcnow())
    db.session.commit()
    what = "enabled: can sign in again" if enabled else "disabled: can no longer sign in"
    return _done(customer, f"{user.email} {what}.", "user-enabled" if enabled else "user-disabled")
