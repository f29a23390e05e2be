from flask import Blueprint

bp = Blueprint("exemptions", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.exemptions import audit_routes, routes  # noqa: F401
