import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from app.auth.access import can, requires
from app.dashboard import bp, queries
from app.enums import MessageStatus
from app.extensions import db
from app.models import OutboxMessage


def work_waiting() -> dict:
    """What is waiting for the signed-in role: a few COUNT queries, no row loading."""
    waiting: dict = {"queue": queries.pending_counts()}
    if can("review_exemptions"):
        from app.exemptions import queries as exemption_queries

        waiting["exemptions"] = exemption_queries.tab_counts()
    if can("configure"):
        waiting["failed_messages"] = db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.status == MessageStatus.FAILED)
        )
    return waiting


@bp.route("/")
@requires("view_dashboard")
def home():
    from app.dashboard.checklist import first_run_checklist

    return render_template("dashboard/home.html", user=current_user, waiting=work_waiting(),
                           checklist=first_run_checklist())
