from flask import Blueprint

bp = Blueprint("exemptions", __name__)

from app.exemptions import routes  # noqa: E402,F401
