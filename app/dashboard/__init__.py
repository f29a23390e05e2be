from flask import Blueprint

bp = Blueprint("dashboard", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.dashboard import metrics, queue, routes  # noqa: F401
