from flask import render_template
from flask_login import current_user

from app.auth.access import requires
from app.dashboard import bp


@bp.route("/")
@requires("view_dashboard")
def home():
    return render_template("dashboard/home.html", user=current_user)
