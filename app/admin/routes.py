import sqlalchemy as sa
from flask import abort, render_template, request

from app.admin import bp
from app.auth.access import requires
from app.enums import Channel
from app.extensions import db
from app.models import OutboxMessage, User


@bp.route("/outbox")
@requires("configure")
def outbox():
    channel = request.args.get("channel", "")
    stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if channel in {c.value for c in Channel}:
        stmt = stmt.where(OutboxMessage.channel == Channel(channel))
    messages = db.paginate(stmt, per_page=50, error_out=False)
    return render_template("admin/outbox.html", messages=messages, channel=channel)


@bp.route("/outbox/<int:message_id>")
@requires("configure")
def outbox_message(message_id: int):
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    from app.notify import expanded_bodies

    # Admins read the outbox like a mail catcher: show what the recipient receives, links included.
    body_text, _ = expanded_bodies(message)
    return render_template("admin/outbox_message.html", message=message, body_text=body_text)


@bp.route("/users")
@requires("configure")
def users():
    users = db.session.scalars(sa.select(User).order_by(User.role, User.email)).all()
    return render_template("admin/users.html", users=users)
