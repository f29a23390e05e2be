from flask import Blueprint

bp = Blueprint("customers", __name__)


def load_views() -> None:
    """Import the view modules (each adds its routes to ``bp``); create_app calls this before registering."""
    from app.customers import (  # noqa: F401
        card_views,
        certificates,
        interests,
        record_import_views,
        record_views,
        reissue,
        routes,
        users,
    )
