from flask import Blueprint

bp = Blueprint("customers", __name__)

from app.customers import card_views, certificates, interests, record_views, routes, users  # noqa: E402,F401
