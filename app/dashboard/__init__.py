from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from app.dashboard import metrics, queue, routes  # noqa: E402,F401
