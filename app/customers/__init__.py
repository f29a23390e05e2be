from flask import Blueprint

bp = Blueprint("customers", __name__)

from app.customers import certificates, interests, record_views, routes  # noqa: E402,F401
