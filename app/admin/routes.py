import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.admin import bp
from app.auth import services as user_services
from app.auth.access import requires
from app.enums import Channel, Role
from app.extensions import db
from app.models import Customer, OutboxMessage, User
from app.models.base import utcnow


@bp.route("/outbox")
@requires("configure")
def outbox():
    channel = request.args.get("channel", "")
    q = request.args.get("q", "").replace("\x00", "").strip()[:200]
    stmt = sa.select(OutboxMessage)
    if channel in {c.value for c in Channel}:
        stmt = stmt.where(OutboxMessage.channel == Channel(channel))
    if q:
        stmt = stmt.where(sa.or_(OutboxMessage.to_address.ilike(f"%{q}%"), OutboxMessage.subject.ilike(f"%{q}%")))
    from sqlalchemy.orm import load_only

    from app import pagination
    from app.validation import parse_page

    # Newest first, a seek page by id (with a channel: ix_outbox_messages_channel_id); only the shown columns.
    messages = pagination.seek_page(
        stmt.options(load_only(OutboxMessage.id, OutboxMessage.created_at, OutboxMessage.channel,
                               OutboxMessage.to_address, OutboxMessage.subject, OutboxMessage.body_text,
                               OutboxMessage.status)),
        (OutboxMessage.id,), lambda m: (m.id,), descending=True, after=request.args.get("after"),
        before=request.args.get("before"), page=parse_page(request.args.get("page")), per_page=50, count_stmt=stmt)
    from app.notify import failed_count
    from app.sweeper import sweep_health

    return render_template("admin/outbox.html", messages=messages, channel=channel, q=q,
                           failed=failed_count(), sweep=sweep_health())


@bp.route("/outbox/retry-failed", methods=["POST"])
@requires("configure")
def outbox_retry_failed():
    from app.notify import retry_failed

    count = retry_failed(now=utcnow())
    db.session.commit()
    flash(f"{count} failed message{'s' if count != 1 else ''} will be sent again." if count
          else "No failed messages to retry.", "success")
    return redirect(url_for("admin.outbox"), code=303)


@bp.route("/outbox/<int(max=2147483647):message_id>")
@requires("configure")
def outbox_message(message_id: int):
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    from app.notify import expanded_bodies

    # Admins read the outbox like a mail catcher: show what the recipient receives, links included.
    body_text, _ = expanded_bodies(message)
    return render_template("admin/outbox_message.html", message=message, body_text=body_text)


class NewUserForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=[r.value for r in Role])
    customer_id = IntegerField("Customer ID (customer users only)", validators=[Optional()])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=200)])


def _users_page(form: NewUserForm, status: int = 200, new_password: tuple[str, str] | None = None):
    users = db.session.scalars(
        sa.select(User).options(sa.orm.joinedload(User.customer), sa.orm.selectinload(User.api_tokens))
        .order_by(User.role, User.email)
    ).all()
    return render_template("admin/users.html", users=users, form=form, new_password=new_password,
                           customers=db.session.execute(sa.select(Customer.id, Customer.name)
                                                        .order_by(Customer.name)).all()), status


@bp.route("/users", methods=["GET", "POST"])
@requires("configure")
def users():
    form = NewUserForm()
    if request.method == "POST":
        if not form.validate():
            return _users_page(form, 422)
        try:
            user = user_services.create_user(
                email=form.email.data, name=form.name.data, role=Role(form.role.data),
                password=form.password.data, customer_id=form.customer_id.data, actor=current_user, now=utcnow())
        except user_services.UserError as exc:
            form.email.errors = [*form.email.errors, str(exc)]
            return _users_page(form, 422)
        db.session.commit()
        flash(f"Created {user.role} {user.email}.", "success")
        return redirect(url_for("admin.users"), code=303)
    return _users_page(form)


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users/<int(max=2147483647):user_id>/enabled", methods=["POST"])
@requires("configure")
def set_user_enabled(user_id: int):
    user = _user_or_404(user_id)
    enabled = request.form.get("enabled") == "1"
    try:
        user_services.set_enabled(user, enabled, actor=current_user, now=utcnow())
    except user_services.UserError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"), code=303)
    db.session.commit()
    flash(f"{user.email} is {'enabled' if enabled else 'disabled'}.", "success")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/users/<int(max=2147483647):user_id>/reset-password", methods=["POST"])
@requires("configure")
def reset_user_password(user_id: int):
    user = _user_or_404(user_id)
    password = user_services.reset_password(user, actor=current_user, now=utcnow())
    db.session.commit()
    if user.id == current_user.id:  # an admin resetting their own password keeps this session (only)
        from flask_login import login_user

        login_user(user)
    # Shown once, on this response only (never stored in plain text, never in a redirect URL).
    return _users_page(NewUserForm(formdata=None), new_password=(user.email, password))


@bp.route("/users/<int:user_id>/api-keys/<int:key_id>/revoke", methods=["POST"])
@requires("configure")
def revoke_api_key(user_id: int, key_id: int):
    from app.models import ApiToken

    api_token = db.session.get(ApiToken, key_id)
    if api_token is None or api_token.user_id != user_id:
        abort(404)
    user_services.revoke_api_token(api_token, actor=current_user, now=utcnow())
    db.session.commit()
    flash(f"API token {api_token.name or '#' + str(api_token.id)} of {api_token.user.email} is revoked.", "success")
    return redirect(url_for("admin.users", _anchor=f"user-{user_id}"), code=303)
