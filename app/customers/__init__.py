from flask import Blueprint

bp = Blueprint("customers", __name__)

from app.customers import (  # noqa: E402,F401
    card_views,
    certificates,
    interests,
    record_import_views,
    record_views,
    routes,
    users,
)
