from flask import Blueprint

bp = Blueprint("auth", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.auth import routes  # noqa: F401
