from flask import Blueprint

bp = Blueprint("admin", __name__)

from app.admin import fees, reasons, routes  # noqa: E402,F401
