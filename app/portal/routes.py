from flask import render_template
from flask_login import current_user

from app.auth.access import requires
from app.portal import bp


@bp.route("/")
@requires("portal")
def home():
    return render_template("portal/home.html", customer=current_user.customer)
