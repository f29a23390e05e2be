from flask import render_template

from app.auth.access import requires
from app.exemptions import bp


@bp.route("/")
@requires("review_exemptions")
def index():
    return render_template("exemptions/index.html")
