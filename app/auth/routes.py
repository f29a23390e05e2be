from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from app.auth import bp, invitations, services
from app.auth.access import login_required, public
from app.auth.forms import ChangePasswordForm, EmptyForm, LoginForm, SetPasswordForm
from app.enums import Role
from app.extensions import db, limiter
from app.models import User
from app.models.base import utcnow


def home_for(user: User) -> str:
    if user.role is Role.CUSTOMER:
        return url_for("portal.home")
    return url_for("dashboard.home")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def _login_account_key() -> str:
    """The rate-limit key of the account a sign-in names (whatever address it comes from)."""
    return "login-account:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response) -> bool:
    return response.status_code != 303


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=_login_account_key, deduct_when=_failed)
@public
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == form.email.data.lower()))
        # One password hash on every path, so an unknown e-mail takes as long as a real one.
        if not services.password_matches(user, form.password.data) or not user.is_enabled:
            form.password.errors.append(gettext("Wrong e-mail or password."))
            return render_template("auth/login.html", form=form), 422
        # A fresh session: nothing from before sign-in (CSRF token included) carries over.
        next_url = _safe_next(request.args.get("next"))
        session.clear()
        login_user(user)
        services.touch_session(session, now=utcnow())
        return redirect(next_url or home_for(user), code=303)
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        # Every session of this user ends, not just this cookie (a copy of it stops working too).
        services.end_sessions(current_user)
        db.session.commit()
        logout_user()
        session.clear()
        flash(gettext("You are signed out."), "success")
    return redirect(url_for("auth.login"), code=303)


@bp.before_app_request
def end_idle_session():
    """A signed-in session unused for SESSION_IDLE_MINUTES ends; the next page asks to sign in."""
    # The user comes from this request's session, never from an app context shared with an earlier
    # request (as in tests, where two clients take turns).
    g.pop("_login_user", None)
    if "_user_id" not in session:
        return
    now = utcnow()
    if services.session_idle(session, now=now, minutes=current_app.config["SESSION_IDLE_MINUTES"]):
        logout_user()
        session.clear()
        return
    services.touch_session(session, now=now)


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


# -- invitation links and "change my password" --------------------------------------------------------

def _link_rate():
    return current_app.config["LINK_RATE_LIMIT"]


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _invitation_page(invitation, form, status=200):
    return _no_store(make_response(render_template("auth/set_password.html", invitation=invitation, form=form,
                                                   min_length=invitations.MIN_PASSWORD), status))


def _invitation_unavailable():
    return _no_store(make_response(render_template("auth/invitation_unavailable.html"), 404))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@limiter.limit(_link_rate)
@public
def set_password(token: str):
    now = utcnow()
    try:
        invitation = invitations.resolve(token, now=now)
    except invitations.InvitationUnavailable:
        return _invitation_unavailable()
    form = SetPasswordForm()
    if request.method == "GET":
        return _invitation_page(invitation, form)
    if not form.validate_on_submit():
        return _invitation_page(invitation, form, 422)
    try:
        user = invitations.accept(invitation, form.password.data, form.confirm.data, now=now)
    except invitations.InvitationError as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            getattr(form, name, form.password).errors.append(message)
        return _invitation_page(invitation, form, 422)
    except invitations.InvitationUnavailable:
        db.session.rollback()
        return _invitation_unavailable()
    db.session.commit()
    if current_user.is_authenticated:
        logout_user()
    flash(gettext("Your password is set. Sign in with %(email)s and your new password.", email=user.email), "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if request.method == "GET":
        return render_template("auth/change_password.html", form=form)
    if not form.validate_on_submit():
        return render_template("auth/change_password.html", form=form), 422
    user = current_user._get_current_object()
    try:
        invitations.change_password(user, current=form.current_password.data, new=form.new_password.data,
                                    confirm=form.confirm.data, now=utcnow())
    except invitations.InvitationError as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            getattr(form, name, form.new_password).errors.append(message)
        return render_template("auth/change_password.html", form=form), 422
    db.session.commit()
    login_user(user)  # this session carries on (other sessions end where session invalidation exists)
    flash(gettext("Your password is changed."), "success")
    return redirect(url_for("auth.change_password"), code=303)
