from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from app.auth import bp
from app.auth.access import login_required, public
from app.auth.forms import EmptyForm, LoginForm
from app.enums import Role
from app.extensions import db, limiter
from app.models import User


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


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == form.email.data.lower()))
        if user is None or not user.is_enabled or not user.check_password(form.password.data):
            form.password.errors.append("Wrong e-mail or password.")
            return render_template("auth/login.html", form=form), 422
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or home_for(user), code=303)
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        logout_user()
        flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))
