from flask import Blueprint

bp = Blueprint("admin", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.admin import catalog, exemption_rules, fees, reasons, routes, webhooks, wording  # noqa: F401
