from flask import Blueprint

bp = Blueprint("admin", __name__)

from app.admin import catalog, exemption_rules, fees, reasons, routes, webhooks, wording  # noqa: E402,F401
